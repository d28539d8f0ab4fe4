import fs from 'node:fs';
import { z } from 'zod';
import type { AppConfig } from '../../infra/config';
import { loadConfig } from '../../infra/config';
import { UsageError } from '../../infra/errors';
import { writeAtomically } from '../../infra/files';
import { createLogger } from '../../infra/logger';
import { openDatabase } from '../../infra/postgres';
import { closedTradesForReport, equitySnapshotsForReport, openPositionsForReport } from '../../ledger/report-queries';
import { CandleStore } from '../../ledger/candle-store';
import { MAX_MONTE_CARLO_RUNS, monteCarlo } from '../../lib/backtest';
import { timeframeToMs } from '../../lib/candles';
import { isBacktestInputError, loadFile } from '../../backtester/run';
import { ledgerReportData, renderReportHtml, type LedgerCandles, type ReportData, type ReportMonteCarlo } from '../../backtester/report';
import { readLastRun, REPLAY_DATABASE } from './up';
import { initialCapitalOption, intOption } from '../options';

/**
 * `trader report --from-ledger --out FILE.html [--replay] [--data FILE...] [--initial-capital N]
 *  [--monte-carlo RUNS [--seed N]] [--json OUT]`
 *
 * The HTML report of `trader backtest --report`, for what an account actually did: its ledger
 * (the last run's, as `trader trades` reads it; `--replay`: the last replay's). Candles for the
 * charts, the marks and buy-and-hold come from `--data` files (one symbol each) when given, else
 * from the candle store; without either the report shows realized PnL only and says so. `--json OUT` writes the same figures as `trader backtest --json` (trades, metrics,
 * statistics, monteCarlo, equityCurve).
 */

export const ReportCommandOptions = z.object({
  fromLedger: z.boolean().optional(),
  out: z.string().min(1, '--out needs a file name'),
  replay: z.boolean().optional(),
  data: z.array(z.string().min(1)).optional(),
  json: z.string().min(1).optional(),
  initialCapital: initialCapitalOption(),
  monteCarlo: intOption('--monte-carlo', 1, MAX_MONTE_CARLO_RUNS, 'a number of runs'),
  seed: intOption('--seed', 0, 2 ** 31 - 1, 'a seed'),
});
export type ReportCommandOptions = z.input<typeof ReportCommandOptions>;

export interface ReportCommandIo {
  info(line: string): void;
  warn(line: string): void;
}

export interface ReportCommandDeps {
  config?: () => Pick<AppConfig, 'home' | 'databaseUrl' | 'postgresPort' | 'risk'>;
}

const consoleIo: ReportCommandIo = { info: (l) => console.log(l), warn: (l) => console.error(l) };

