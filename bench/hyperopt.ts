import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import type { HyperoptInput, HyperoptResult } from '../lib/contracts/hyperopt';
import { startOptunaWorker } from '../infra/optuna-worker';
import { loadStrategy, paramsHash } from '../infra/strategies';
import { StrategyHost } from '../lib/strategy/host';
import { loadFile } from '../backtester/run';
import { holdoutCutoff, runTrial, searchPart } from '../lib/hyperopt/trial';
import { settingsOf } from '../activities/research/hyperopt';
import { simulateBacktest } from '../lib/backtest';
import { searchSpace } from '../lib/hyperopt/space';
import { HyperoptStore } from '../ledger/hyperopt-store';
import { fixtureCandleFile } from '../testkit/fixtures';
import { testLog } from '../testkit/db';
import { cpuByThread, loadLine, processCpuSeconds, machineLine, numberArg, openBenchStack, parseArgs } from './helpers/trading-stack';
import { runBench } from './helpers/run';
import { quantiles } from '../lib/backtest';

const p50 = (xs: number[]): number => quantiles(xs, [0.5])[0];

/**
 * Hyperopt throughput: trials per minute of the same search (the same seed, batch and trials)
 * with one `trader worker --queue research` process, then with two, on the dev server with the
 * Optuna worker (Python) and the study in the embedded PostgreSQL, all real. Beside it, in this
 * process, the cost of a trial's work without the orchestration: a bare simulateBacktest of the
 * search part (what `runBacktest` runs) against runTrial (the backtest plus the daily returns
 * and the fold scores), and the trials' own durations as the workers recorded them.
 *
 *   npm run bench -- hyperopt [--trials 100] [--batch 8] [--strategy rules] [--data a.csv,b.csv] [--worker-node-args "..."] [--worker-log DIR]
 *
 * Goals (issue): two workers at least 1.8x one on two cores; a trial at most 1.2x a bare backtest.
 * Each case starts its research workers afresh (cold JIT in both); the activities' times from the
 * run's history show where the rest of the time goes (the asks, the tells), and the workers' CPU
 * by thread (/proc) what runs beside the trials (V8's compiler and GC threads show there: they
 * found a deopt loop). Before the runs, `machine_scaling_2_processes`: the same trial looped in
 * one child process alone, then in two at once, no Temporal (bench/helpers/trial-loop.ts): what
 * the machine gives two processes of it, the ceiling of the workers' speed-up.
 * `--worker-node-args "--trace-opt --trace-deopt"` passes Node/V8 flags to the research workers,
 * `--worker-log DIR` keeps their whole output (DIR/w1-1.log, ...).
 */

const REPO = path.resolve(__dirname, '..');
const args = parseArgs(process.argv.slice(2), { trials: 'value', batch: 'value', strategy: 'value', data: 'value', rounds: 'value', 'worker-node-args': 'value', 'worker-log': 'value' });
const TRIALS = numberArg(args, 'trials', 100, (x) => Number.isInteger(x) && x >= 2);
const BATCH = numberArg(args, 'batch', 8, (x) => Number.isInteger(x) && x >= 1);
const ROUNDS = numberArg(args, 'rounds', 7, (x) => Number.isInteger(x) && x >= 1);
const STRATEGY = (args.get('strategy') as string | undefined) ?? 'rules';
// Node/V8 flags for the research worker processes (a space-separated list), to compare settings.
const WORKER_NODE_ARGS = ((args.get('worker-node-args') as string | undefined) ?? '').split(' ').filter(Boolean);
// Where each research worker's output goes whole (<name>.log), e.g. to read --trace-deopt's lines.
const WORKER_LOG = args.get('worker-log') as string | undefined;
if (WORKER_LOG) fs.mkdirSync(WORKER_LOG, { recursive: true });
const FILES = ((args.get('data') as string | undefined)?.split(',') ?? ['binanceusdm_BTC-USDT_1h.csv', 'synthetic_ETH-USDT_1h.csv'].map((f) => fixtureCandleFile(f))).map((f) => path.resolve(f));

/** A child process's CPU time so far (all its threads, ended ones too), seconds. */
function cpuSeconds(child: ChildProcess): number {
  return processCpuSeconds(child.pid!);
}

/** A child process's CPU time by thread: its main thread, and the others by name and place after it. */
function threadSeconds(child: ChildProcess): Map<string, number> {
  const out = new Map<string, number>();
  for (const [tid, t] of cpuByThread(child.pid)) out.set(`${t.name}${tid === child.pid ? ' (main)' : ` +${tid - child.pid!}`}`, t.cpuS);
  return out;
}

