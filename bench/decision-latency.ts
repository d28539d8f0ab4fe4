import fs from 'node:fs';
import path from 'node:path';
import { buildTradingDeps } from '../workers/trading-deps';
import { timeframeToMs } from '../lib/candles';
import { FEATURE_SCHEMA } from '../lib/features';
import { candleSteps, decided, fetchRuns, firstOrderCall, fmtMs, fmtSummary, summarize, type CandleStep, type RunHistory } from './helpers/history';
import { startSymbolTrader } from './helpers/symbol-workflows';
import { connect } from '../infra/postgres';
import { benchLog, cpuByProgram, cpuByThread, workerCpuByThread, DATA_DIR, defaultConfig, loadLine, machineLine, numberArg, openBenchStack, parseArgs, serverExperiment, SERVER_EXPERIMENT_ARGS, tradingWorker, type BenchStack, type PrepareKind } from './helpers/trading-stack';
import type { SymbolTraderInput, SymbolTraderResult } from '../lib/contracts/workflows';
import { runBacktest } from '../backtester/run';
import { cpuByPart, cpuUnder, startCpuProfile } from './helpers/cpu-profile';
import { symbolTraderInputs } from '../control/start-trading';
import { runBench } from './helpers/run';

/**
 * Decision latency of the SymbolTraderWorkflow: from the moment a candle is due (its durable
 * timer fired) to the moment its order is recorded (the executeIntents activity that placed it
 * completed: on the paper exchange and in the PostgreSQL ledger), on a real Temporal dev server,
 * plus the history events each candle costs. Goals: p99 < 150 ms, <= 10 events per candle.
 *
 * Method: `trader up --replay` wiring (buildTradingDeps: replay venue = the paper exchange over recorded
 * candles, PG paper accounts and ledger, FeatureCache, LedgerTradeRecorder) with a speed factor, so every
 * candle waits on a real durable timer; afterwards the histories are read back and every figure
 * is a difference of server-side event times (bench/helpers/history.ts). By default the nine
 * Binance spot 1h series run side by side (their timers fire together, as a live bot's do at
 * each close), over the first --candles decided candles of each. The run is checked against
 * `trader backtest` on the same candles (decisions and trades per symbol must match), so the
 * bench cannot time a workflow that trades differently.
 *
 * Second run, same candles: prepareCandle as a REGULAR activity instead of a local one (the
 * workflow bundled with bench/helpers/regular-prepare-shim.ts; product code unchanged), to show
 * what the local-activity choice buys. Skip it with --no-compare.
 *
 *   npm run bench -- decision-latency [--candles 300] [--speed 3600] [--files a.csv,b.csv] [--no-compare]
 *     [--dynamic-config KEY=VALUE,...]   (experiments: dev server dynamic config, e.g. system.enableActivityEagerExecution=true)
 *     [--sqlite-pragma PRAGMA=VALUE,...] (experiments: in place of trader up's SQLite settings, e.g. journal_mode=delete,synchronous=full)
 *     [--cpu-profile FILE]   (a V8 CPU profile of the worker over the product run, summarized per candle)
 */

const args = parseArgs(process.argv.slice(2), { candles: 'value', speed: 'value', files: 'value', 'no-compare': 'flag', 'cpu-profile': 'value', ...SERVER_EXPERIMENT_ARGS });
const CANDLES = numberArg(args, 'candles', 300, (x) => Number.isInteger(x) && x >= 10);
// 3600: one simulated hour per real second, so each 1h candle waits a 1 s durable timer. The dev
// server fires timers on a ~1 s tick (a 10 ms timer takes ~1 s), so a higher speed only misleads.
const SPEED = numberArg(args, 'speed', 3600);
const OHLCV = path.join(DATA_DIR, 'ohlcv');
// Default: the nine Binance spot 1h series (same period, aligned): nine workflows in parallel get
// >= 50 orders in a few minutes, where two would need a quarter of an hour per run.
const FILES =
  (args.get('files') as string | undefined)?.split(',') ??
  (fs.existsSync(OHLCV) ? fs.readdirSync(OHLCV).filter((f) => /^binance_[A-Z]+-USDT_1h\.csv$/.test(f)).sort().map((f) => path.join(OHLCV, f)) : []);
