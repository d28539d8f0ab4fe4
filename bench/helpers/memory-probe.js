'use strict';
// Preloaded into a `trader` process by the soak bench (NODE_OPTIONS=--require ...): every
// MEMORY_PROBE_MS it collects garbage and appends the process's memory to MEMORY_PROBE_FILE as a
// JSON line. Plain JavaScript, loaded before tsx, and only when MEMORY_PROBE_FILE is set.
// After a full GC the heap figure is what is retained (a leak), not garbage not yet collected.
const file = process.env.MEMORY_PROBE_FILE;
if (file) {
  const fs = require('node:fs');
  const v8 = require('node:v8');
  const vm = require('node:vm');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const every = Number(process.env.MEMORY_PROBE_MS ?? 2000);
  const sample = () => {
    gc();
    const m = process.memoryUsage();
    fs.appendFileSync(file, JSON.stringify({ pid: process.pid, t: Date.now(), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external }) + '\n');
  };
  setInterval(sample, every).unref();
}
