#!/usr/bin/env node
'use strict';
// `npm run bench -- <name> [args...]` runs bench/<name>.ts. Each benchmark prints its
// figures and ends with one line of JSON.
const path = require('node:path');
const fs = require('node:fs');
const [name, ...rest] = process.argv.slice(2);
const dir = path.join(__dirname, '..', 'bench');
const available = fs.readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => f.slice(0, -3)).sort();
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name>   (available: ${available.join(', ') || 'none'})`);
  process.exit(2);
}
process.argv = [process.argv[0], path.join(dir, `${name}.ts`), ...rest];
require('tsx/cjs');
require(path.join(dir, `${name}.ts`));
