'use strict';
// Mocha settings shared by the three tiers (package.json: test, test:unit, test:integration,
// test:e2e, test:all). The default timeout is a unit test's: a few seconds. A file that needs
// longer (a server, a child process, a training run) sets this.timeout(...) in its describe,
// with the reason next to the number.
module.exports = {
  require: ['tsx/cjs'],
  extension: ['ts'],
  timeout: 5000,
  exit: true,
};