const COMPARE = !args.has('no-compare');
const CPU_PROFILE = args.get('cpu-profile') as string | undefined;

// Experiments only: the reported figures are with the dev server as trader up starts it unless one is given (it is printed).
const SERVER = serverExperiment(args);
const log = benchLog();
const cfg = defaultConfig();

/** The first `warmup + CANDLES` rows of each file, in the bench's temp dir (the recordings stay in ../shared). */
function subsetFiles(dir: string): string[] {
  if (FILES.length === 0) throw new Error(`no binance_*-USDT_1h.csv files under ${OHLCV} (set SHARED_DATA_DIR or pass --files)`);
  fs.mkdirSync(dir, { recursive: true });
  return FILES.map((f) => {
    if (!fs.existsSync(f)) throw new Error(`no such candle file: ${f}`);
    const lines = fs.readFileSync(f, 'utf8').split('\n');
    const rows = FEATURE_SCHEMA.warmup + CANDLES;
    if (lines.length - 1 < rows) throw new Error(`${f}: ${lines.length - 1} rows, the bench needs ${rows} (warm-up ${FEATURE_SCHEMA.warmup} + --candles ${CANDLES})`);
    const out = path.join(dir, path.basename(f));
    fs.writeFileSync(out, lines.slice(0, rows + 1).join('\n') + '\n');
    return out;
  });
}

interface VariantResult {
  kind: PrepareKind;
  wallS: number;
  results: SymbolTraderResult[];
  runs: RunHistory[][];
  steps: CandleStep[];
  ledgerTrades: number;
  /** Time inside the activity functions, measured in the worker: where a step's time goes. */
  activityMs: { prepareCandle: number[]; executeIntents: number[] };
  /** CPU seconds by program (worker = this process) while the workflows ran. */
  cpu: Map<string, number>;
  /** PostgreSQL statements (round trips) the activities sent while the workflows ran. */
  statements: number;
  byStatement: Map<string, number>;
  /** The worker's CPU seconds by kind of thread while the workflows ran. */
  threads: Array<[string, number]>;
  /** --cpu-profile: the worker's CPU by part, and under the activities, over the run (ms). */
  profile?: { file: string; parts: Array<[string, number]>; under: Map<string, number> };
}

