import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openCluster, TraderProcess } from '../testkit/cluster-processes';
import { syntheticSymbols, writeSyntheticCandleFiles } from '../testkit/candles';
import { benchLog, loadLine, machineLine, numberArg, parseArgs } from './helpers/trading-stack';

/**
 * Memory soak: one trading worker replays `--symbols` x `--candles` generated 1m candles at speed
 * max, and its memory is sampled all along; a leak shows as growth between the warmed-up process
 * and the one at the end. Goal: under 5 % growth after warm-up.
 *
 * The worker is the real `trader up --replay FILES --speed max --exit-when-done` process (paper
 * fills, the replay's ledger), against a Temporal dev server and a PostgreSQL of their own
 * (testkit/cluster-processes.ts), so the process measured holds only the worker and the
 * replay's client. bench/helpers/memory-probe.js is preloaded into it: every --sample-s it runs a
 * full GC and writes rss and heapUsed, so the heap figure is what is retained, not garbage.
 *
 * Warm-up is the first --warmup-pct of the run's wall time from the first workflow task on (the
 * replay's rate is steady, so about that share of the candles: code compiled, caches and
 * connection pools full, the workflow cache filled); the warmed-up figure is the median of the samples in the next 10 % of the run, the end
 * figure the median of the last 10 %.
 *
 *   npm run bench -- soak [--symbols 10] [--candles 10000] [--sample-s 5] [--warmup-pct 20] [--keep]
 */

const args = parseArgs(process.argv.slice(2), { symbols: 'value', candles: 'value', 'sample-s': 'value', 'warmup-pct': 'value', keep: 'flag' });
const SYMBOLS = numberArg(args, 'symbols', 10, (x) => Number.isInteger(x) && x >= 1 && x <= 100);
const CANDLES = numberArg(args, 'candles', 10_000, (x) => Number.isInteger(x) && x >= 500);
const SAMPLE_S = numberArg(args, 'sample-s', 5);
const WARMUP_PCT = numberArg(args, 'warmup-pct', 20, (x) => x > 0 && x < 80);
const MiB = 2 ** 20;
const FIRST_OPEN = Date.UTC(2024, 0, 1);

interface Sample {
  pid: number;
  /** 'main', or the workflow thread's (the Temporal worker runs workflows in a worker thread, a heap of its own). */
  thread: string;
  t: number;
  rss: number;
  heapUsed: number;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)];
};

