'use strict';
// Preloaded into a `trader` process by the soak bench (NODE_OPTIONS=--require ...): every
// MEMORY_PROBE_MS it collects garbage and appends the process's memory to MEMORY_PROBE_FILE as a
// JSON line. Plain JavaScript, loaded before tsx, and only when MEMORY_PROBE_FILE is set.
// After a full GC the heap figure is what is retained (a leak), not garbage not yet collected.
// A --require runs in every thread, so the Temporal worker's workflow thread (its own V8 heap, where
// the workflow cache lives) samples itself too; rss is the process's either way.
const file = process.env.MEMORY_PROBE_FILE;
if (file) {
  const fs = require('node:fs');
  const v8 = require('node:v8');
  const vm = require('node:vm');
  const { isMainThread, threadId } = require('node:worker_threads');
  const { setInterval } = require('node:timers');
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc');
  const every = Number(process.env.MEMORY_PROBE_MS ?? 2000);
  const sample = () => {
    gc();
    const m = process.memoryUsage();
    fs.appendFileSync(file, JSON.stringify({ pid: process.pid, thread: isMainThread ? 'main' : `thread-${threadId}`, t: Date.now(), rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external }) + '\n');
  };
  setInterval(sample, every).unref();
}
