#!/usr/bin/env node
'use strict';
// The `trader` CLI: the build (dist/, `npm run build`) when it is complete and newer than every
// source, else the TypeScript sources through tsx's CommonJS hook, so a fresh clone without a
// build and a tree edited since the last build both run what is checked out (bin/build-state.js says
// how it decides). TRADER_STARTUP_DEBUG=1 prints which it ran and why; TRADER_FROM=dist|src forces one.
const { chooseBuild } = require('./build-state');

let choice;
try {
  choice = chooseBuild();
} catch (err) {
  console.error(`error: ${err.message}`);
  process.exit(2);
}
if (process.env.TRADER_STARTUP_DEBUG) console.error(`trader: from ${choice.use === 'dist' ? 'dist/' : 'the TypeScript sources (tsx)'}: ${choice.why}`);
let cli;
if (choice.use === 'dist') {
  // Stack traces name the TypeScript sources' lines (the build's source maps; no measurable cost at start).
  process.setSourceMapsEnabled(true);
  cli = require('../dist/client/cli.js');
} else {
  require('tsx/cjs');
  cli = require('../client/cli.ts');
}
cli.main(process.argv).catch((err) => {
  // main() reports its own errors; anything reaching here is a bug, so show it whole.
  console.error(err);
  process.exit(1);
});
