import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { SingleBar, Presets } from 'cli-progress';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { z } from 'zod';
import { loadConfig, type AppConfig } from '../../infra/config';
import { UsageError } from '../../infra/errors';
import { writeAtomically } from '../../infra/files';
import { openDatabase } from '../../infra/postgres';
import { createLogger, type Logger } from '../../infra/logger';
import { onShutdownSignal, openStack, processLogger, type Stack } from '../../infra/stack';
import { prepareStrategy, readStrategyParams, StrategyLoadError } from '../../infra/strategies';
import { startOptunaWorker } from '../../infra/optuna-worker';
import { DEFAULT_FEE_BPS, DEFAULT_SLIPPAGE_BPS, type BacktestSeries } from '../../lib/backtest';
import { riskInputFromEnv } from '../../lib/risk';
import { StrategyParamsError, strategyParams } from '../../lib/strategy/run';
import { RESEARCH_TASK_QUEUE, type HyperoptInput, type HyperoptResult, type HyperoptSetup } from '../../lib/contracts/hyperopt';
import { HyperoptInputError, parseSpaces, searchSpace, assertInSpace } from '../../lib/hyperopt/space';
import { parseHoldout, parseLoss } from '../../lib/hyperopt/objective';
import { HyperoptStore } from '../../ledger/hyperopt-store';
import { CandleStore } from '../../ledger/candle-store';
import { holdoutCutoff } from '../../lib/hyperopt/trial';
import { isBacktestInputError, loadFile, loadStoreSeries } from '../../backtester/run';
import { hyperoptProgressQuery } from '../../workflows/messages';
import { startResearchWorker } from '../../workers/research';
import { anyStoreOption, storeSelection } from '../candle-args';
import { initialCapitalOption, intOption, numberOption } from '../options';
import { renderHyperoptReport } from '../../backtester/hyperopt-report';

/**
 * `trader hyperopt`: a parameter search over a strategy's `search` ranges, as a HyperoptWorkflow
 * (workflows/hyperopt.ts) on the `research` task queue. This process runs one research worker
 * and the Optuna worker (Python, workers/optuna) unless told not to; more research workers join
 * with `trader worker --queue research` on any machine that reaches the same Temporal, database
 * and candle files. The CLI only starts the run and watches it: killed, the run goes on (or waits
 * for workers), and `--resume RUN_ID` watches it again.
 *
 * `--apply RUN_ID` writes the best parameters to a params file (`trader up --params`,
 * `trader strategy set`), refusing when the holdout lost money or the Deflated Sharpe Ratio is
 * below 0.95, unless `--force`.
 */

export const DSR_TO_APPLY = 0.95;
const MAX_TRIALS = 100_000;

export const HyperoptCommandOptions = z.object({
  strategy: z.string().optional(),
  params: z.string().min(1).optional(),
  data: z.array(z.string().min(1)).optional(),
  exchange: z.string().optional(),
  symbols: z.union([z.string(), z.array(z.string())]).optional(),
  timeframe: z.string().optional(),
  since: z.string().optional(),
  until: z.string().optional(),
  trials: intOption('--trials', 1, MAX_TRIALS, 'a number of trials'),
  loss: z.string().optional(),
  spaces: z.string().optional(),
  seed: intOption('--seed', 0, 2 ** 31 - 1, 'a seed'),
  walkForward: intOption('--walk-forward', 1, 50, 'a number of test folds'),
  holdout: z.string().optional(),
  batch: intOption('--batch', 1, 256, 'trials run at once'),
  startupTrials: intOption('--startup-trials', 0, 10_000, 'random trials before TPE'),
  initialCapital: initialCapitalOption(),
  feeBps: numberOption('--fee-bps', (n) => n >= 0 && n <= 1000, 'basis points from 0 to 1000'),
  slippageBps: numberOption('--slippage-bps', (n) => n >= 0 && n <= 1000, 'basis points from 0 to 1000'),
  runId: z.string().regex(/^[A-Za-z0-9_.-]{1,60}$/, '--run-id: letters, digits, _ . - (at most 60)').optional(),
  json: z.string().min(1).optional(),
  report: z.string().min(1).optional(),
  resume: z.string().optional(),
  apply: z.string().optional(),
  force: z.boolean().optional(),
  out: z.string().min(1).optional(),
  localWorker: z.boolean().optional(),
  optunaWorker: z.boolean().optional(),
  progress: z.boolean().optional(),
});
export type HyperoptCommandOptions = z.input<typeof HyperoptCommandOptions>;

