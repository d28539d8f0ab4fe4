import { existsSync, statSync } from 'node:fs';
import { writeAtomically } from '../../infra/files';
import { join } from 'node:path';
import { z } from 'zod';
import type { AppConfig } from '../../infra/config';
import { loadConfig } from '../../infra/config';
import type { SignalFn } from '../../lib/trading/candle-io';
import { DEFAULT_FEE_BPS, DEFAULT_SLIPPAGE_BPS, type BacktestResult } from '../../lib/backtest';
import { prepareStrategy, readStrategyParams, StrategyLoadError, type PreparedStrategy } from '../../infra/strategies';
import { identityLabel, StrategyParamsError } from '../../lib/strategy/run';
import type { ModelPart } from '../../lib/strategy/types';
import { BOOTSTRAP_MODEL_DIR, registryResolver, strategyServing } from '../../models/signal';
import { MANIFEST_FILE } from '../../models/registry';
import { createModelSignalSource } from '../../models/signal';
import { UsageError } from '../../infra/errors';
import { riskInputFromEnv } from '../../lib/risk';
import { isBacktestInputError, loadStoreSeries, runBacktestWithSeries } from '../../backtester/run';
import { backtestMonteCarlo } from '../../backtester/monte-carlo';
import { backtestReportData, renderReportHtml, type ReportMonteCarlo } from '../../backtester/report';
import { MAX_MONTE_CARLO_RUNS, type BacktestSeries } from '../../lib/backtest';
import type postgres from 'postgres';
import { CandleStore, type CandleSelection } from '../../ledger/candle-store';
import { openDatabase } from '../../infra/postgres';
import { createLogger } from '../../infra/logger';
import { anyStoreOption, storeSelection } from '../candle-args';
import { initialCapitalOption, intOption, numberOption } from '../options';

/**
 * `trader backtest --data FILE... [--strategy NAME] [--json OUT] [--report OUT.html]
 *  [--monte-carlo RUNS [--seed N]] [--initial-capital N] [--fee-bps N] [--slippage-bps N]
 *  [--models DIR] [--account-gates]`, or with
 * `--since WHEN [--until WHEN] [--symbols A,B] [--timeframe TF] [--exchange ID]` instead of `--data`
 *
 * Runs lib/backtest over recorded candle files (one symbol per file, named
 * `<exchange>_<BASE>-<QUOTE>_<timeframe>.csv`) or over candle store series, and prints a summary. Defaults come from the
 * configuration (INITIAL_CAPITAL, MAX_POSITION_SIZE, STOP_LOSS_PCT, TAKE_PROFIT_PCT, MAX_DRAWDOWN,
 * STRATEGY); flags override. Fees and slippage default to the paper exchange's own (10 bps, 0 bps),
 * so that `trader up --replay` over the same files trades the same.
 *
 * `--json OUT` writes:
 *   {
 *     trades:        [{ symbol, side: 'long', qty, entryTime, entryPrice, exitTime, exitPrice,
 *                       fees, pnl, exitReason, entryOrderId, exitOrderId }]   times in epoch ms,
 *                     prices and money in the quote currency, fees and pnl after both fees;
 *                     exitReason: stop_loss | take_profit | trailing_stop | signal | emergency;
 *                     stopPrice, targetPrice: the protective orders placed at entry
 *     metrics:       { totalReturn, annualizedReturn, sharpe, sortino, calmar, maxDrawdown,
 *                       profitFactor, expectancy, winRate, trades, wins, losses, exposure,
 *                       buyAndHoldReturn, totalFees, initialEquity, finalEquity, bars, ... }
 *                     fractions (0.05 = 5 %), null when undefined (see lib/backtest/metrics.ts)
 *     openPositions: [{ symbol, side, qty, entryTime, entryPrice, markTime, markPrice,
 *                       unrealizedPnl, stopPrice, targetPrice }]   left open at the end of data
 *     config:        { files, symbols, strategy, initialCapital, sleeveCapital, fees, slippage,
 *                       risk, accountGates, featureSchema }
 *     statistics:    { cagr, marketChange, maxConsecutiveWins, maxConsecutiveLosses,
 *                       averageDurationMs, winnersAverageDurationMs, losersAverageDurationMs,
 *                       bestTrade, worstTrade, bestDay, worstDay, winningDays, losingDays,
 *                       flatDays, monthlyReturns, bySymbol, byExitReason }  (lib/backtest/statistics.ts)
 *     monteCarlo:    with --monte-carlo: { runs, seed, trades, actual, shuffle, bootstrap },
 *                     shuffle and bootstrap each { finalReturn, maxDrawdown: { p5, p50, p95 },
 *                     probabilityOfLoss }  (lib/backtest/monte-carlo.ts)
 *     symbols:       per-symbol summary;  equityCurve: [{ time, equity }];  rejected: [...]
 *   }
 *
 * `--report OUT.html` writes one self-contained HTML page (backtester/report): candles per symbol
 * with entries, exits, stops and targets, equity and drawdown against buy and hold, the tables.
 */