async function runVariant(stack: BenchStack, kind: PrepareKind, files: string[]): Promise<VariantResult> {
  const db = await stack.freshDatabase();
  // A pool of its own that counts statements: each is one round trip to PostgreSQL.
  let statements = 0;
  const byStatement = new Map<string, number>();
  const sql = connect(db.url, log, {
    onQuery: (q) => {
      statements++;
      const key = q.replace(/\s+/g, ' ').trim().slice(0, 70);
      byStatement.set(key, (byStatement.get(key) ?? 0) + 1);
    },
  });
  const { deps: trading, ledger, symbols, timeframe } = buildTradingDeps({
    sql,
    log,
    market: { replay: { files } },
    account: `bench-${kind}`,
    exchangeLabel: 'replay',
    initialCapital: cfg.risk.initialCapital,
    strategy: 'rules',
    client: stack.env.client,
  });
  const taskQueue = `bench-latency-${kind}-${process.pid}`;
  const activityMs: VariantResult['activityMs'] = { prepareCandle: [], executeIntents: [] };
  const timed =
    <A extends unknown[], R>(name: keyof typeof activityMs, fn: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      const t = process.hrtime.bigint();
      try {
        return await fn(...a);
      } finally {
        activityMs[name].push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    };
  const threadsBefore = new Set(cpuByThread().keys());
  const worker = await tradingWorker(stack, {
    taskQueue,
    sql,
    log,
    trading,
    prepare: kind,
    observe: (a) => ({ ...a, prepareCandle: timed('prepareCandle', a.prepareCandle), executeIntents: timed('executeIntents', a.executeIntents) }),
  });
  const exchange = `replay${kind}`;
  const inputs: SymbolTraderInput[] = symbolTraderInputs(cfg, { account: `bench-${kind}`, exchange, mode: 'replay', symbols, timeframe, strategy: 'rules', speed: SPEED });
  const workerThreads = new Set([...cpuByThread().keys()].filter((t) => !threadsBefore.has(t)));
  const t0 = Date.now();
  const cpuBefore = cpuByProgram();
  const threadCpuBefore = cpuByThread();
  const statementsBefore = statements;
  const profiler = CPU_PROFILE && kind === 'local' ? await startCpuProfile() : undefined;
  let threadCpuAfter = threadCpuBefore;
  const results = await worker.runUntil(async () => {
    const handles = await Promise.all(inputs.map((i) => startSymbolTrader(stack.env.client, taskQueue, i)));
    const done = await Promise.all(handles.map((h) => h.result() as Promise<SymbolTraderResult>));
    // Before the worker shuts down: its workflow thread ends with it, and /proc forgets an ended thread's CPU.
    threadCpuAfter = cpuByThread();
    return done;
  });
  const cpuAfter = cpuByProgram();
  const threads = workerCpuByThread(threadCpuBefore, threadCpuAfter, workerThreads);
  let profile: VariantResult['profile'];
  if (profiler && CPU_PROFILE) {
    const p = await profiler.stop(CPU_PROFILE);
    profile = { file: CPU_PROFILE, parts: cpuByPart(p), under: cpuUnder(p, PROFILED_FUNCTIONS) };
  }
  const ran = statements - statementsBefore;
  const wallS = (Date.now() - t0) / 1000;
  const cpu = new Map([...cpuAfter].map(([k, v]) => [k, v - (cpuBefore.get(k) ?? 0)] as const));
  const runs = await Promise.all(results.map((r) => fetchRuns(stack.env.client, `trader/${exchange}/${r.symbol}`)));
  const steps = runs.flat().flatMap(candleSteps);
  const ledgerTrades = (await ledger.trades()).length;
  await sql.end({ timeout: 5 });
  return { kind, wallS, results, runs, steps, ledgerTrades, activityMs, cpu, statements: ran, byStatement, threads, profile };
}

/** Functions whose inclusive CPU the profile summary prints: the activities' parts and the workflow activation. */
const PROFILED_FUNCTIONS = ['prepareCandle', 'executeIntents', 'ourFills', 'vectorAt', 'checkCandles', 'recordOrder', 'recordFill', 'activityLog', 'activate', 'runCandleStep', 'toPayload', 'fromPayload'];

/** Payload bytes of a history event's payloads, as stored (JSON). */
function payloadBytes(p: { payloads?: Array<{ data?: Uint8Array | null; metadata?: Record<string, Uint8Array> | null }> | null } | null | undefined): number {
  return (p?.payloads ?? []).reduce((a, x) => a + (x.data?.length ?? 0) + Object.values(x.metadata ?? {}).reduce((m, v) => m + v.length, 0), 0);
}

/** What each candle stores in history: prepareCandle's marker (its input and result) and executeIntents' input and result. */
function payloadSizes(v: VariantResult): { prepareData: number[]; prepareResult: number[]; executeInput: number[]; executeResult: number[] } {
  const out = { prepareData: [] as number[], prepareResult: [] as number[], executeInput: [] as number[], executeResult: [] as number[] };
  for (const run of v.runs.flat()) {
    for (const e of run.events) {
      const m = e.markerRecordedEventAttributes;
      if (m?.markerName === 'core_local_activity') {
        out.prepareData.push(payloadBytes(m.details?.data));
        out.prepareResult.push(payloadBytes(m.details?.result));
      }
      if (e.activityTaskScheduledEventAttributes?.activityType?.name === 'executeIntents') out.executeInput.push(payloadBytes(e.activityTaskScheduledEventAttributes.input));
      if (e.activityTaskCompletedEventAttributes) out.executeResult.push(payloadBytes(e.activityTaskCompletedEventAttributes.result));
    }
  }
  return out;
}

interface Figures {
  orderLatency: number[];
  settledLatency: number[];
  noOrderLatency: number[];
  preparedLatency: number[];
  decisions: number;
  events: number;
  runs: number;
  eventsNoOrders: number[];
  eventsWithOrders: number[];
  timerActual: number[];
  timerRequested: number;
  /** executeIntents as the server saw it: ActivityTaskScheduled -> ActivityTaskCompleted. */
  executeServer: number[];
  /** Order candles: due -> the executeIntents that placed the order was scheduled (prepare + decision in the workflow). */
  dueToOrderScheduled: number[];
}

function figures(v: VariantResult): Figures {
  const timed = v.steps.filter((s) => decided(s) && s.dueMs !== null);
  const withOrder = timed.filter((s) => firstOrderCall(s)?.completedMs != null);
  const withExec = timed.filter((s) => s.executes.length > 0);
  const noExec = timed.filter((s) => s.executes.length === 0);
  return {
    orderLatency: withOrder.map((s) => (firstOrderCall(s)!.completedMs as number) - (s.dueMs as number)),
    settledLatency: withExec.map((s) => Math.max(...s.executes.map((x) => x.completedMs ?? Infinity)) - (s.dueMs as number)),
    noOrderLatency: noExec.map((s) => (s.endMs as number) - (s.dueMs as number)),
    preparedLatency: timed.map((s) => (s.preparedMs as number) - (s.dueMs as number)),
    decisions: v.results.reduce((a, r) => a + r.decisions, 0),
    events: v.runs.flat().reduce((a, r) => a + r.events.length, 0),
    runs: v.runs.flat().length,
    eventsNoOrders: noExec.map((s) => s.events),
    eventsWithOrders: withExec.map((s) => s.events),
    timerActual: timed.flatMap((s) => (s.timer ? [s.timer.actualMs] : [])),
    timerRequested: timed.find((s) => s.timer)?.timer?.requestedMs ?? NaN,
    executeServer: withExec.flatMap((s) => s.executes.map((x) => (x.completedMs ?? Infinity) - x.scheduledMs)),
    dueToOrderScheduled: withOrder.map((s) => firstOrderCall(s)!.scheduledMs - (s.dueMs as number)),
  };
}

const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);