export interface HyperoptIo {
  info(line: string): void;
  warn(line: string): void;
  /** Progress bar on stderr (default: when stderr is a terminal). */
  bars?: boolean;
}
const consoleIo: HyperoptIo = { info: (l) => console.log(l), warn: (l) => console.error(l) };

export interface HyperoptDeps {
  config?: () => AppConfig;
  now?: () => number;
}

function usage(err: unknown): never {
  if (err instanceof HyperoptInputError || err instanceof StrategyLoadError || err instanceof StrategyParamsError || isBacktestInputError(err)) throw new UsageError((err as Error).message);
  throw err;
}

const workflowIdOf = (runId: string) => `hyperopt/${runId}`;

/** Everything checked before anything starts: the run's input and the candles it searches. */
export async function planHyperopt(opts: z.output<typeof HyperoptCommandOptions>, cfg: AppConfig, now: number, sql?: () => Promise<import('postgres').Sql>): Promise<{ input: HyperoptInput; series: BacktestSeries[] }> {
  if (opts.trials === undefined) throw new UsageError('--trials: how many trials to run, e.g. --trials 200');
  try {
    const prepared = prepareStrategy(opts.strategy ?? cfg.strategy, opts.params !== undefined ? readStrategyParams(opts.params) : undefined);
    const strategy = prepared.host.loaded.strategy;
    if (prepared.host.modelParts.length > 0) throw new UsageError(`${strategy.name} reads the model (${prepared.host.modelParts.join(', ')}): hyperopt of model strategies is not supported yet; search a strategy without \`model\``);
    const spaces = parseSpaces(opts.spaces);
    const base = prepared.params ?? {};
    const space = searchSpace(strategy, spaces, base);
    const loss = parseLoss(opts.loss);
    const folds = opts.walkForward ?? 1;
    const holdout = parseHoldout(opts.holdout);
    const storeArgs = { exchange: opts.exchange, symbols: opts.symbols, timeframe: opts.timeframe, since: opts.since, until: opts.until };
    if (opts.data && anyStoreOption(storeArgs)) throw new UsageError('--data reads candle files; --exchange, --symbols, --timeframe, --since and --until read the candle store: give one or the other');
    if (!opts.data && !anyStoreOption(storeArgs)) throw new UsageError('give candle files (--data FILE...) or candle store series (--since WHEN, with --symbols, --timeframe and --exchange defaulting to SYMBOLS, TIMEFRAME and EXCHANGE)');
    let series: BacktestSeries[];
    let data: HyperoptSetup['data'];
    if (opts.data) {
      for (const f of opts.data) {
        if (!existsSync(f)) throw new UsageError(`--data ${f}: no such file`);
        if (statSync(f).isDirectory()) throw new UsageError(`--data ${f}: is a directory; give the candle CSV files`);
      }
      const files = opts.data.map((f) => path.resolve(f));
      series = files.map((f) => loadFile(f));
      data = { files };
    } else {
      const sel = storeSelection(storeArgs, { exchange: cfg.exchange?.id ?? 'binance', symbols: cfg.symbols ?? [], timeframe: cfg.timeframe ?? '1h' }, now);
      if (!sql) throw new UsageError('reading the candle store needs the database');
      series = await loadStoreSeries(new CandleStore(await sql()), sel);
      data = { store: sel };
    }
    const tf = new Set(series.map((s) => s.timeframe));
    if (tf.size > 1) throw new UsageError(`the series have different timeframes (${[...tf].join(', ')}): search one timeframe at a time`);
    const cutoff = holdoutCutoff(series, holdout, folds);
    const runId = opts.runId ?? `${strategy.name}-${new Date(now).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15)}`;
    const ref = prepared.host.loaded.origin === 'builtin' ? prepared.ref : prepared.host.loaded.origin;
    const setup: HyperoptSetup = {
      strategy: ref,
      ...(opts.params !== undefined ? { baseParams: base } : {}),
      data,
      loss,
      folds,
      cutoff,
      initialCapital: opts.initialCapital ?? cfg.risk.initialCapital,
      feeBps: opts.feeBps ?? DEFAULT_FEE_BPS,
      slippageBps: opts.slippageBps ?? DEFAULT_SLIPPAGE_BPS,
      risk: riskInputFromEnv(cfg.risk) as Record<string, unknown>,
    };
    const input: HyperoptInput = {
      runId,
      setup,
      space,
      ...(spaces ? { spaces } : {}),
      trials: opts.trials,
      batchSize: opts.batch ?? 8,
      seed: opts.seed ?? 1,
      ...(opts.startupTrials !== undefined ? { startupTrials: opts.startupTrials } : {}),
      holdout,
    };
    return { input, series };
  } catch (err) {
    return usage(err);
  }
}