export const BacktestCommandOptions = z.object({
  data: z.array(z.string().min(1)).min(1, '--data needs at least one candle CSV file').optional(),
  exchange: z.string().optional(),
  symbols: z.union([z.string(), z.array(z.string())]).optional(),
  timeframe: z.string().optional(),
  since: z.string().optional(),
  until: z.string().optional(),
  strategy: z.string().optional(),
  params: z.string().min(1).optional(),
  json: z.string().min(1).optional(),
  report: z.string().min(1).optional(),
  monteCarlo: intOption('--monte-carlo', 1, MAX_MONTE_CARLO_RUNS, 'a number of runs'),
  seed: intOption('--seed', 0, 2 ** 31 - 1, 'a seed'),
  initialCapital: initialCapitalOption(),
  feeBps: numberOption('--fee-bps', (n) => n >= 0 && n <= 1000, 'basis points from 0 to 1000, e.g. 10 for 0.1 %'),
  slippageBps: numberOption('--slippage-bps', (n) => n >= 0 && n <= 1000, 'basis points from 0 to 1000, e.g. 5'),
  models: z.string().min(1).optional(),
  accountGates: z.boolean().optional(),
});
export type BacktestCommandOptions = z.input<typeof BacktestCommandOptions>;

export interface BacktestCommandIo {
  info(line: string): void;
  warn(line: string): void;
}

/** Turns a model directory into a signal function (default: modelDirLoader). */
export type ModelSignalLoader = (dir: string, parts: readonly ModelPart[]) => Promise<SignalFn>;

export interface BacktestCommandDeps {
  /** Default: loadConfig() (environment and .env). The rest is needed to read the candle store. */
  config?: () => Pick<AppConfig, 'risk' | 'strategy'> & Partial<Pick<AppConfig, 'strategyParams' | 'exchange' | 'symbols' | 'timeframe' | 'databaseUrl' | 'home' | 'postgresPort'>>;
  loadSignal?: ModelSignalLoader;
  /** The ledger database holding the candle store (default: opened from the configuration). */
  sql?: postgres.Sql;
  now?: () => number;
}

const consoleIo: BacktestCommandIo = { info: (l) => console.log(l), warn: (l) => console.error(l) };

/**
 * A model version directory (written by `trader train`) served through models/signal.ts, the
 * source the live traders use. Checked up front: a backtest of a model that cannot load would
 * only report that nothing was traded.
 */
