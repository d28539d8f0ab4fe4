import type { Candle } from '../../lib/candles';
import { identityName } from '../../lib/strategy/run';
import type { LedgerTradeRow } from '../../ledger/report-queries';
import {
  buyAndHoldCurve,
  drawdownCurve,
  type BacktestMetrics,
  type BacktestResult,
  type BacktestSeries,
  type BacktestStatistics,
  type EquityPoint,
  type MonteCarloResult,
  type OpenPositionReport,
} from '../../lib/backtest';

/**
 * What a report shows, whatever it was made from (a backtest, or a ledger of a live or replayed
 * account): plain JSON, embedded in the HTML for the charts and rendered into its tables.
 */

/** A closed trade as the report shows it: the ledger's row without the exchange, side and order ids (a backtest's trades have these fields). */
export type ReportTrade = Omit<LedgerTradeRow, 'exchange' | 'side' | 'entryOrderId' | 'exitOrderId'>;

/** One symbol's candles for its chart: [open time ms, open, high, low, close]. */
export interface ReportChart {
  symbol: string;
  timeframe: string;
  timeframeMs: number;
  candles: Array<[number, number, number, number, number]>;
}

/** lib/backtest's Monte Carlo result (its seed included). */
export type ReportMonteCarlo = MonteCarloResult;

export interface ReportData {
  title: string;
  subtitle: string;
  generatedAt: string;
  /** Where the figures come from, said at the top (e.g. "equity rebuilt from realized PnL"). */
  notes: string[];
  metrics: BacktestMetrics;
  statistics: BacktestStatistics;
  monteCarlo: ReportMonteCarlo | null;
  trades: ReportTrade[];
  openPositions: OpenPositionReport[];
  charts: ReportChart[];
  equity: EquityPoint[];
  /** Equal-weight buy and hold of the same symbols; null when there are no candles to price it. */
  buyAndHold: EquityPoint[] | null;
  drawdown: Array<{ time: number; drawdown: number }>;
  /** Shown as a table of key paths (risk.stopLossPct = 0.02, ...). */
  config: Record<string, unknown>;
}

export const chartCandles = (candles: readonly Candle[], from: number | null): ReportChart['candles'] =>
  candles.filter((c) => from === null || c.timestamp >= from).map((c) => [c.timestamp, c.open, c.high, c.low, c.close]);

const iso = (ms: number | null) => (ms === null || !Number.isFinite(ms) ? '-' : new Date(ms).toISOString().slice(0, 16).replace('T', ' '));

/** A backtest and the candles it ran over. */
export function backtestReportData(r: BacktestResult, series: readonly BacktestSeries[], opts: { monteCarlo?: ReportMonteCarlo; generatedAt?: Date } = {}): ReportData {
  const bySymbol = new Map(series.map((s) => [s.symbol, s]));
  const first = Math.min(...r.symbols.map((s) => s.firstDecisionTime ?? Infinity));
  const last = Math.max(...r.symbols.map((s) => s.lastCandleTime ?? -Infinity));
  const holdings = r.symbols.flatMap((s) => {
    const ser = bySymbol.get(s.symbol);
    return ser ? [{ candles: ser.candles, timeframeMs: ser.timeframeMs, startTime: s.firstDecisionTime }] : [];
  });
  return {
    title: `Backtest: ${r.config.strategyIdentity ? identityName(r.config.strategyIdentity) : r.config.strategy}`,
    subtitle: `${r.symbols.map((s) => `${s.symbol} ${s.timeframe}`).join(', ')}; ${iso(first)} .. ${iso(last)} UTC`,
    generatedAt: (opts.generatedAt ?? new Date()).toISOString(),
    notes: [
      ...(r.config.strategyIdentity
        ? [`Strategy ${r.config.strategyIdentity.name} ${r.config.strategyIdentity.version} (source ${r.config.strategyIdentity.source}, parameters ${r.config.strategyIdentity.params}: ${JSON.stringify(r.config.strategyParams ?? {})}), from ${r.config.strategy}.`]
        : []),
      'Fills follow the paper exchange: market orders at the decision candle\'s close with fee and slippage, stops and targets on later candles (a candle touching both counts as the stop). Each symbol trades its own sleeve of the capital.',
      ...(r.openPositions.length > 0 ? [`${r.openPositions.length} position(s) still open at the end of the data: marked in the equity, not counted as trades.`] : []),
    ],
    metrics: r.metrics,
    statistics: r.statistics,
    monteCarlo: opts.monteCarlo ?? null,
    trades: r.trades.map((t) => ({ ...t })),
    openPositions: r.openPositions,
    charts: r.symbols.flatMap((s) => {
      const ser = bySymbol.get(s.symbol);
      return ser ? [{ symbol: s.symbol, timeframe: s.timeframe, timeframeMs: ser.timeframeMs, candles: chartCandles(ser.candles, s.firstDecisionTime) }] : [];
    }),
    equity: r.equityCurve,
    buyAndHold: holdings.length === r.symbols.length ? buyAndHoldCurve(r.equityCurve.map((p) => p.time), holdings, r.config.initialCapital) : null,
    drawdown: drawdownCurve(r.equityCurve),
    config: { ...r.config } as Record<string, unknown>,
  };
}