/** A progress bar with the best loss so far, polling the workflow's query. */
async function watch(client: Client, runId: string, io: HyperoptIo, done: Promise<HyperoptResult>): Promise<HyperoptResult> {
  const handle = client.workflow.getHandle(workflowIdOf(runId));
  const show = io.bars ?? process.stderr.isTTY;
  const bar = show ? new SingleBar({ format: ' hyperopt [{bar}] {value}/{total} trials, {failed} failed, best loss {best}', hideCursor: true, stream: process.stderr, barsize: 30 }, Presets.shades_classic) : null;
  let started = false;
  let last = -1;
  const poll = async (): Promise<void> => {
    const p = await handle.query(hyperoptProgressQuery).catch(() => undefined);
    if (!p) return;
    const finished = p.complete + p.failed;
    const best = p.best ? p.best.loss.toFixed(4) : '-';
    if (bar) {
      if (!started) bar.start(p.total, finished, { failed: p.failed, best });
      else bar.update(finished, { failed: p.failed, best });
      started = true;
    } else if (finished !== last && (finished === p.total || finished - last >= Math.max(1, Math.floor(p.total / 10)))) {
      io.info(`${finished}/${p.total} trials, ${p.failed} failed, best loss ${best}`);
    }
    last = finished;
  };
  // One query at a time, and none left in flight when the caller closes the connection.
  let inflight: Promise<void> = Promise.resolve();
  const tick = (): Promise<void> => (inflight = inflight.then(poll).catch(() => undefined));
  const timer = setInterval(() => void tick(), 1000);
  try {
    const result = await done;
    clearInterval(timer);
    await tick();
    return result;
  } finally {
    clearInterval(timer);
    await inflight;
    bar?.stop();
  }
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} %`;
const f2 = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(2));

export function resultLines(r: HyperoptResult): string[] {
  const out = [`hyperopt ${r.runId}: ${r.trials.complete} complete, ${r.trials.failed} failed of ${r.trials.asked} asked (Optuna study ${r.study})`];
  if (!r.best) return [...out, 'no trial completed: nothing to choose'];
  const b = r.best;
  out.push(`best: trial ${b.number}, loss ${b.loss.toFixed(4)}`, `  parameters: ${JSON.stringify(b.params)}`);
  out.push(`  in search: return ${pct(b.inSearch.totalReturn)}, Sharpe ${f2(b.inSearch.sharpe)}, Sortino ${f2(b.inSearch.sortino)}, Calmar ${f2(b.inSearch.calmar)}, max drawdown ${(b.inSearch.maxDrawdown * 100).toFixed(2)} %, ${b.inSearch.trades} trades; fold losses ${b.inSearch.foldLosses.map((x) => x.toFixed(3)).join(', ')}`);
  out.push(
    b.holdout
      ? `  holdout:   return ${pct(b.holdout.totalReturn)}, Sharpe ${f2(b.holdout.sharpe)}, Sortino ${f2(b.holdout.sortino)}, Calmar ${f2(b.holdout.calmar)}, max drawdown ${(b.holdout.maxDrawdown * 100).toFixed(2)} %, ${b.holdout.trades} trades over ${b.holdout.days} days (never seen by the search)`
      : '  holdout:   none (--holdout 0)',
  );
  if ('skipped' in r.guard) out.push(`overfitting guard: not computed (${r.guard.skipped})`);
  else {
    const g = r.guard;
    out.push(
      `overfitting guard: Deflated Sharpe Ratio ${g.dsr.toFixed(3)} (the probability that the best trial's true Sharpe is above what ${g.trials} trials would show by luck; want >= ${DSR_TO_APPLY})`,
      `                   Probability of Backtest Overfitting ${g.pbo.toFixed(3)} (CSCV, ${g.partitions} partitions of ${g.periods} days, ${g.combinations} combinations; near 0 good, 0.5 or more: the in-search winner is no better than chance out of sample)`,
    );
  }
  const imp = Object.entries(r.importance).sort((a, b) => b[1] - a[1]);
  if (imp.length > 0) out.push(`parameter importance (Optuna fANOVA): ${imp.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}`);
  out.push(`apply it: trader hyperopt --apply ${r.runId}`);
  return out;
}