export const modelDirLoader: ModelSignalLoader = async (dir, parts) => {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--models ${dir}: no such directory`);
  if (!existsSync(join(dir, MANIFEST_FILE))) throw new UsageError(`no model in ${dir}; run trader train`);
  const source = createModelSignalSource({ dir, strategy: strategyServing(parts) ?? 'ensemble' });
  const ready = await source.ready();
  if (!ready.ok) throw new UsageError(`--models ${dir}: ${ready.error}`);
  return source.backtest;
};

export async function runBacktestCommand(raw: unknown, io: BacktestCommandIo = consoleIo, deps: BacktestCommandDeps = {}): Promise<BacktestResult & { monteCarlo?: ReportMonteCarlo }> {
  const parsed = BacktestCommandOptions.safeParse(raw);
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => (i.code === 'custom' ? i.message : `--${i.path.join('.')}: ${i.message}`)).join('; '));
  const opts = parsed.data;
  const cfg = (deps.config ?? loadConfig)();
  // Found, type-checked and loaded before any candle is read (a StrategyLoadError or StrategyParamsError is bad input).
  let prepared: PreparedStrategy;
  try {
    prepared = prepareStrategy(opts.strategy ?? cfg.strategy, opts.params !== undefined ? readStrategyParams(opts.params) : opts.strategy === undefined ? cfg.strategyParams : undefined);
  } catch (err) {
    if (err instanceof StrategyLoadError || err instanceof StrategyParamsError) throw new UsageError(err.message);
    throw err;
  }
  const name = prepared.ref;
  const storeArgs = { exchange: opts.exchange, symbols: opts.symbols, timeframe: opts.timeframe, since: opts.since, until: opts.until };
  if (opts.data && anyStoreOption(storeArgs)) throw new UsageError('--data reads candle files; --exchange, --symbols, --timeframe, --since and --until read the candle store: give one or the other');
  if (!opts.data && !anyStoreOption(storeArgs)) throw new UsageError('give candle files (--data FILE...) or candle store series (--since WHEN, with --symbols, --timeframe and --exchange defaulting to SYMBOLS, TIMEFRAME and EXCHANGE)');
  for (const f of opts.data ?? []) {
    if (!existsSync(f)) throw new UsageError(`--data ${f}: no such file`);
    if (statSync(f).isDirectory()) throw new UsageError(`--data ${f}: is a directory; give the candle CSV files`);
  }
  if (opts.json !== undefined && opts.data?.includes(opts.json)) throw new UsageError('--json is one of the input files; refusing to overwrite candles');
  if (opts.report !== undefined && opts.data?.includes(opts.report)) throw new UsageError('--report is one of the input files; refusing to overwrite candles');
  if (opts.report !== undefined && opts.report === opts.json) throw new UsageError('--report and --json name the same file');
  if (opts.seed !== undefined && opts.monteCarlo === undefined) throw new UsageError('--seed goes with --monte-carlo');
  const selection = opts.data
    ? undefined
    : storeSelection(storeArgs, { exchange: cfg.exchange?.id ?? 'binance', symbols: cfg.symbols ?? [], timeframe: cfg.timeframe ?? '1h' }, (deps.now ?? Date.now)());

  let signal: SignalFn | undefined;
  const parts = prepared.host.modelParts;
  if (parts.length > 0) {
    // The model `trader up` would trade with: --models, else the registry's champion, else the committed bootstrap model.
    const dir = opts.models ?? (await championDir(cfg, deps)) ?? BOOTSTRAP_MODEL_DIR;
    if (opts.models === undefined) io.info(`model: ${dir === BOOTSTRAP_MODEL_DIR ? 'the committed bootstrap model (models/bootstrap; the registry has no champion)' : `the registry's champion (${dir})`}`);
    signal = await (deps.loadSignal ?? modelDirLoader)(dir, parts);
  }

  const feeBps = opts.feeBps ?? DEFAULT_FEE_BPS;
  const initialCapital = opts.initialCapital ?? cfg.risk.initialCapital;
  let result: BacktestResult;
  let series: BacktestSeries[];
  try {
    const stored = selection ? await readStoreSeries(selection, cfg, deps) : undefined;
    ({ result, series } = await runBacktestWithSeries({
      files: opts.data,
      series: stored,
      strategy: name,
      ...(prepared.params ? { strategyParams: prepared.params } : {}),
      strategyHost: prepared.host,
      initialCapital,
      fees: { maker: feeBps / 10_000, taker: feeBps / 10_000 },
      slippage: { bps: opts.slippageBps ?? DEFAULT_SLIPPAGE_BPS },
      risk: riskInputFromEnv(cfg.risk),
      signal,
      accountGates: opts.accountGates === true,
    }));
  } catch (err) {
    if (isBacktestInputError(err)) throw new UsageError((err as Error).message);
    throw err;
  }

  const monteCarlo: ReportMonteCarlo | undefined = opts.monteCarlo === undefined ? undefined : backtestMonteCarlo(result, opts.monteCarlo, opts.seed ?? 1);
  if (opts.json !== undefined) {
    const { config, trades, metrics, statistics, openPositions, symbols, equityCurve, rejected } = result;
    writeAtomically(opts.json, JSON.stringify({ trades, metrics, openPositions, config, statistics, ...(monteCarlo ? { monteCarlo } : {}), symbols, equityCurve, rejected }, null, 2) + '\n');
  }
  if (opts.report !== undefined) writeAtomically(opts.report, renderReportHtml(backtestReportData(result, series, { monteCarlo })));
  for (const line of summaryLines(result, feeBps, opts.slippageBps ?? DEFAULT_SLIPPAGE_BPS)) io.info(line);
  if (monteCarlo) for (const line of monteCarloLines(monteCarlo)) io.info(line);
  for (const s of result.symbols) if (s.decisions === 0) io.warn(`note: ${s.symbol}: no decision (${s.candles} candles; the features need more than ${s.candles})`);
  if (result.rejected.length > 0) io.warn(`note: ${result.rejected.length} order(s) refused by the paper exchange (first: ${result.rejected[0].symbol} ${result.rejected[0].reason})`);
  if (opts.json !== undefined) io.info(`wrote ${opts.json}`);
  if (opts.report !== undefined) io.info(`wrote ${opts.report} (open it in a browser; it needs no network)`);
  return monteCarlo ? Object.assign(result, { monteCarlo }) : result;
}

export function monteCarloLines(mc: ReportMonteCarlo): string[] {
  if (!mc.bootstrap || !mc.shuffle) return ['', `Monte Carlo: no closed trades to resample`];
  const band = (b: { p5: number; p50: number; p95: number }, neg = false) => [b.p5, b.p50, b.p95].map((x) => pct(neg && x !== 0 ? -x : x));
  return [
    '',
    `Monte Carlo, ${mc.runs} runs over ${mc.trades} trades (seed ${mc.seed}); drawdowns over trade closes`,
    ...table([
      ['', '5 %', '50 %', '95 %'],
      ['bootstrap final return', ...band(mc.bootstrap.finalReturn)],
      ['bootstrap max drawdown', ...band(mc.bootstrap.maxDrawdown, true)],
      ['shuffle max drawdown', ...band(mc.shuffle.maxDrawdown, true)],
    ]),
    `probability of a loss (bootstrap): ${(mc.bootstrap.probabilityOfLoss * 100).toFixed(1)} %`,
  ];
}

/**
 * The registry's champion model directory, as `trader up` finds it (models/signal.ts
 * registryResolver), or undefined when there is none or no database is configured.
 */
async function championDir(cfg: Partial<Pick<AppConfig, 'databaseUrl' | 'home' | 'postgresPort'>>, deps: BacktestCommandDeps): Promise<string | undefined> {
  if (deps.sql) return (await registryResolver(deps.sql).champion())?.dir;
  if (cfg.home === undefined) return undefined;
  const db = await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, port: cfg.postgresPort, log: createLogger({ level: 'warn', name: 'backtest' }) });
  try {
    return (await registryResolver(db.sql).champion())?.dir;
  } finally {
    await db.close();
  }
}

/** The selected series from the candle store (the ledger database of the configuration). */
async function readStoreSeries(sel: CandleSelection, cfg: Partial<Pick<AppConfig, 'databaseUrl' | 'home' | 'postgresPort'>>, deps: BacktestCommandDeps): Promise<BacktestSeries[]> {
  if (deps.sql) return loadStoreSeries(new CandleStore(deps.sql), sel);
  if (cfg.home === undefined) throw new Error('reading the candle store needs TRADER_HOME or DATABASE_URL in the configuration');
  const db = await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, port: cfg.postgresPort, log: createLogger({ level: 'warn', name: 'backtest' }) });
  try {
    return await loadStoreSeries(new CandleStore(db.sql), sel);
  } finally {
    await db.close();
  }
}

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString().slice(0, 16).replace('T', ' '));
const pct = (x: number | null) => (x === null ? 'n/a' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} %`);
const num = (x: number | null, d = 2) => (x === null ? 'n/a' : x.toFixed(d));

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ').trimEnd());
}

