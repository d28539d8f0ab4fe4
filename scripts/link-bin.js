#!/usr/bin/env node
'use strict';
/**
 * Links node_modules/.bin/trader to bin/trader.js (postinstall). package.json declares no `bin`
 * on purpose: for the project's own package, `npx trader` takes npm's slow path for a `bin` it
 * finds in package.json (it loads the whole installed tree and runs the project through its npx
 * cache: about 1 s, 3 s on a busy machine), and runs a command it finds in node_modules/.bin
 * directly (npm's own start and the CLI's: 0.3 to 0.5 s). A `trader` on your PATH:
 * `ln -s "$PWD/bin/trader.js" ~/.local/bin/trader`.
 */
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const binDir = path.join(root, 'node_modules', '.bin');
const link = path.join(binDir, 'trader');
const target = path.relative(binDir, path.join(root, 'bin', 'trader.js'));

try {
  fs.mkdirSync(binDir, { recursive: true });
  let current;
  try {
    current = fs.readlinkSync(link);
  } catch {
    current = undefined;
  }
  if (current !== target) {
    fs.rmSync(link, { force: true });
    fs.symlinkSync(target, link);
  }
  fs.chmodSync(path.join(root, 'bin', 'trader.js'), 0o755);
} catch (err) {
  console.error(`warning: could not link node_modules/.bin/trader (${err.message}); run the CLI as \`node bin/trader.js\``);
}
