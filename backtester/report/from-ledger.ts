import type { Candle } from '../../lib/candles';
import {
  backtestStatistics,
  buyAndHoldCurve,
  computeMetrics,
  drawdownCurve,
  tradeEquityCurve,
  tradeExposure,
  type EquityPoint,
  type OpenPositionReport,
} from '../../lib/backtest';
import type { LedgerOpenPosition, LedgerTradeRow } from '../../ledger/report-queries';
import { chartCandles, type ReportData, type ReportMonteCarlo } from './report-data';

/**
 * A report of what an account actually did, from its ledger (live, paper or a replay through
 * Temporal): the closed trades with the stops and targets placed at entry, the positions still
 * open, and the candles of the traded symbols when they can be had (the candle store, or files).
 *
 * Equity: the ledger's equity snapshots when there are at least two; otherwise rebuilt from the
 * trades (lib/backtest/trade-equity) on the candles' time grid, open trades marked at the close,
 * or, without candles, realized PnL on a daily grid. The notes at the top of the page say which.
 */

export interface LedgerCandles {
  symbol: string;
  timeframe: string;
  timeframeMs: number;
  candles: Candle[];
  /** Where they came from, for the notes: a file path or `candle store`. */
  source: string;
}

export interface LedgerReportInput {
  trades: LedgerTradeRow[];
  openPositions: LedgerOpenPosition[];
  snapshots: EquityPoint[];
  candles: LedgerCandles[];
  initialCapital: number;
  /** Which ledger: the database and account, for the title. */
  label: string;
  config: Record<string, unknown>;
  monteCarlo?: ReportMonteCarlo;
  generatedAt?: Date;
}

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');

export function ledgerReportData(input: LedgerReportInput): ReportData {
  const { trades, candles } = input;
  const symbols = [...new Set([...trades.map((t) => t.symbol), ...input.openPositions.map((p) => p.symbol)])].sort();
  const bySymbol = new Map(candles.map((c) => [c.symbol, c]));
  const notes: string[] = [];
  const starts = [...trades.map((t) => t.entryTime), ...input.openPositions.map((p) => p.openedAt)];
  const ends = trades.map((t) => t.exitTime);
  const from = starts.length > 0 ? Math.min(...starts) : Date.now();
  const lastCandle = Math.max(-Infinity, ...candles.map((c) => (c.candles.length ? c.candles[c.candles.length - 1].timestamp + c.timeframeMs : -Infinity)));
  const to = Math.max(from, ...ends, Number.isFinite(lastCandle) && input.openPositions.length > 0 ? lastCandle : -Infinity);

  // The period's candles (from the candle before the first entry) and the time grid they give.
  const inPeriod = candles.map((c) => ({ ...c, candles: c.candles.filter((k) => k.timestamp + c.timeframeMs >= from - c.timeframeMs && k.timestamp < to) })).filter((c) => c.candles.length > 0);
  const tf = inPeriod.length > 0 ? Math.min(...inPeriod.map((c) => c.timeframeMs)) : DAY;
  const gridStart = Math.floor(from / tf) * tf;
  const times: number[] = [];
  for (let t = gridStart; t <= to + tf; t += tf) times.push(t);

  let equity: EquityPoint[];
  if (input.snapshots.length >= 2) {
    equity = input.snapshots;
    notes.push(`Equity: ${input.snapshots.length} snapshots recorded in the ledger.`);
  } else {
    equity = tradeEquityCurve(times, trades, input.initialCapital, inPeriod);
    notes.push(
      inPeriod.length > 0
        ? `Equity rebuilt from the ledger's trades: ${input.initialCapital} plus realized PnL, open trades marked at each candle close (${inPeriod.map((c) => `${c.symbol} ${c.timeframe} from ${c.source}`).join(', ')}); the ledger has no equity snapshots.`
        : `Equity rebuilt from the ledger's trades: ${input.initialCapital} plus realized PnL at each exit, on a daily grid (no candles given: drawdowns inside trades are not seen; give --data to mark them).`,
    );
  }
  if (trades.length === 0) notes.push('The ledger has no closed trades yet.');
  const missing = symbols.filter((s) => !bySymbol.has(s));
  if (missing.length > 0) notes.push(`No candles for ${missing.join(', ')}: no chart, and buy and hold leaves ${missing.length > 1 ? 'them' : 'it'} out.`);

  const holdings = inPeriod.filter((c) => symbols.includes(c.symbol)).map((c) => {
    const first = c.candles.find((k) => k.timestamp + c.timeframeMs >= from) ?? c.candles[0];
    return { candles: c.candles, timeframeMs: c.timeframeMs, startTime: first.timestamp };
  });
  const changes = holdings.map((h) => {
    const start = h.candles.find((k) => k.timestamp === h.startTime)!;
    return h.candles[h.candles.length - 1].close / start.close - 1;
  });
  const exposure = tradeExposure(equity.map((p) => p.time), trades, symbols.length > 0 ? symbols : ['-']);
  const metrics = computeMetrics({
    equity: equity.length > 0 ? equity : [{ time: from, equity: input.initialCapital }],
    trades,
    timeframeMs: input.snapshots.length >= 2 ? medianSpacing(equity) : tf,
    exposure,
    buyAndHoldReturn: changes.length > 0 ? changes.reduce((a, b) => a + b, 0) / changes.length : null,
  });
  const reportTrades = trades.map((t) => ({ symbol: t.symbol, qty: t.qty, entryTime: t.entryTime, entryPrice: t.entryPrice, exitTime: t.exitTime, exitPrice: t.exitPrice, fees: t.fees, pnl: t.pnl, exitReason: t.exitReason, stopPrice: t.stopPrice, targetPrice: t.targetPrice }));
  const openPositions: OpenPositionReport[] = input.openPositions.map((p) => {
    const c = bySymbol.get(p.symbol);
    const last = c?.candles[c.candles.length - 1];
    return {
      symbol: p.symbol, side: 'long', qty: p.qty, entryTime: p.openedAt, entryPrice: p.entryPrice,
      markTime: last?.timestamp ?? null, markPrice: last?.close ?? null, unrealizedPnl: last ? (last.close - p.entryPrice) * p.qty : null, stopPrice: null, targetPrice: null,
    };
  });
  return {
    title: `Account report: ${input.label}`,
    subtitle: `${symbols.join(', ') || 'no symbols'}; ${trades.length} closed trades; ${iso(from)} .. ${iso(to)} UTC`,
    generatedAt: (input.generatedAt ?? new Date()).toISOString(),
    notes,
    metrics,
    statistics: backtestStatistics({ trades: reportTrades.map((t) => ({ ...t, exitReason: t.exitReason ?? 'unknown' })), equity, symbolChanges: changes }),
    monteCarlo: input.monteCarlo ?? null,
    trades: reportTrades,
    openPositions,
    charts: inPeriod.filter((c) => symbols.includes(c.symbol)).map((c) => ({ symbol: c.symbol, timeframe: c.timeframe, timeframeMs: c.timeframeMs, candles: chartCandles(c.candles, null) })),
    equity,
    buyAndHold: holdings.length === symbols.length && holdings.length > 0 ? buyAndHoldCurve(equity.map((p) => p.time), holdings, input.initialCapital) : null,
    drawdown: drawdownCurve(equity),
    config: input.config,
  };
}

function medianSpacing(points: readonly EquityPoint[]): number {
  const gaps = points.slice(1).map((p, i) => p.time - points[i].time).sort((a, b) => a - b);
  return Math.max(60_000, gaps[Math.floor(gaps.length / 2)] ?? DAY);
}