/** `--json` (every trial: parameters, loss, folds and daily returns, and the result) and `--report`, from one read of the run. */
async function outputs(opts: { json?: string; report?: string }, store: HyperoptStore, runId: string, result: HyperoptResult, io: HyperoptIo): Promise<void> {
  if (!opts.json && !opts.report) return;
  const run = await store.run(runId);
  const trials = await store.trials(runId, { withReturns: opts.json !== undefined });
  if (opts.json) {
    writeAtomically(opts.json, JSON.stringify({ runId, config: run?.config ?? null, result, trials: trials.map(({ runId: _r, ...t }) => t) }, null, 2) + '\n');
    io.info(`wrote ${opts.json}`);
  }
  if (opts.report) {
    writeAtomically(opts.report, renderHyperoptReport({ result, config: run?.config ?? {}, trials }));
    io.info(`wrote ${opts.report} (open it in a browser; it needs no network)`);
  }
}

interface Workers {
  stop(): Promise<void>;
}

/** This process's research worker and Optuna worker, as asked. */
async function startWorkers(stack: Stack, cfg: AppConfig, log: Logger, opts: { localWorker?: boolean; optunaWorker?: boolean }): Promise<Workers> {
  const stops: Array<() => Promise<void>> = [];
  try {
    if (opts.optunaWorker !== false) {
      const py = await startOptunaWorker({ temporalAddress: stack.temporal.address, namespace: stack.temporal.namespace, databaseUrl: stack.db.connectionUrl, security: cfg.temporal, log: log.child({ worker: 'optuna' }) });
      stops.push(() => py.stop());
    }
    if (opts.localWorker !== false) {
      const research = await startResearchWorker(stack, log.child({ worker: 'research' }), { home: cfg.home });
      stops.push(async () => {
        research.shutdown();
        await research.done;
      });
    }
  } catch (err) {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    throw err;
  }
  return {
    async stop() {
      for (const s of stops.reverse()) await s().catch((err: unknown) => log.warn({ err }, 'stopping a worker failed'));
    },
  };
}

export async function runHyperoptCommand(raw: unknown, io: HyperoptIo = consoleIo, deps: HyperoptDeps = {}): Promise<HyperoptResult | { applied: string }> {
  const parsed = HyperoptCommandOptions.safeParse(raw);
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => (i.code === 'custom' ? i.message : `--${i.path.join('.')}: ${i.message}`)).join('; '));
  const opts = parsed.data;
  const cfg = (deps.config ?? loadConfig)();
  if (opts.apply !== undefined) return applyHyperopt(opts.apply, cfg, io, { force: opts.force === true, out: opts.out });
  if (opts.force) throw new UsageError('--force goes with --apply');
  if (opts.report !== undefined && opts.report === opts.json) throw new UsageError('--report and --json name the same file');
  for (const f of [opts.json, opts.report]) if (f !== undefined && opts.data?.map((d) => path.resolve(d)).includes(path.resolve(f))) throw new UsageError(`${f} is one of the input files; refusing to overwrite candles`);

  const log = processLogger({ ...cfg, logLevel: cfg.logLevel === 'info' ? 'warn' : cfg.logLevel });
  let input: HyperoptInput | undefined;
  if (opts.resume === undefined) {
    // Checked before the stack starts: bad input exits 2 with nothing started.
    const needsStore = !opts.data;
    let db: Awaited<ReturnType<typeof openDatabase>> | undefined;
    try {
      ({ input } = await planHyperopt(opts, cfg, (deps.now ?? Date.now)(), needsStore ? async () => (db ??= await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, port: cfg.postgresPort, log: createLogger({ level: 'warn', name: 'hyperopt' }) })).sql : undefined));
    } finally {
      await db?.close();
    }
  } else if (opts.trials !== undefined || opts.strategy !== undefined || opts.data !== undefined) {
    throw new UsageError('--resume RUN_ID watches a run already started: give no --strategy, --data or --trials with it');
  }

  const stack = await openStack(cfg, log);
  const store = new HyperoptStore(stack.db.sql);
  const workers = await startWorkers(stack, cfg, log, opts).catch(async (err: unknown) => {
    await stack.close();
    throw err;
  });
  const stopSignal = onShutdownSignal(log);
  try {
    const runId = input?.runId ?? opts.resume!;
    const handle = stack.temporal.client.workflow.getHandle<(i: HyperoptInput) => Promise<HyperoptResult>>(workflowIdOf(runId));
    if (input) {
      try {
        await stack.temporal.client.workflow.start('hyperoptWorkflow', { taskQueue: RESEARCH_TASK_QUEUE, workflowId: workflowIdOf(runId), args: [input] });
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) throw new UsageError(`run ${runId} exists already: watch it with --resume ${runId}, or give another --run-id`);
        throw err;
      }
      io.info(`hyperopt ${runId}: ${input.trials} trials of ${input.setup.strategy} over ${Object.keys(input.space).join(', ')}, loss ${input.setup.loss}, ${input.setup.folds} fold(s), holdout ${Math.round(input.holdout * 100)} %${stack.temporal.uiUrl ? `; Temporal UI: ${stack.temporal.uiUrl}` : ''}`);
    } else {
      try {
        await handle.describe();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new UsageError(`no hyperopt run ${runId} in this Temporal namespace`);
        throw err;
      }
      io.info(`watching hyperopt ${runId}`);
    }
    const result = await Promise.race([watch(stack.temporal.client, runId, { ...io, bars: opts.progress === false ? false : io.bars }, handle.result()), stopSignal.then(() => null)]);
    if (result === null) {
      io.warn(`stopped watching; the run goes on in Temporal while research workers run: trader hyperopt --resume ${runId}`);
      throw new UsageError('interrupted');
    }
    for (const l of resultLines(result)) io.info(l);
    await outputs(opts, store, runId, result, io);
    return result;
  } finally {
    await workers.stop();
    await stack.close();
  }
}