export async function runReportCommand(raw: unknown, io: ReportCommandIo = consoleIo, deps: ReportCommandDeps = {}): Promise<ReportData> {
  const parsed = ReportCommandOptions.safeParse(raw);
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => (i.code === 'custom' ? i.message : `--${i.path.join('.')}: ${i.message}`)).join('; '));
  const opts = parsed.data;
  if (!opts.fromLedger) throw new UsageError('give --from-ledger (the report of an account\'s ledger); a backtest writes its report with `trader backtest --report FILE.html`');
  if (opts.seed !== undefined && opts.monteCarlo === undefined) throw new UsageError('--seed goes with --monte-carlo');
  const inputs = opts.data ?? [];
  for (const f of inputs) {
    if (!fs.existsSync(f)) throw new UsageError(`--data ${f}: no such file`);
    if (fs.statSync(f).isDirectory()) throw new UsageError(`--data ${f}: is a directory; give the candle CSV files`);
  }
  for (const [flag, file] of [['--out', opts.out], ['--json', opts.json]] as const) {
    if (file !== undefined && inputs.includes(file)) throw new UsageError(`${flag} is one of the input files; refusing to overwrite candles`);
  }
  if (opts.json !== undefined && opts.json === opts.out) throw new UsageError('--out and --json name the same file');
  const files: LedgerCandles[] = inputs.map((f) => {
    try {
      const s = loadFile(f);
      return { symbol: s.symbol, timeframe: s.timeframe, timeframeMs: s.timeframeMs, candles: s.candles, source: f };
    } catch (err) {
      if (isBacktestInputError(err)) throw new UsageError((err as Error).message);
      throw err;
    }
  });

  const cfg = (deps.config ?? loadConfig)();
  const run = readLastRun(cfg.home);
  const database = opts.replay || run?.database === REPLAY_DATABASE ? REPLAY_DATABASE : undefined;
  const db = await openDatabase({ databaseUrl: cfg.databaseUrl, home: cfg.home, port: cfg.postgresPort, log: createLogger({ level: 'warn', name: 'report' }), database });
  let data: ReportData;
  try {
    const trades = await closedTradesForReport(db.sql);
    const openPositions = await openPositionsForReport(db.sql);
    // A replay's portfolio checks (and so its equity snapshots) run on the wall clock while its
    // trades carry the candles' times: its equity is rebuilt from the trades instead.
    const snapshots = database === REPLAY_DATABASE ? [] : await equitySnapshotsForReport(db.sql);
    // Candles: the files given, else the candle store.
    const candles: LedgerCandles[] = [];
    const markets = new Map<string, string>();
    for (const t of [...trades, ...openPositions]) markets.set(t.symbol, t.exchange);
    const first = Math.min(...trades.map((t) => t.entryTime), ...openPositions.map((p) => p.openedAt));
    const last = Math.max(...trades.map((t) => t.exitTime), Date.now());
    const store = new CandleStore(db.sql);
    for (const [symbol, exchange] of markets) {
      const fromFile = files.find((f) => f.symbol === symbol);
      const stored = fromFile || !Number.isFinite(first) ? undefined : await storedCandles(store, exchange, symbol, first - 7 * 86_400_000, last);
      if (stored) candles.push(stored);
      else if (fromFile) candles.push(fromFile);
    }
    for (const f of files) if (!markets.has(f.symbol)) io.warn(`note: ${f.symbol} (${f.source}) has no trades in this ledger`);
    const initialCapital = opts.initialCapital ?? cfg.risk.initialCapital;
    let mc: ReportMonteCarlo | undefined;
    if (opts.monteCarlo !== undefined) {
      const seed = opts.seed ?? 1;
      mc = monteCarlo(trades, initialCapital, { runs: opts.monteCarlo, seed });
    }
    const label = `${database ?? 'ledger'}${run ? ` (last run: ${run.mode}, account ${run.account})` : ''}`;
    data = ledgerReportData({
      trades,
      openPositions,
      snapshots,
      candles,
      initialCapital,
      label,
      monteCarlo: mc,
      config: { source: 'ledger', database: db.url, lastRun: run ?? undefined, initialCapital, candleFiles: inputs, risk: cfg.risk },
    });
  } finally {
    await db.close();
  }
  writeAtomically(opts.out, renderReportHtml(data));
  if (opts.json !== undefined) {
    const { trades, metrics, statistics, monteCarlo: m, equity, openPositions } = data;
    writeAtomically(opts.json, `${JSON.stringify({ trades, metrics, statistics, ...(m ? { monteCarlo: m } : {}), openPositions, equityCurve: equity }, null, 2)}\n`);
  }
  const m = data.metrics;
  io.info(`${data.title}: ${data.trades.length} closed trades, ${data.openPositions.length} open position(s); total return ${(m.totalReturn * 100).toFixed(2)} %, max drawdown ${(m.maxDrawdown * 100).toFixed(2)} %`);
  for (const n of data.notes) io.info(`  ${n}`);
  io.info(`wrote ${opts.out} (open it in a browser; it needs no network)`);
  if (opts.json !== undefined) io.info(`wrote ${opts.json}`);
  return data;
}

/**
 * A traded symbol's candles from the candle store: its series on the trades' exchange if stored,
 * else the symbol's largest stored series (a replay's trades carry the label `replay` while its
 * candles keep their exchange); the timeframe is the one the store holds most of.
 */
async function storedCandles(store: CandleStore, exchange: string, symbol: string, since: number, until: number): Promise<LedgerCandles | undefined> {
  const series = (await store.coverage({ symbols: [symbol] })).filter((c) => c.candles > 0);
  series.sort((a, b) => Number(b.exchange === exchange) - Number(a.exchange === exchange) || b.candles - a.candles);
  const best = series[0];
  if (!best) return undefined;
  const candles = await store.candles(best.exchange, symbol, best.timeframe, { since, until });
  if (candles.length === 0) return undefined;
  return { symbol, timeframe: best.timeframe, timeframeMs: timeframeToMs(best.timeframe), candles, source: `the candle store (${best.exchange})` };
}
