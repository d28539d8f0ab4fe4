import type { DecisionReport } from './contracts/trading';
import type { ModelSignal } from './engine/types';
import type { BreakerStateName } from './exchange/types';
import type { Regime } from './regime';

/**
 * The metrics the bot writes to InfluxDB, as plain points: one builder per measurement, and the
 * catalogue below that docs/metrics.md's metric table, the Grafana dashboard and the tests are checked
 * against. Pure: activities/metrics turns these into line protocol and sends them.
 *
 * Time: trading points carry market time (the candle close, the fill) so that a replay lands on
 * the replayed period; account and process points carry the wall clock (when they were measured).
 * Every number is written as a float, every flag as 0/1, so a field keeps one type forever (InfluxDB
 * refuses a point whose field changes type).
 */

export type FieldValue = number | string;

export interface MetricPoint {
  measurement: MeasurementName;
  tags: Record<string, string>;
  fields: Record<string, FieldValue>;
  /** Epoch ms. */
  time: number;
}

/** What every trading point says about where it comes from. */
export interface TradingTags {
  /** The account (`paper-binance`, `replay`): the dashboard's account variable. */
  account: string;
  /** The exchange as the operator knows it (`binance`, `replay`). */
  exchange: string;
  mode: 'paper' | 'live' | 'replay';
  strategy: string;
}

/** Which process a health point comes from. */
export interface ProcessTags {
  /** trading, training, telegram, or up (trading and training in one process). */
  worker: string;
  host: string;
}

interface MeasurementDoc {
  what: string;
  time: 'market' | 'wall';
  tags: readonly string[];
  fields: readonly string[];
}

const TRADING = ['account', 'exchange', 'mode', 'strategy'] as const;
const ACCOUNT = ['account', 'exchange', 'mode'] as const;
const PROCESS = ['worker', 'host'] as const;

export const MEASUREMENTS = {
  trade: {
    what: 'a closed round trip, written when the ledger closes the position',
    time: 'market',
    tags: [...TRADING, 'symbol', 'exit_reason'],
    fields: ['pnl', 'fees', 'qty', 'entry_price', 'exit_price', 'return_pct', 'hold_minutes'],
  },
  order: {
    what: 'an order event, once per order and status: placed (recorded before it is sent), filled, rejected, canceled',
    time: 'market',
    tags: [...TRADING, 'symbol', 'side', 'order_type', 'intent', 'status'],
    fields: ['count', 'qty', 'price', 'client_order_id'],
  },
  position: {
    what: "the symbol's position after each fill (open = 0 once it is closed)",
    time: 'market',
    tags: [...ACCOUNT, 'symbol'],
    fields: ['open', 'qty', 'avg_entry_price', 'realized_pnl'],
  },
  equity: {
    what: 'the account valued from the ledger: at every portfolio check and after every closed trade',
    time: 'wall',
    tags: [...ACCOUNT],
    fields: ['equity', 'cash', 'exposure', 'exposure_pct', 'drawdown', 'peak_equity', 'open_positions', 'daily_pnl'],
  },
  decision: {
    what: "one per decided candle: the engine's action and the candle-close-to-decision latency",
    time: 'market',
    tags: [...TRADING, 'symbol', 'action'],
    fields: ['action_code', 'seq', 'price', 'orders_sent', 'latency_ms', 'reason'],
  },
  model_signal: {
    what: "the model's output on each decided candle",
    time: 'market',
    tags: [...TRADING, 'symbol', 'model_version'],
    fields: ['ok', 'prob_up', 'confidence', 'policy_long', 'error'],
  },
  model_outcome: {
    what: "a served prediction scored once its label horizon has passed (hit = predicted up == realized label); mean(hit) is the model's realized hit rate",
    time: 'market',
    tags: [...ACCOUNT, 'symbol', 'model_version'],
    fields: ['hit', 'predicted_up', 'label_up', 'prob_up', 'forward_return', 'horizon'],
  },
  regime: {
    what: 'the market regime of each decided candle and its confidence',
    time: 'market',
    tags: [...ACCOUNT, 'symbol', 'regime'],
    fields: ['code', 'confidence'],
  },
  breaker: {
    what: "each exchange circuit breaker of a worker, sampled (state_code 0 closed, 1 half-open, 2 open, 3 isolated)",
    time: 'wall',
    tags: ['exchange', ...PROCESS],
    fields: ['state', 'state_code', 'consecutive_failures'],
  },
  alerts: {
    what: "the Telegram alert queue of a worker, sampled (counters since the process started)",
    time: 'wall',
    tags: [...PROCESS],
    fields: ['queued', 'sent', 'dropped', 'dropped_full', 'dropped_evicted', 'dropped_send_failed', 'dropped_stale', 'waiting', 'logged_only', 'telegram_down'],
  },
  retrain: {
    what: 'a retrain run scored against the champion by the promotion gate',
    time: 'wall',
    tags: ['model_version', 'strategy'],
    fields: ['challenger_auc', 'champion_auc', 'challenger_return', 'champion_return', 'promoted', 'held_out_rows', 'reason'],
  },
  process: {
    what: 'health of a worker process, sampled',
    time: 'wall',
    tags: [...PROCESS],
    fields: ['rss_mb', 'heap_used_mb', 'heap_total_mb', 'external_mb', 'cpu_pct', 'event_loop_lag_mean_ms', 'event_loop_lag_p99_ms', 'event_loop_lag_max_ms', 'uptime_s'],
  },
  temporal: {
    what: "the Temporal SDK's own worker metrics, read from the worker's Prometheus endpoint (TEMPORAL_METRICS_ADDRESS); histograms as the interval's mean and p95",
    time: 'wall',
    tags: [...PROCESS, 'metric', 'task_queue'],
    fields: ['value', 'count', 'sum_ms', 'mean_ms', 'p95_ms'],
  },
  metrics_writer: {
    what: "the metrics writer's own counters: points written, dropped (InfluxDB down, slow, or the buffer full) and waiting",
    time: 'wall',
    tags: [...PROCESS],
    fields: ['written', 'dropped', 'pending'],
  },
} as const satisfies Record<string, MeasurementDoc>;