/** Writes the best parameters of a finished run to a params file, when the guard and the holdout allow it. */
export async function applyHyperopt(runId: string, cfg: AppConfig, io: HyperoptIo, opts: { force: boolean; out?: string }): Promise<{ applied: string }> {
  const db = await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, port: cfg.postgresPort, log: createLogger({ level: 'warn', name: 'hyperopt' }) });
  try {
    const run = await new HyperoptStore(db.sql).run(runId);
    if (!run) throw new UsageError(`no hyperopt run ${runId} in ${db.url}`);
    const result = run.result as HyperoptResult | null;
    if (!result) throw new UsageError(`run ${runId} has not finished: trader hyperopt --resume ${runId}`);
    if (!result.best) throw new UsageError(`run ${runId} has no complete trial: nothing to apply`);
    const reasons: string[] = [];
    if (!result.best.holdout) reasons.push('it had no holdout (--holdout 0), so nothing tested the parameters on unseen data');
    else if (result.best.holdout.totalReturn < 0) reasons.push(`the holdout lost money (${pct(result.best.holdout.totalReturn)})`);
    if ('skipped' in result.guard) reasons.push(`the overfitting guard was not computed (${result.guard.skipped})`);
    else if (result.guard.dsr < DSR_TO_APPLY) reasons.push(`the Deflated Sharpe Ratio is ${result.guard.dsr.toFixed(3)}, below ${DSR_TO_APPLY}`);
    if (reasons.length > 0 && !opts.force) throw new UsageError(`not applied: ${reasons.join('; ')}. Apply anyway with --force`);
    const config = run.config as { strategy?: string };
    const ref = config.strategy ?? '';
    const prepared = prepareStrategy(ref, result.best.params);
    const params = strategyParams(prepared.host.loaded.strategy, result.best.params);
    const space = (run.config as { space?: Parameters<typeof assertInSpace>[0] }).space;
    if (space) assertInSpace(space, params);
    const name = prepared.host.loaded.strategy.name;
    const out = opts.out ?? (prepared.host.loaded.origin === 'builtin' ? path.join('strategies', `${name}.params.json`) : path.join(path.dirname(prepared.host.loaded.origin), `${name}.params.json`));
    writeAtomically(out, JSON.stringify(params, null, 2) + '\n');
    if (reasons.length > 0) io.warn(`applied with --force despite: ${reasons.join('; ')}`);
    io.info(`wrote ${out}: ${JSON.stringify(params)}`);
    io.info(`use it: trader up --strategy ${ref} --params ${out}   (or, on a running symbol: trader strategy set SYMBOL ${ref} --params ${out})`);
    return { applied: out };
  } catch (err) {
    return usage(err);
  } finally {
    await db.close();
  }
}