function report(v: VariantResult, f: Figures, label: string): void {
  const orderSteps = f.orderLatency.length;
  console.log(`  [${label}] wall ${v.wallS.toFixed(1)} s; ${f.decisions} candles decided, ${f.eventsWithOrders.length} with executeIntents, ${orderSteps} placing a new order; ${v.results.map((r) => `${r.symbol} ${r.tradesClosed} trades`).join(', ')}; ${v.ledgerTrades} trades in the ledger`);
  console.log(`    due -> order recorded (first executeIntents placing an order completed):   ${fmtSummary(summarize(f.orderLatency))}`);
  console.log(`    due -> every order of the candle recorded (last executeIntents completed): ${fmtSummary(summarize(f.settledLatency))}`);
  console.log(`    due -> decision done, candles without orders (next timer started):      ${fmtSummary(summarize(f.noOrderLatency))}`);
  console.log(`    due -> candle prepared (prepareCandle in history):                       ${fmtSummary(summarize(f.preparedLatency))}`);
  console.log(`    order candles, due -> executeIntents scheduled: ${fmtSummary(summarize(f.dueToOrderScheduled))}; executeIntents scheduled -> completed (server): ${fmtSummary(summarize(f.executeServer))}`);
  console.log(`    inside the activities (worker side): prepareCandle ${fmtSummary(summarize(v.activityMs.prepareCandle))}; executeIntents ${fmtSummary(summarize(v.activityMs.executeIntents))}`);
  const perDecision = (s: number) => ((s * 1000) / f.decisions).toFixed(2);
  const cpuLine = [...v.cpu].filter(([, s]) => s >= 0.05).sort((a, b) => b[1] - a[1]).map(([k, s]) => `${k} ${perDecision(s)} ms`).join(', ');
  console.log(
    `    CPU per candle decided (all candles; ${f.eventsNoOrders.length} of ${f.decisions} without orders, so about the cost of a decision without one): ${cpuLine}; ` +
      `PostgreSQL statements (round trips) per candle decided ${(v.statements / f.decisions).toFixed(2)}`,
  );
  console.log(`    worker CPU per candle decided, by thread: ${v.threads.filter(([, s]) => s > 0).map(([k, s]) => `${k} ${perDecision(s)} ms`).join(', ')}`);
  const top = [...v.byStatement].sort((a, b) => b[1] - a[1]).slice(0, 6);
  console.log(`    statements per candle decided, most frequent (whole run): ${top.map(([q, n]) => `${(n / f.decisions).toFixed(2)} x "${q}"`).join('; ')}`);
  const sizes = payloadSizes(v);
  const bytes = (xs: number[]) => (xs.length ? `median ${median(xs)} B, max ${Math.max(...xs)} B` : '-');
  console.log(
    `    payloads in history: prepareCandle marker data ${bytes(sizes.prepareData)}, result ${bytes(sizes.prepareResult)}; ` +
      `executeIntents input ${bytes(sizes.executeInput)}, result ${bytes(sizes.executeResult)}`,
  );
  if (v.profile) {
    const total = v.profile.parts.reduce((a, [, ms]) => a + ms, 0);
    const per = (ms: number) => (ms / f.decisions).toFixed(2);
    console.log(`    main JS thread CPU profile (V8 samples over the run; the workflow VM thread is not in it, ${per(total)} ms per candle decided; written to ${v.profile.file}), self time per candle decided:`);
    for (const [part, ms] of v.profile.parts.filter(([, ms]) => ms / total >= 0.005)) console.log(`      ${per(ms).padStart(6)} ms  ${part}`);
    console.log(`      inclusive per candle decided: ${[...v.profile.under].filter(([, ms]) => ms > 0).map(([fn, ms]) => `${fn} ${per(ms)} ms`).join(', ')}`);
  }
  console.log(`    durable timer per candle: asked ${fmtMs(f.timerRequested)}, took (TimerStarted -> TimerFired, server side) ${fmtSummary(summarize(f.timerActual))}`);
  console.log(
    `    history: ${f.events} events in ${f.runs} runs = ${(f.events / f.decisions).toFixed(2)} per candle decided; per step (timer fired .. next timer started): ` +
      `without orders median ${median(f.eventsNoOrders)}, with orders median ${median(f.eventsWithOrders)} (max ${f.eventsWithOrders.length ? Math.max(...f.eventsWithOrders) : '-'})`,
  );
}