export type MeasurementName = keyof typeof MEASUREMENTS;

const flag = (b: boolean): number => (b ? 1 : 0);
const num = (x: number | string): number => (typeof x === 'number' ? x : Number(x));

/** Numbers that are not finite are left out: InfluxDB has no NaN, and a missing field reads as "unknown". */
function fields(values: Record<string, FieldValue | undefined | null>): Record<string, FieldValue> {
  const out: Record<string, FieldValue> = {};
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined || v === null) continue;
    if (typeof v === 'number' && !Number.isFinite(v)) continue;
    out[k] = v;
  }
  return out;
}

function tradingTags(t: TradingTags): Record<string, string> {
  return { account: t.account, exchange: t.exchange, mode: t.mode, strategy: t.strategy };
}
function accountTags(t: Pick<TradingTags, 'account' | 'exchange' | 'mode'>): Record<string, string> {
  return { account: t.account, exchange: t.exchange, mode: t.mode };
}

// --- trading ----------------------------------------------------------------------------------------

/** Money and quantities may come from the ledger as exact decimal text: metrics are analytics, numbers are fine. */
export interface ClosedTradeFacts {
  symbol: string;
  qty: number | string;
  entryTime: number;
  exitTime: number;
  entryPrice: number | string;
  exitPrice: number | string;
  fees: number | string;
  pnl: number | string;
  exitReason: string | null;
}

export function tradePoint(t: TradingTags, trade: ClosedTradeFacts): MetricPoint {
  const qty = num(trade.qty);
  const entry = num(trade.entryPrice);
  return {
    measurement: 'trade',
    tags: { ...tradingTags(t), symbol: trade.symbol, exit_reason: trade.exitReason ?? 'unknown' },
    fields: fields({
      pnl: num(trade.pnl),
      fees: num(trade.fees),
      qty,
      entry_price: entry,
      exit_price: num(trade.exitPrice),
      return_pct: (100 * num(trade.pnl)) / (entry * qty),
      hold_minutes: (trade.exitTime - trade.entryTime) / 60_000,
    }),
    time: trade.exitTime,
  };
}

export const ORDER_EVENTS = ['placed', 'filled', 'rejected', 'canceled'] as const;
export type OrderEvent = (typeof ORDER_EVENTS)[number];