function startWorker(env: NodeJS.ProcessEnv, name: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...WORKER_NODE_ARGS, path.join(REPO, 'bin', 'trader.js'), 'worker', '--queue', 'research'], { cwd: REPO, env: { ...process.env, ...env, TRADER_HOME: path.join(env.TRADER_HOME!, name) }, stdio: ['ignore', 'pipe', 'pipe'] });
  // The last lines, for the error if it dies; everything, with --worker-log DIR (a trace flag's output).
  let out = '';
  const log = WORKER_LOG ? fs.createWriteStream(path.join(WORKER_LOG, `${name}.log`)) : undefined;
  return new Promise((resolve, reject) => {
    const onData = (b: Buffer) => {
      log?.write(b);
      out = (out + b.toString()).slice(-4000);
      if (out.includes('research worker running')) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`research worker ${name} exited ${code}:\n${out.slice(-2000)}`)));
  });
}

runBench(async () => {
  console.log(`hyperopt bench: ${TRIALS} trials of ${STRATEGY}, batch ${BATCH}, over ${FILES.map((f) => path.basename(f)).join(', ')}`);
  console.log(`${machineLine()}; load ${loadLine()}`);
  const argv = process.argv.slice(2).map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ');
  console.log(`reproduce: npm run bench -- hyperopt${argv ? ` ${argv}` : ''}`);
  const loaded = loadStrategy(STRATEGY);
  const series = FILES.map((f) => loadFile(f));
  const cutoff = holdoutCutoff(series, 0.2, 2);
  const space = searchSpace(loaded.strategy);
  const setup = { strategy: STRATEGY, data: { files: FILES }, loss: 'sharpe' as const, folds: 2, cutoff, initialCapital: 10_000, feeBps: 10, slippageBps: 0 };
  const candles = searchPart(series, cutoff).reduce((n, s) => n + s.candles.length, 0);

  // The floor, in this process: a bare backtest of the search part against a trial's work.
  const params = Object.fromEntries(Object.entries(space).map(([k, r]) => [k, r.type === 'categorical' ? r.choices[0] : (r.low + r.high) / 2]));
  const bare: number[] = [];
  const trial: number[] = [];
  const settings = settingsOf(setup);
  for (let i = 0; i < ROUNDS + 1; i++) {
    let t0 = performance.now();
    const host = new StrategyHost(loaded, params, paramsHash);
    await simulateBacktest({ series: searchPart(series, cutoff), strategy: STRATEGY, strategyParams: host.params, strategyHost: host, initialCapital: 10_000, fees: settings.fees, slippage: { bps: 0 } });
    if (i > 0) bare.push(performance.now() - t0);
    t0 = performance.now();
    await runTrial(series, loaded, params, settings, paramsHash);
    if (i > 0) trial.push(performance.now() - t0);
  }
  const bareMs = p50(bare);
  const trialMs = p50(trial);
  console.log(`in process, ${candles} candles: bare backtest p50 ${bareMs.toFixed(1)} ms, runTrial p50 ${trialMs.toFixed(1)} ms (x${(trialMs / bareMs).toFixed(3)})`);

  // What the machine gives two CPU-bound processes (no Temporal): the same trial in one process
  // alone, then in two at once. Its ratio is the ceiling of two research workers' speed-up here.
  const loop = (): Promise<number[]> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['-r', 'tsx/cjs', path.join(__dirname, 'helpers', 'trial-loop.ts'), STRATEGY, String(ROUNDS * 2), '2', ...FILES], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      child.once('exit', (code) => (code === 0 ? resolve((JSON.parse(out.trim().split('\n').at(-1)!) as { ms: number[] }).ms) : reject(new Error(`trial loop exited ${code}`))));
    });
  const alone = await loop();
  const [pairA, pairB] = await Promise.all([loop(), loop()]);
  const machineScaling = p50(alone) / p50(pairA) + p50(alone) / p50(pairB);
  console.log(
    `the machine's own scaling, runTrial in child processes (no Temporal): one alone p50 ${p50(alone).toFixed(1)} ms a trial; two at once p50 ${p50(pairA).toFixed(1)} and ${p50(pairB).toFixed(1)} ms; ` +
      `two processes give x${machineScaling.toFixed(2)} the trials of one (the ceiling of the speed-up below)`,
  );

  const stack = await openBenchStack('hyperopt');
  const db = await stack.freshDatabase();
  const home = path.join(stack.dir, 'homes');
  const env = { TEMPORAL_ADDRESS: stack.env.address!, TEMPORAL_NAMESPACE: stack.env.namespace ?? 'default', DATABASE_URL: db.url, TRADER_HOME: home, LOG_LEVEL: 'info', LOG_FORMAT: 'json' };
  const optuna = await startOptunaWorker({ temporalAddress: env.TEMPORAL_ADDRESS, namespace: env.TEMPORAL_NAMESPACE, databaseUrl: db.url, log: testLog, env: { OPTUNA_WORKER_LOG_LEVEL: 'WARNING' } });
  const store = new HyperoptStore(db.sql);
  const children: ChildProcess[] = [];
  try {
    const perMin: number[] = [];
    const workerTrialMs: number[] = [];
    const workerCpuMsPerTrial: number[] = [];
    for (const workers of [1, 2]) {
      // Fresh processes for each case, so that neither starts with a JIT warmed by the other's trials.
      for (const c of children.splice(0)) {
        c.kill('SIGTERM');
        await new Promise((r) => c.once('exit', r));
      }
      while (children.length < workers) children.push(await startWorker(env, `w${workers}-${children.length + 1}`));
      const cpu0 = children.map(cpuSeconds);
      const threads0 = children.map(threadSeconds);
      const runId = `bench-${workers}`;
      const input: HyperoptInput = { runId, setup, space, trials: TRIALS, batchSize: BATCH, seed: 1, holdout: 0.2, trialTimeoutMs: 120_000 };
      const t0 = performance.now();
      const h = await stack.env.client.workflow.start('hyperoptWorkflow', { taskQueue: 'research', workflowId: `hyperopt/${runId}`, args: [input] });
      const result = (await h.result()) as HyperoptResult;
      const minutes = (performance.now() - t0) / 60_000;
      if (result.trials.complete !== TRIALS) throw new Error(`${workers} worker(s): ${result.trials.complete} of ${TRIALS} trials complete`);
      perMin.push(TRIALS / minutes);
      const ms = (await store.trials(runId, { withReturns: false })).map((t) => t.durationMs ?? 0);
      // Where the run's time went: each activity type's total time from scheduled to completed, from the history.
      const spent = new Map<string, { n: number; ms: number }>();
      const scheduled = new Map<string, { type: string; at: number }>();
      for (const e of (await h.fetchHistory()).events ?? []) {
        const at = Number(e.eventTime?.seconds ?? 0) * 1000 + Math.round((e.eventTime?.nanos ?? 0) / 1e6);
        const s = e.activityTaskScheduledEventAttributes;
        if (s) scheduled.set(String(e.eventId), { type: s.activityType?.name ?? '?', at });
        const c = e.activityTaskCompletedEventAttributes;
        const from = c && scheduled.get(String(c.scheduledEventId));
        if (from) {
          const x = spent.get(from.type) ?? { n: 0, ms: 0 };
          spent.set(from.type, { n: x.n + 1, ms: x.ms + at - from.at });
        }
      }
      console.log(`  activities (count, total ms from scheduled to completed): ${[...spent].map(([k, v]) => `${k} ${v.n} x ${Math.round(v.ms / v.n)} ms = ${Math.round(v.ms)} ms`).join('; ')}`);
      const cpu = children.map((c, i) => cpuSeconds(c) - cpu0[i]);
      workerCpuMsPerTrial.push((1000 * cpu.reduce((a, b) => a + b, 0)) / TRIALS);
      console.log(
        `  research workers' CPU over the run (their threads included, /proc): ${cpu.map((x) => `${x.toFixed(1)} s`).join(' + ')} = ${(workerCpuMsPerTrial.at(-1)!).toFixed(0)} ms a trial, against ${trialMs.toFixed(0)} ms of wall time for a trial in this process`,
      );
      const byThread = new Map<string, number>();
      children.forEach((c, i) => {
        for (const [name, sec] of threadSeconds(c)) byThread.set(name, (byThread.get(name) ?? 0) + sec - (threads0[i].get(name) ?? 0));
      });
      console.log(`  by thread name (both workers): ${[...byThread].filter(([, v]) => v > 0.05).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')}`);
      workerTrialMs.push(p50(ms));
      console.log(`${workers} research worker(s): ${TRIALS} trials in ${(minutes * 60).toFixed(1)} s = ${(TRIALS / minutes).toFixed(1)} trials/min; a trial in its worker p50 ${p50(ms).toFixed(0)} ms; load ${loadLine()}`);
    }
    const figures = {
      trials_per_min_1: Number(perMin[0].toFixed(1)),
      trials_per_min_2: Number(perMin[1].toFixed(1)),
      speedup_2_over_1: Number((perMin[1] / perMin[0]).toFixed(3)),
      bare_backtest_ms_p50: Number(bareMs.toFixed(1)),
      trial_ms_p50: Number(trialMs.toFixed(1)),
      trial_over_bare: Number((trialMs / bareMs).toFixed(3)),
      worker_trial_ms_p50: Number(workerTrialMs[0].toFixed(0)),
      worker_trial_ms_p50_two_workers: Number(workerTrialMs[1].toFixed(0)),
      machine_scaling_2_processes: Number(machineScaling.toFixed(3)),
      worker_cpu_ms_per_trial_1: Number(workerCpuMsPerTrial[0].toFixed(0)),
      worker_cpu_ms_per_trial_2: Number(workerCpuMsPerTrial[1].toFixed(0)),
      candles_per_trial: candles,
    };
    console.log(JSON.stringify(figures));
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await optuna.stop();
    await stack.close();
  }
});