async function main(): Promise<void> {
  const loadBefore = loadLine();
  const stack = await openBenchStack('latency', SERVER);
  try {
    const files = subsetFiles(path.join(stack.dir, 'candles'));
    const bt = await runBacktest({
      files,
      strategy: 'rules',
      initialCapital: cfg.risk.initialCapital,
      risk: { maxPositionSize: cfg.risk.maxPositionSize, stopLossPct: cfg.risk.stopLossPct, takeProfitPct: cfg.risk.takeProfitPct, maxDrawdown: cfg.risk.maxDrawdown },
    });
    const timerMs = Math.max(1, Math.round(timeframeToMs(bt.symbols[0].timeframe) / SPEED));
    console.log(
      `decision-latency bench: ${bt.symbols.map((s) => `${s.symbol} ${s.timeframe}`).join(', ')}, first ${CANDLES} decided candles each (after the ${FEATURE_SCHEMA.warmup}-candle warm-up), ` +
        `replay at speed ${SPEED}${timerMs ? ` (a durable timer of ${timerMs} ms per candle)` : ''}, strategy rules, paper exchange + ledger in PostgreSQL, Temporal dev server`,
    );
    console.log(`  machine: ${machineLine()}; load average before ${loadBefore}; dev server ${SERVER.description}`);

    const variants: Array<{ v: VariantResult; f: Figures }> = [];
    for (const kind of (COMPARE ? ['local', 'regular'] : ['local']) as PrepareKind[]) {
      const v = await runVariant(stack, kind, files);
      // Parity with the backtester on the same candles: otherwise the timings are of something else.
      for (const s of bt.symbols) {
        const r = v.results.find((x) => x.symbol === s.symbol);
        if (!r || r.decisions !== s.decisions || r.tradesClosed !== s.trades) {
          throw new Error(`${kind}: ${s.symbol} decided ${r?.decisions} candles with ${r?.tradesClosed} trades through Temporal, the backtester ${s.decisions} with ${s.trades}`);
        }
      }
      const f = figures(v);
      const timedDecisions = v.steps.filter((s) => decided(s) && s.dueMs !== null).length;
      if (timedDecisions !== f.decisions) {
        const untimed = v.runs.flat().flatMap((r) => candleSteps(r).map((s, i) => ({ s, i, r })).filter(({ s }) => s.prepare?.input !== undefined && (s.endMs === null || s.dueMs === null)));
        const where = untimed.slice(0, 5).map(({ s, i, r }) => `run ${r.runId} step ${i} of ${candleSteps(r).length} candle ${s.prepare?.input?.candle.timestamp} due ${s.dueMs} end ${s.endMs}`).join('; ');
        throw new Error(`${kind}: ${f.decisions} decisions but ${timedDecisions} timed steps found in the histories (untimed: ${where})`);
      }
      if (kind === 'local' && f.orderLatency.length < 50) console.log(`  note: only ${f.orderLatency.length} candles placed orders (< 50); raise --candles`);
      variants.push({ v, f });
    }
    console.log(`  parity: decisions and trades per symbol equal trader backtest's on the same candles (${bt.symbols.map((s) => `${s.symbol} ${s.decisions}/${s.trades}`).join(', ')})`);
    const labels: Record<PrepareKind, string> = { local: 'prepareCandle LOCAL (the product)', regular: 'prepareCandle REGULAR (measurement variant)' };
    for (const { v, f } of variants) report(v, f, labels[v.kind]);

    const local = variants[0].f;
    const regular = variants[1]?.f;
    if (regular) {
      const d = (a: number[], b: number[], p: number) => `${fmtMs(summarize(a)[p === 50 ? 'p50' : 'p99'])} vs ${fmtMs(summarize(b)[p === 50 ? 'p50' : 'p99'])}`;
      console.log(
        `  local vs regular prepare: events per candle ${(local.events / local.decisions).toFixed(2)} vs ${(regular.events / regular.decisions).toFixed(2)}; ` +
          `due -> order recorded p50 ${d(local.orderLatency, regular.orderLatency, 50)}, p99 ${d(local.orderLatency, regular.orderLatency, 99)}; ` +
          `due -> decision without orders p50 ${d(local.noOrderLatency, regular.noOrderLatency, 50)}, p99 ${d(local.noOrderLatency, regular.noOrderLatency, 99)}`,
      );
    }
    const s = summarize(local.orderLatency);
    const eventsPerCandle = local.events / local.decisions;
    console.log(`  goals: p99 ${fmtMs(s.p99)} (< 150 ms: ${s.p99 < 150 ? 'met' : 'MISSED'}), ${eventsPerCandle.toFixed(2)} events per candle (<= 10: ${eventsPerCandle <= 10 ? 'met' : 'MISSED'})`);
    console.log(`  load average after ${loadLine()}`);
    const argv = process.argv.slice(2).join(' ');
    console.log(`  reproduce: npm run bench -- decision-latency${argv ? ` ${argv}` : ''}`);
    const workerCpuMs = ((variants[0].v.cpu.get('worker (node)') ?? NaN) * 1000) / local.decisions;
    console.log(`  worker CPU per candle decided ${workerCpuMs.toFixed(2)} ms (goal for a decision without an order <= 3 ms: ${workerCpuMs <= 3 ? 'met' : 'MISSED'})`);
    console.log(
      JSON.stringify({ p50_ms: round1(s.p50), p99_ms: round1(s.p99), events_per_candle: Number(eventsPerCandle.toFixed(2)), worker_cpu_ms_per_decision: Number(workerCpuMs.toFixed(2)), pg_statements_per_decision: Number((variants[0].v.statements / local.decisions).toFixed(2)) }),
    );
  } finally {
    await stack.close();
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;

runBench(main);