export function orderPoint(
  t: TradingTags,
  o: { symbol: string; side: string; orderType: string; intent: string; status: OrderEvent; qty: number | string; price?: number | string | null; clientOrderId: string },
  time: number,
): MetricPoint {
  return {
    measurement: 'order',
    tags: { ...tradingTags(t), symbol: o.symbol, side: o.side, order_type: o.orderType, intent: o.intent, status: o.status },
    fields: fields({ count: 1, qty: num(o.qty), price: o.price === undefined || o.price === null ? undefined : num(o.price), client_order_id: o.clientOrderId }),
    time,
  };
}

export function positionPoint(t: TradingTags, p: { symbol: string; open: boolean; qty: number | string; avgEntryPrice: number | string; realizedPnl: number | string }, time: number): MetricPoint {
  return {
    measurement: 'position',
    tags: { ...accountTags(t), symbol: p.symbol },
    fields: fields({ open: flag(p.open), qty: num(p.qty), avg_entry_price: num(p.avgEntryPrice), realized_pnl: num(p.realizedPnl) }),
    time,
  };
}

export interface AccountValuation {
  equity: number;
  /** Sum of open notionals at mark, quote currency. */
  totalExposure: number;
  openPositions: number;
  dailyPnl: number;
  peakEquity: number;
}

export function equityPoint(t: Pick<TradingTags, 'account' | 'exchange' | 'mode'>, v: AccountValuation, time: number): MetricPoint {
  const peak = Math.max(v.peakEquity, v.equity);
  return {
    measurement: 'equity',
    tags: accountTags(t),
    fields: fields({
      equity: v.equity,
      // Spot, long only: what is not in positions is cash (open entry fees aside).
      cash: v.equity - v.totalExposure,
      exposure: v.totalExposure,
      exposure_pct: v.equity > 0 ? (100 * v.totalExposure) / v.equity : undefined,
      drawdown: peak > 0 ? (peak - v.equity) / peak : 0,
      peak_equity: peak,
      open_positions: v.openPositions,
      daily_pnl: v.dailyPnl,
    }),
    time,
  };
}

/** Numeric actions for charts: what the position does (+1 in, -1 out), blocked entries apart. */
export const ACTION_CODES: Record<DecisionReport['action'], number> = { hold: 0, enter: 1, exit: -1, blocked: 2 };

export function decisionPoint(t: TradingTags, symbol: string, d: DecisionReport): MetricPoint {
  return {
    measurement: 'decision',
    tags: { ...tradingTags(t), symbol, action: d.action, ...(d.strategy ? { strategy_name: d.strategy.name } : {}) },
    fields: fields({
      action_code: ACTION_CODES[d.action],
      seq: d.seq,
      price: d.price,
      orders_sent: d.ordersSent,
      latency_ms: d.latencyMs,
      reason: d.reason.slice(0, 200),
      strategy_version: d.strategy?.version,
      strategy_source: d.strategy?.source,
      strategy_params: d.strategy?.params,
    }),
    time: d.closeTime,
  };
}

export function modelSignalPoint(t: TradingTags, symbol: string, m: ModelSignal, time: number): MetricPoint {
  return {
    measurement: 'model_signal',
    tags: { ...tradingTags(t), symbol, model_version: m.version ?? 'none' },
    fields: fields({
      ok: flag(m.ok),
      prob_up: m.probUp,
      confidence: m.confidence,
      policy_long: m.action === undefined ? undefined : flag(m.action === 'long'),
      error: m.ok ? undefined : (m.error ?? 'unknown').slice(0, 200),
    }),
    time,
  };
}

export interface ModelOutcome {
  symbol: string;
  version: string;
  predictedUp: boolean;
  labelUp: boolean;
  probUp?: number;
  forwardReturn: number;
  horizon: number;
  /** Close of the candle that settled the label. */
  time: number;
}

export function modelOutcomePoint(t: TradingTags, o: ModelOutcome): MetricPoint {
  return {
    measurement: 'model_outcome',
    tags: { ...accountTags(t), symbol: o.symbol, model_version: o.version },
    fields: fields({ hit: flag(o.predictedUp === o.labelUp), predicted_up: flag(o.predictedUp), label_up: flag(o.labelUp), prob_up: o.probUp, forward_return: o.forwardReturn, horizon: o.horizon }),
    time: o.time,
  };
}

export function regimePoint(t: TradingTags, symbol: string, r: Regime, time: number): MetricPoint {
  return { measurement: 'regime', tags: { ...accountTags(t), symbol, regime: r.label }, fields: fields({ code: r.code, confidence: r.confidence }), time };
}

