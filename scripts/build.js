#!/usr/bin/env node
'use strict';
// `npm run build`: the project's TypeScript compiled to JavaScript in dist/ (tsconfig.build.json,
// with source maps), which bin/trader.js then runs instead of the sources through tsx. The stamp
// dist/.build-stamp is removed first and written only when tsc succeeded, dated when the build
// started and listing the sources it compiled: bin/build-state.js runs dist/ only while no source is
// newer than that and the list is the same (see there).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, stampFile, scanSources } = require('../bin/build-state');

const DIST = path.join(ROOT, 'dist');
const STAMP = stampFile(ROOT);

const started = new Date();
fs.rmSync(STAMP, { force: true });
// What is compiled, as it is when tsc starts (a file saved during the build is newer than the stamp).
const { files } = scanSources(ROOT);
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error(`build failed (tsc exited ${tsc.status ?? tsc.signal}): dist/ is not used until a build succeeds; trader runs from the sources`);
  process.exit(tsc.status || 1);
}
fs.mkdirSync(DIST, { recursive: true });
// tsc leaves the output of a source that is gone (removed, renamed): remove it, so dist/ holds what the sources make.
const sources = new Set(files);
const prune = (dir) => {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) prune(p);
    else if (/\.js(\.map)?$/.test(e.name) && !sources.has(path.relative(DIST, p).replace(/\.js(\.map)?$/, '.ts'))) fs.rmSync(p);
  }
};
prune(DIST);
fs.writeFileSync(STAMP, JSON.stringify({ started: started.toISOString(), finished: new Date().toISOString(), node: process.version, files }) + '\n');
fs.utimesSync(STAMP, started, started);
console.log(`built dist/ in ${((Date.now() - started.getTime()) / 1000).toFixed(1)} s`);