export function summaryLines(r: BacktestResult, feeBps: number, slippageBps: number): string[] {
  const m = r.metrics;
  const first = Math.min(...r.symbols.map((s) => s.firstDecisionTime ?? Infinity));
  const last = Math.max(...r.symbols.map((s) => s.lastCandleTime ?? -Infinity));
  const series = r.symbols.map((s) => `${s.symbol} ${s.timeframe}`).join(', ');
  const out = [
    `Backtest '${r.config.strategy}'${r.config.strategyIdentity ? ` (${identityLabel(r.config.strategyIdentity)})` : ''} over ${series}`,
    `${Number.isFinite(first) ? iso(first) : '-'} .. ${Number.isFinite(last) ? iso(last) : '-'} UTC, ${m.bars} bars; capital ${num(r.config.initialCapital)} in ${r.symbols.length} sleeve(s) of ${num(r.config.sleeveCapital)}; fees ${feeBps} bps, slippage ${slippageBps} bps`,
    '',
    ...table([
      ['metric', 'value'],
      ['total return', pct(m.totalReturn)],
      ['buy and hold', pct(m.buyAndHoldReturn)],
      ['annualized return', pct(m.annualizedReturn)],
      ['max drawdown', pct(m.maxDrawdown === 0 ? 0 : -m.maxDrawdown)],
      ['sharpe', num(m.sharpe)],
      ['sortino', num(m.sortino)],
      ['calmar', num(m.calmar)],
      ['trades', String(m.trades)],
      ['win rate', m.winRate === null ? 'n/a' : `${(m.winRate * 100).toFixed(1)} %`],
      ['profit factor', num(m.profitFactor)],
      ['expectancy / trade', num(m.expectancy, 4)],
      ['fees paid', num(m.totalFees)],
      ['exposure', `${(m.exposure * 100).toFixed(1)} %`],
      ['final equity', num(m.finalEquity)],
    ]),
    '',
    ...table([
      ['symbol', 'decisions', 'trades', 'realized pnl', 'fees', 'buy and hold'],
      ...r.symbols.map((s) => [s.symbol, String(s.decisions), String(s.trades), num(s.realizedPnl), num(s.feesPaid), pct(s.buyAndHoldReturn)]),
    ]),
  ];
  const reasons = new Map<string, number>();
  for (const t of r.trades) reasons.set(t.exitReason, (reasons.get(t.exitReason) ?? 0) + 1);
  if (reasons.size > 0) out.push('', `exits: ${[...reasons].map(([k, v]) => `${k} ${v}`).join(', ')}`);
  out.push(
    '',
    r.openPositions.length === 0
      ? 'open positions at the end of data: none'
      : `open positions at the end of data (left open, not counted as trades): ${r.openPositions.map((p) => `${p.symbol} ${p.qty} @ ${p.entryPrice} (mark ${p.markPrice}, uPnL ${num(p.unrealizedPnl)})`).join('; ')}`,
  );
  return out;
}