// --- training ---------------------------------------------------------------------------------------

export function retrainPoint(
  r: { challenger: string; strategy: string; challengerAuc: number; championAuc?: number; challengerReturn: number; championReturn?: number; promoted: boolean; heldOutRows: number; reason: string },
  time: number,
): MetricPoint {
  return {
    measurement: 'retrain',
    tags: { model_version: r.challenger, strategy: r.strategy },
    fields: fields({
      challenger_auc: r.challengerAuc,
      champion_auc: r.championAuc,
      challenger_return: r.challengerReturn,
      champion_return: r.championReturn,
      promoted: flag(r.promoted),
      held_out_rows: r.heldOutRows,
      reason: r.reason.slice(0, 300),
    }),
    time,
  };
}

// --- processes --------------------------------------------------------------------------------------

export const BREAKER_STATE_CODES: Record<BreakerStateName, number> = { closed: 0, half_open: 1, open: 2, isolated: 3 };

export function breakerPoint(p: ProcessTags, b: { exchangeId: string; state: BreakerStateName; consecutiveFailures: number }, time: number): MetricPoint {
  return {
    measurement: 'breaker',
    tags: { exchange: b.exchangeId, worker: p.worker, host: p.host },
    fields: fields({ state: b.state, state_code: BREAKER_STATE_CODES[b.state], consecutive_failures: b.consecutiveFailures }),
    time,
  };
}

export interface AlertQueueCounters {
  queued: number;
  sent: number;
  droppedFull: number;
  evicted: number;
  droppedSendFailed: number;
  droppedStale: number;
  waiting: number;
  loggedOnly: number;
  telegramDown: boolean;
}

export function alertsPoint(p: ProcessTags, s: AlertQueueCounters, time: number): MetricPoint {
  return {
    measurement: 'alerts',
    tags: { worker: p.worker, host: p.host },
    fields: fields({
      queued: s.queued,
      sent: s.sent,
      dropped: s.droppedFull + s.evicted + s.droppedSendFailed + s.droppedStale,
      dropped_full: s.droppedFull,
      dropped_evicted: s.evicted,
      dropped_send_failed: s.droppedSendFailed,
      dropped_stale: s.droppedStale,
      waiting: s.waiting,
      logged_only: s.loggedOnly,
      telegram_down: flag(s.telegramDown),
    }),
    time,
  };
}

export interface ProcessSample {
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  /** CPU time over wall time since the previous sample, percent of one core. */
  cpuPct: number;
  eventLoopLagMeanMs: number;
  eventLoopLagP99Ms: number;
  eventLoopLagMaxMs: number;
  uptimeS: number;
}

const MB = 1024 * 1024;

export function processPoint(p: ProcessTags, s: ProcessSample, time: number): MetricPoint {
  return {
    measurement: 'process',
    tags: { worker: p.worker, host: p.host },
    fields: fields({
      rss_mb: s.rssBytes / MB,
      heap_used_mb: s.heapUsedBytes / MB,
      heap_total_mb: s.heapTotalBytes / MB,
      external_mb: s.externalBytes / MB,
      cpu_pct: s.cpuPct,
      event_loop_lag_mean_ms: s.eventLoopLagMeanMs,
      event_loop_lag_p99_ms: s.eventLoopLagP99Ms,
      event_loop_lag_max_ms: s.eventLoopLagMaxMs,
      uptime_s: s.uptimeS,
    }),
    time,
  };
}

export function temporalPoint(
  p: ProcessTags,
  m: { metric: string; taskQueue: string; value?: number; count?: number; sumMs?: number; meanMs?: number; p95Ms?: number },
  time: number,
): MetricPoint {
  return {
    measurement: 'temporal',
    tags: { worker: p.worker, host: p.host, metric: m.metric, task_queue: m.taskQueue },
    fields: fields({ value: m.value, count: m.count, sum_ms: m.sumMs, mean_ms: m.meanMs, p95_ms: m.p95Ms }),
    time,
  };
}

export function writerPoint(p: ProcessTags, s: { written: number; dropped: number; pending: number }, time: number): MetricPoint {
  return { measurement: 'metrics_writer', tags: { worker: p.worker, host: p.host }, fields: fields({ written: s.written, dropped: s.dropped, pending: s.pending }), time };
}
