import fs from 'node:fs';
import path from 'node:path';
import { loadFile, runBacktest } from '../backtester/run';
import type { BacktestResult, BacktestSeries } from '../lib/backtest/simulate';
import { prepareStrategy } from '../infra/strategies';
import { defaultConfig, loadLine, machineLine, numberArg, parseArgs, DATA_DIR } from './helpers/trading-stack';
import { runBench } from './helpers/run';
import { startCpuProfile } from './helpers/cpu-profile';
import { computeFeatureMatrix } from '../lib/features';

/**
 * Backtester throughput: candles per second of `trader backtest` (backtester/run.ts runBacktest,
 * the same call the CLI makes) through the decision code the workflows run (lib/engine
 * runCandleStep, lib/trading/candle-io prepare/execute) and the paper exchange's fill model, on
 * one core. One symbol: the 33,000-candle BTC-USDT 1h perpetual series; nine symbols: the nine
 * Binance spot 1h series side by side. Files are read and parsed before the clock starts (the
 * CLI's file read is not the backtester's speed). Each case runs --warmup times to let the JIT
 * settle (a single round left the next two still getting faster: 409, 326, 293 ms on the one
 * symbol), then --rounds times; the median round is reported, with CPU time beside wall time (a
 * loaded machine shows as CPU < wall), and the cold first round beside it (what a single short
 * `trader backtest` sees). Goal: >= 100,000 candles/s (jesse publishes about 21,000).
 *
 *   npm run bench -- backtest [--warmup 3] [--rounds 5] [--strategy NAME|PATH] [--one file.csv] [--nine a.csv,b.csv,...] [--cpu-profile FILE]
 *
 * Beside candles/s it measures, in the same process over the same one-symbol candles, the feature
 * kernel's batch speed (lib/features computeFeatureMatrix): `ratio_to_feature_kernel` is the
 * backtest's speed over it, the share of the pure indicator maths' speed the whole decision step
 * keeps (what a hyperopt trial costs against its floor). `--cpu-profile FILE` writes a V8 CPU
 * profile of one extra one-symbol round (after the timed ones, so it does not slow them) and
 * prints the functions with the most self time.
 */

const args = parseArgs(process.argv.slice(2), { warmup: 'value', rounds: 'value', strategy: 'value', one: 'value', nine: 'value', 'cpu-profile': 'value' });
const CPU_PROFILE = args.get('cpu-profile') as string | undefined;
const WARMUP = numberArg(args, 'warmup', 3, (x) => Number.isInteger(x) && x >= 1);
const ROUNDS = numberArg(args, 'rounds', 5, (x) => Number.isInteger(x) && x >= 1);
const STRATEGY = prepareStrategy((args.get('strategy') as string | undefined) ?? 'rules', undefined);
const OHLCV = path.join(DATA_DIR, 'ohlcv');
const ONE = (args.get('one') as string | undefined) ?? path.join(OHLCV, 'binanceusdm_BTC-USDT_1h.csv');
const NINE =
  (args.get('nine') as string | undefined)?.split(',') ??
  (fs.existsSync(OHLCV) ? fs.readdirSync(OHLCV).filter((f) => /^binance_[A-Z]+-USDT_1h\.csv$/.test(f)).sort().map((f) => path.join(OHLCV, f)) : []);
const cfg = defaultConfig();

interface Round {
  wallMs: number;
  cpuMs: number;
  result: BacktestResult;
}

async function round(series: BacktestSeries[]): Promise<Round> {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const result = await runBacktest({
    series,
    strategy: STRATEGY.ref,
    strategyHost: STRATEGY.host,
    initialCapital: cfg.risk.initialCapital,
    risk: { maxPositionSize: cfg.risk.maxPositionSize, stopLossPct: cfg.risk.stopLossPct, takeProfitPct: cfg.risk.takeProfitPct, maxDrawdown: cfg.risk.maxDrawdown },
  });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(cpu0);
  return { wallMs, cpuMs: (c.user + c.system) / 1000, result };
}