async function main(): Promise<void> {
  const dir = path.join(os.tmpdir(), `dt-soak-${process.pid}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const symbols = syntheticSymbols(SYMBOLS);
  const files = writeSyntheticCandleFiles(dir, symbols, { timeframe: '1m', count: CANDLES, fromMs: FIRST_OPEN, exchange: 'synthetic' });
  const probeFile = path.join(dir, 'memory.jsonl');
  console.log(`memory soak: one worker replays ${SYMBOLS} symbols x ${CANDLES} 1m candles (speed max), memory after a full GC every ${SAMPLE_S} s in each of its threads`);
  console.log(`  machine: ${machineLine()}; load ${loadLine()}; run directory ${dir}`);
  const log = benchLog();
  const cluster = await openCluster(dir, log);
  let up: TraderProcess | undefined;
  try {
    const env = cluster.env({ LOG_LEVEL: 'warn', NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(__dirname, 'helpers', 'memory-probe.js')}`.trim(), MEMORY_PROBE_FILE: probeFile, MEMORY_PROBE_MS: String(SAMPLE_S * 1000) });
    up = new TraderProcess('up', ['up', '--replay', ...files, '--speed', 'max', '--exit-when-done'], env, path.join(dir, 'up.log'), dir);
    const t0 = Date.now();
    const exit = await up.exited;
    const wallS = (Date.now() - t0) / 1000;
    if (exit.code !== 0) throw new Error(`trader up exited with ${exit.code ?? exit.signal}:\n${up.output().slice(-3000)}`);
    const samples = fs
      .readFileSync(probeFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Sample)
      .filter((s) => s.pid === up!.pid);
    if (samples.filter((s) => s.thread === 'main').length < 20) throw new Error(`only ${samples.length} memory samples in ${wallS.toFixed(0)} s: make the run longer (--candles) or sample more often (--sample-s)`);
    // The run starts when the workflow thread does (the process's start-up, its system check and
    // the replay's set-up come before): warm-up is counted from there.
    const start = samples.find((s) => s.thread !== 'main')?.t ?? samples[0].t;
    const span = Math.max(1, samples[samples.length - 1].t - start);
    const between = (a: number, b: number) => samples.filter((s) => s.t - start >= a * span && s.t - start <= b * span);
    const w = WARMUP_PCT / 100;
    const warm = between(w, w + 0.1);
    const end = between(0.9, 1);
    const threads = [...new Set(samples.map((s) => s.thread))].sort();
    const rssOf = (xs: Sample[]) => median(xs.filter((s) => s.thread === 'main').map((s) => s.rss));
    // The process's JS heaps: the sum over its threads of each one's median.
    const heapOf = (xs: Sample[]) => threads.reduce((sum, th) => sum + (median(xs.filter((s) => s.thread === th).map((s) => s.heapUsed)) || 0), 0);
    const rssWarm = rssOf(warm);
    const rssEnd = rssOf(end);
    const heapWarm = heapOf(warm);
    const heapEnd = heapOf(end);
    const pct = (a: number, b: number) => Number((((b - a) / a) * 100).toFixed(2));
    const mib = (x: number) => `${(x / MiB).toFixed(1)} MiB`;
    const total = SYMBOLS * CANDLES;
    console.log(`  replay: ${total} candles in ${wallS.toFixed(0)} s (${(total / wallS).toFixed(0)} candles/s), ${samples.length} samples`);
    for (const q of [0, 0.1, 0.25, 0.5, 0.75, 0.95]) {
      const around = between(q, q + 0.05);
      const perThread = threads.map((th) => `${th} ${mib(median(around.filter((s) => s.thread === th).map((s) => s.heapUsed)))}`).join(', ');
      console.log(`    at ${String(Math.round(q * 100)).padStart(3)} %: rss ${mib(rssOf(around))}, heap ${mib(heapOf(around))} (${perThread})`);
    }
    console.log(`  after warm-up (${WARMUP_PCT}-${WARMUP_PCT + 10} % of the run, median): rss ${mib(rssWarm)}, heap ${mib(heapWarm)}`);
    console.log(`  at the end (last 10 %, median):           rss ${mib(rssEnd)}, heap ${mib(heapEnd)}`);
    const rssGrowth = pct(rssWarm, rssEnd);
    const heapGrowth = pct(heapWarm, heapEnd);
    console.log(`  growth: rss ${rssGrowth} %, heap ${heapGrowth} % (goal: under 5 %: ${rssGrowth < 5 && heapGrowth < 5 ? 'met' : 'missed'}); load ${loadLine()}`);
    console.log(`  reproduce: npm run bench -- soak --symbols ${SYMBOLS} --candles ${CANDLES} --sample-s ${SAMPLE_S} --warmup-pct ${WARMUP_PCT}`);
    console.log(JSON.stringify({ rss_growth_pct: rssGrowth, heap_growth_pct: heapGrowth, rss_warm_mib: Number((rssWarm / MiB).toFixed(1)), rss_end_mib: Number((rssEnd / MiB).toFixed(1)), heap_warm_mib: Number((heapWarm / MiB).toFixed(1)), heap_end_mib: Number((heapEnd / MiB).toFixed(1)), candles: total, wall_s: Math.round(wallS) }));
  } finally {
    up?.kill('SIGKILL');
    await cluster.close();
    if (!args.has('keep')) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
