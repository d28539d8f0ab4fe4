#!/usr/bin/env node
'use strict';
// The `trader` CLI. Sources are TypeScript, run through tsx's CommonJS hook so that
// `npm start`, `npx trader` and the package bin all work on a fresh clone without a build step.
require('tsx/cjs');
require('../client/cli.ts').main(process.argv).catch((err) => {
  // main() reports its own errors; anything reaching here is a bug, so show it whole.
  console.error(err);
  process.exit(1);
});