async function measure(label: string, files: string[]): Promise<{ perS: number; perCpuS: number }> {
  for (const f of files) if (!fs.existsSync(f)) throw new Error(`no such candle file: ${f} (set SHARED_DATA_DIR or pass --one/--nine)`);
  const series = files.map((f) => loadFile(f));
  const candles = series.reduce((a, s) => a + s.candles.length, 0);
  const warm = await round(series);
  const cold = warm.wallMs;
  for (let w = 1; w < WARMUP; w++) await round(series);
  const rounds: Round[] = [];
  for (let r = 0; r < ROUNDS; r++) rounds.push(await round(series));
  // Every round must trade the same: otherwise a round timed something else.
  const sig = (x: BacktestResult) => `${x.trades.length}/${x.metrics.finalEquity}`;
  for (const r of rounds) if (sig(r.result) !== sig(warm.result)) throw new Error(`${label}: rounds differ (${sig(r.result)} vs ${sig(warm.result)})`);
  const sorted = [...rounds].sort((a, b) => a.wallMs - b.wallMs);
  const med = sorted[Math.floor(sorted.length / 2)];
  const perS = candles / (med.wallMs / 1000);
  const decisions = med.result.symbols.reduce((a, s) => a + s.decisions, 0);
  console.log(
    `  ${label}: ${series.map((s) => `${s.symbol} ${s.timeframe}`).join(', ')}; ${candles} candles, ${decisions} decided, ${med.result.trades.length} trades; ` +
      `after ${WARMUP} warm-up round(s) (the first, cold: ${cold.toFixed(0)} ms = ${Math.round(candles / (cold / 1000)).toLocaleString('en-US')} candles/s), median of ${ROUNDS} rounds ${med.wallMs.toFixed(0)} ms wall (${med.cpuMs.toFixed(0)} ms CPU; rounds ${rounds.map((r) => r.wallMs.toFixed(0)).join(', ')} ms) = ` +
      `${Math.round(perS).toLocaleString('en-US')} candles/s, ${((med.wallMs * 1000) / candles).toFixed(1)} us per candle; ` +
      `per CPU second ${Math.round(candles / (med.cpuMs / 1000)).toLocaleString('en-US')} candles (the process's CPU, V8's garbage-collector threads included: CPU above wall time is those threads, below it a shared machine)`,
  );
  return { perS, perCpuS: candles / (med.cpuMs / 1000) };
}

/** The feature kernel's batch speed over the same candles, candles/s (median of the rounds, after warm-up). */
function featureKernelSpeed(file: string): number {
  const candles = loadFile(file).candles;
  for (let w = 0; w < WARMUP; w++) computeFeatureMatrix(candles);
  const times: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = process.hrtime.bigint();
    computeFeatureMatrix(candles);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return candles.length / (times[Math.floor(times.length / 2)] / 1000);
}

/** One extra one-symbol round under the V8 profiler; prints the top functions by self time. */
async function profileRound(file: string, out: string): Promise<void> {
  const series = [loadFile(file)];
  const profiler = await startCpuProfile(200);
  await round(series);
  const profile = await profiler.stop(out);
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  for (const id of profile.samples) {
    const f = nodes.get(id)?.callFrame;
    if (!f) continue;
    const key = `${f.functionName || '(anonymous)'} ${path.basename(f.url)}`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  const total = profile.samples.length;
  console.log(`  CPU profile of one more round: ${out} (open in Chrome DevTools or speedscope); self time, top 12:`);
  for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`    ${((100 * v) / total).toFixed(1).padStart(5)} %  ${k}`);
}

async function main(): Promise<void> {
  if (NINE.length === 0) throw new Error(`no binance_*-USDT_1h.csv files under ${OHLCV} (set SHARED_DATA_DIR or pass --nine)`);
  console.log(`backtest bench: trader backtest's runBacktest (the workflows' decision step and the paper exchange's fill model), strategy ${STRATEGY.ref}, default risk settings, one process`);
  console.log(`  machine: ${machineLine()}; load average before ${loadLine()}`);
  const one = await measure('1 symbol', [ONE]);
  const nine = await measure(`${NINE.length} symbols`, NINE);
  const kernel = featureKernelSpeed(ONE);
  const ratio = one.perS / kernel;
  console.log(`  feature kernel (computeFeatureMatrix) over the same 1-symbol candles: ${Math.round(kernel).toLocaleString('en-US')} candles/s; backtest / kernel = ${ratio.toFixed(3)} (goal >= 0.25: ${ratio >= 0.25 ? 'met' : 'MISSED'})`);
  const goal = (x: number) => (x >= 100_000 ? 'met' : 'MISSED');
  console.log(`  goal >= 100,000 candles/s: 1 symbol ${goal(one.perS)}, ${NINE.length} symbols ${goal(nine.perS)} (per CPU second: ${goal(one.perCpuS)}, ${goal(nine.perCpuS)})`);
  if (CPU_PROFILE) await profileRound(ONE, CPU_PROFILE);
  console.log(`  load average after ${loadLine()}`);
  const argv = process.argv.slice(2).join(' ');
  console.log(`  reproduce: npm run bench -- backtest${argv ? ` ${argv}` : ''}`);
  console.log(
    JSON.stringify({
      candles_per_s_1: Math.round(one.perS),
      candles_per_s_9: Math.round(nine.perS),
      candles_per_cpu_s_1: Math.round(one.perCpuS),
      candles_per_cpu_s_9: Math.round(nine.perCpuS),
      feature_kernel_candles_per_s: Math.round(kernel),
      ratio_to_feature_kernel: Number(ratio.toFixed(3)),
    }),
  );
}

runBench(main);
