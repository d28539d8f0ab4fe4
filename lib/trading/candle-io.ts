import { z } from 'zod';
import { timeframeToMs, type Candle } from '../candles';
import { checkCandles, isCleanCandle } from '../candle-hygiene';
import { FEATURE_SCHEMA } from '../features';
import { classifyRegime, REGIMES, type Regime } from '../regime';
import { clientOrderIdPrefix, parseClientOrderId } from '../engine/ids';
import { applyOutcome, MAX_SEND_ROUNDS, type EngineConfig, type EngineContext, type EngineFill, type ExecutionOutcome, type ExecutionReport, type FollowUp, type ModelSignal, type OrderIntent, type OrderTag, type PreparedCandle, type SettleOutcome, type SymbolState } from '../engine';
import { ExchangeError } from '../exchange/errors';
import { ClientOrderId, isClientOrderId, isPositiveNumber, type ExchangeAdapter, type ExchangeOrder, type Trade } from '../exchange/types';
import type { FeatureCache } from '../features/cache';
import type { StrategyHost } from '../strategy/host';
import { windowEndingAt, type EnginePositionView } from '../strategy/run';

/**
 * The side of one candle step that touches the world, as plain async functions over ports
 * (`prepareCandleStep`, `executeIntentsStep`): the trading activities `prepareCandle` and
 * `executeIntents` (activities/trading/candle-read.ts and orders.ts; their names are recorded in
 * workflow histories) wrap them for the workflow, and the backtester calls them directly, against
 * the same paper exchange, so both see the same candles, vectors and fills.
 */

export type SignalFn = (symbol: string, features: number[], candle: Candle) => Promise<ModelSignal>;

/** Replay and backtest: the recorded series and the simulated clock the exchange and market data read. */
export interface ReplayFeed {
  /** Every recorded candle of the series, whatever the clock says (to find the next one). */
  candles(symbol: string, timeframe: string): readonly Candle[];
  /** Moves the simulated clock to `ms` (the close of the candle about to be processed). */
  setNow(ms: number): void;
}

export interface PrepareStepDeps {
  exchange: ExchangeAdapter;
  features: FeatureCache;
  signal?: SignalFn;
  /** Set in replay/backtest; absent live. */
  replay?: ReplayFeed;
  /** Live clock (default Date.now), for the closed-candle and staleness checks. */
  now?: () => number;
  /**
   * Where fills of resting orders (stops, targets, limits) are recorded as they are found: the
   * ledger must see a protective exit even though no executeIntentsStep call placed it this candle.
   */
  recorder?: TradeRecorder;
  /**
   * The strategy to ask on the candle: its answer goes into `input.signal`, and the model is run
   * only when it declares model parts. Absent (histories recorded before strategies were files):
   * no signal, and the model runs whenever `signal` is given; the engine asks its built-in itself.
   */
  strategy?: StrategyHost;
}

export interface PrepareStepArgs {
  /** Fills are attributed to the workflow by the client order id prefix derived from it. */
  workflowId: string;
  symbol: string;
  timeframe: string;
  /** Open time of the last processed candle, null before the first. */
  after: number | null;
  /** Fills at or after this time are returned (the engine ignores the ones it already applied). */
  fillsSince: number;
  /** The engine's open position before this candle's fills, for the strategy's custom exits. */
  position?: EnginePositionView | null;
}

const NO_REGIME: Regime = { label: 'sideways', confidence: 0, code: REGIMES.indexOf('sideways') };

/**
 * The next closed candle after `args.after`, with its feature vector, regime and model signal, and
 * the fills of this workflow's orders since `fillsSince`.
 *
 * Which candle: in a replay, the next recorded one (the first decision is on the first candle
 * that has a full feature vector, FEATURE_SCHEMA.warmup candles into the file), and the simulated
 * clock is moved to its close before anything else is asked, so resting orders are matched exactly
 * up to it. Live, the newest closed candle: if the worker fell behind, the candles in between are
 * reported and not decided on (an order sent now at a decision taken on an old candle would trade
 * today's price on yesterday's reasons); their fills are still collected.
 */
export async function prepareCandleStep(deps: PrepareStepDeps, args: PrepareStepArgs): Promise<PreparedCandle> {
  const { exchange, replay } = deps;
  const { symbol, timeframe, after } = args;
  const tfMs = timeframeToMs(timeframe);
  const problems: string[] = [];

  let candle: Candle;
  let previous: Candle | undefined;
  let nowMs: number;
  let series: { key: string; candles: readonly Candle[]; index: number } | undefined;
  if (replay) {
    const recorded = replay.candles(symbol, timeframe);
    const i = nextReplayIndex(recorded, after);
    series = { key: `${symbol}|${timeframe}`, candles: recorded, index: i };
    if (i >= recorded.length) {
      if (after === null) problems.push(`${symbol} ${timeframe}: ${recorded.length} recorded candle(s); the features need ${FEATURE_SCHEMA.warmup + 1} before a first decision`);
      return nothingPrepared(true, args, problems);
    }
    candle = recorded[i];
    previous = i > 0 ? recorded[i - 1] : undefined;
    nowMs = candle.timestamp + tfMs;
    replay.setNow(nowMs);
  } else {
    nowMs = (deps.now ?? Date.now)();
    const recent = (await exchange.fetchCandles(symbol, timeframe, undefined, 2)).filter((c) => c.timestamp + tfMs <= nowMs);
    const newest = recent[recent.length - 1];
    if (!newest || (after !== null && newest.timestamp <= after)) return nothingPrepared(false, args, problems);
    candle = newest;
    previous = recent.length > 1 ? recent[recent.length - 2] : undefined;
    if (after !== null && candle.timestamp - after > tfMs) {
      const skipped = Math.round((candle.timestamp - after) / tfMs) - 1;
      problems.push(`${skipped} closed candle(s) since ${new Date(after).toISOString()} were not decided on (the worker was behind); deciding on ${new Date(candle.timestamp).toISOString()}`);
    }
  }

  // Hygiene of the decision candle, judged against the one before it (a gap, bad values, stale).
  let tradable = true;
  if (!isCleanCandle(candle, previous, tfMs, nowMs)) {
    const check = checkCandles(previous ? [previous, candle] : [candle], tfMs, { nowMs });
    const last = check.candles.length - 1;
    const lastIsOurs = last >= 0 && check.candles[last].timestamp === candle.timestamp;
    tradable = lastIsOurs && check.tradable[last];
    for (const issue of check.issues) if (!issue.repaired && issue.timestamp === candle.timestamp) problems.push(`${issue.kind}: ${issue.message}`);
  }

  // The paper exchange over in-memory state (the backtester) and the feature cache's next vector
  // answer at once: no promise per candle for them. Same answers as the awaited calls.
  const until = replay ? nowMs : Infinity;
  const fills = ourFillsNow(exchange, args, args.fillsSince, until, deps.recorder) ?? (await ourFills(exchange, args, args.fillsSince, until, deps.recorder));
  let fillsSince = args.fillsSince;
  for (const f of fills) fillsSince = Math.max(fillsSince, f.time);

  const known = deps.features.vectorNow(symbol, timeframe, candle, previous?.timestamp);
  const vector = known !== undefined ? known : await deps.features.vectorAt(symbol, timeframe, candle, previous?.timestamp);
  if (!vector) {
    tradable = false;
    problems.push(`features warming up: a first vector needs ${FEATURE_SCHEMA.warmup + 1} candles of history`);
  }
  const features = vector ?? [];
  const regime = vector ? classifyRegime(vector) : NO_REGIME;

  const input: NonNullable<PreparedCandle['input']> = { candle, features, regime, tradable, problems };
  const host = deps.strategy;
  if (deps.signal && vector && (!host || host.modelParts.length > 0)) {
    try {
      input.model = await deps.signal(symbol, features, candle);
    } catch (err) {
      input.model = { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  }
  if (host && vector) {
    const length = Math.max(1, host.warmup);
    const window = series ? windowEndingAt(series.candles, series.index, length) : deps.features.recentCandles(symbol, timeframe, length);
    input.signal = host.answer({ symbol, timeframe, timeframeMs: tfMs, candle, window, features, regime, model: input.model, position: args.position ?? null }, series);
  }
  return { done: false, input, fills, fillsSince, problems };
}

/**
 * Replay and backtest: index in the recorded series of the candle to decide on after `after`
 * (>= length at the end of the data). The first decision is on the first candle with a full
 * feature vector (index FEATURE_SCHEMA.warmup): stepping through the warm-up would cost history
 * events and decide nothing. The trading venue and the backtester both use this, so a replay and
 * a backtest start on the same candle.
 */
export function nextReplayIndex(candles: readonly Candle[], after: number | null): number {
  return after === null ? FEATURE_SCHEMA.warmup : firstAfter(candles, after);
}

/** Index of the first candle opening after `t`. */
function firstAfter(candles: readonly Candle[], t: number): number {
  let lo = 0;
  let hi = candles.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (candles[mid].timestamp <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** What prepareCandleStep returns when there is no candle to decide on. */
function nothingPrepared(done: boolean, args: PrepareStepArgs, problems: string[]): PreparedCandle {
  return { done, fills: [], fillsSince: args.fillsSince, problems };
}

/** Trades of this workflow's orders (by client order id prefix), known by `until`. */
function oursOf(trades: readonly Trade[], workflowId: string, until: number): Trade[] {
  const prefix = clientOrderIdPrefix(workflowId);
  return trades.filter((t) => t.clientOrderId?.startsWith(prefix) && t.timestamp <= until);
}

/** ourFills answered at once, when the exchange can (fetchMyTradesNow) and no recorder is to be written; else undefined. */
function ourFillsNow(exchange: ExchangeAdapter, args: { workflowId: string; symbol: string }, since: number, until: number, recorder?: TradeRecorder): EngineFill[] | undefined {
  if (recorder || !exchange.fetchMyTradesNow) return undefined;
  const all = exchange.fetchMyTradesNow(args.symbol, since);
  return all === undefined ? undefined : toEngineFills(oursOf(all, args.workflowId, until), args.symbol);
}

/** This workflow's fills since `since`, one per order (a live venue may split an order into several trades). */
async function ourFills(exchange: ExchangeAdapter, args: { workflowId: string; symbol: string }, since: number, until: number, recorder?: TradeRecorder): Promise<EngineFill[]> {
  const trades = oursOf(await exchange.fetchMyTrades(args.symbol, since), args.workflowId, until);
  if (recorder && trades.length > 0) {
    // Most fills found here are recorded already: the cursor is inclusive (the last fill comes
    // back every candle until a newer one), and executeIntentsStep records the fills of the orders it
    // places. A fill row is written in one transaction with the position and order it moves, so
    // one read of the trade ids tells which need recording, instead of re-recording each order
    // and fill (about ten statements, every candle a position is open). What is recorded again
    // stays idempotent per trade id.
    const recorded = recorder.recordedFills ? await recorder.recordedFills(trades.map((t) => t.id)) : new Set<string>();
    const unrecorded = trades.filter((t) => !recorded.has(t.id));
    // As executeIntentsStep does: the order's state first, then its fills.
    const ids = [...new Set(unrecorded.map((t) => t.clientOrderId as string))];
    for (const id of ids) {
      const order = await exchange.fetchOrderByClientId(args.symbol, id);
      if (order) await recorder.recordOrder(id, order);
      for (const t of unrecorded.filter((x) => x.clientOrderId === id)) {
        const [f] = toEngineFills([t], args.symbol);
        if (f) await recorder.recordFill(id, { ...f, tradeId: t.id });
      }
    }
  }
  return toEngineFills(trades, args.symbol);
}

function toEngineFills(trades: Trade[], symbol: string, tagOf?: (id: string) => OrderTag | undefined): EngineFill[] {
  if (trades.length === 0) return [];
  const slash = symbol.indexOf('/');
  const base = slash < 0 ? symbol : symbol.slice(0, slash);
  const byOrder = new Map<string, { fill: EngineFill; cost: number }>();
  for (const t of trades) {
    const id = t.clientOrderId as string;
    const tag = tagOf?.(id) ?? parseClientOrderId(id)?.tag;
    if (!tag) continue;
    // Fees are kept in the quote currency; a venue charging the base asset is converted at the fill price.
    const fee = t.fee === undefined ? 0 : t.fee.currency === base ? t.fee.cost * t.price : t.fee.cost;
    const prev = byOrder.get(id);
    if (!prev) {
      byOrder.set(id, { fill: { clientOrderId: id, tag, side: t.side, qty: t.qty, price: t.price, fee, time: t.timestamp }, cost: t.qty * t.price });
    } else {
      const f = prev.fill;
      f.qty += t.qty;
      prev.cost += t.qty * t.price;
      f.price = prev.cost / f.qty;
      f.fee += fee;
      f.time = Math.max(f.time, t.timestamp);
    }
  }
  const out: EngineFill[] = [];
  for (const { fill } of byOrder.values()) out.push(fill);
  return out;
}

// --- executeIntentsStep ---------------------------------------------------------------------------

/**
 * Where orders and fills are written as they happen (the ledger). Every call is idempotent per
 * client order id. What a call returns is the recorder's own business (the ledger's says what
 * changed, for the metrics); the trading step never reads it.
 */
export interface TradeRecorder {
  /** Called BEFORE the order is sent, so an order can never exist on the exchange without a row. */
  recordIntent(i: {
    clientOrderId: string;
    symbol: string;
    side: 'buy' | 'sell';
    type: 'market' | 'stop_market' | 'limit';
    qty: number;
    price?: number;
    stopPrice?: number;
    decisionSeq?: number;
    reason: string;
    /** The strategy that decided it (entries and signal exits). */
    strategy?: { name: string; version: string; source: string; params: string };
    entryTag?: string;
  }): Promise<unknown>;
  recordOrder(clientOrderId: string, order: ExchangeOrder): Promise<unknown>;
  recordFill(clientOrderId: string, fill: EngineFill & { tradeId: string }): Promise<unknown>;
  recordRejection(clientOrderId: string, reason: string): Promise<unknown>;
  /** Which of these exchange trade ids are recorded as fills already (one read); without it, every fill found is recorded again. */
  recordedFills?(tradeIds: readonly string[]): Promise<ReadonlySet<string>>;
}

export interface ExecuteStepDeps {
  exchange: ExchangeAdapter;
  recorder?: TradeRecorder;
}

export interface ExecuteStepArgs {
  symbol: string;
  intents: OrderIntent[];
  /**
   * The engine as it was before these intents were sent. When given, what the engine asks for on
   * their outcome (the stop and target of an entry that filled, a market exit after a refused stop,
   * the cancel of a sibling) is sent in this same call, by the same pure engine code the caller
   * runs on the report, and reported in `next`: the caller applies it instead of sending again.
   */
  engine?: { state: SymbolState; cfg: EngineConfig; ctx: EngineContext };
}

/** An intent that cannot be sent as it is: an engine bug, never retried. */
export class InvalidIntentError extends Error {
  override name = 'InvalidIntentError';
}

const IntentSchema = z.discriminatedUnion('tag', [
  z.object({ tag: z.literal('cancel'), clientOrderId: z.string().min(1), cancelClientOrderId: ClientOrderId }).loose(),
  ...(['entry', 'exit', 'stop', 'target'] as const).map((tag) =>
    z
      .object({
        tag: z.literal(tag),
        side: z.enum(['buy', 'sell']),
        type: z.enum(['market', 'stop_market', 'limit']),
        qty: z.number().positive().finite(),
        price: z.number().positive().finite().optional(),
        stopPrice: z.number().positive().finite().optional(),
        reason: z.string(),
        clientOrderId: ClientOrderId,
      })
      .loose(),
  ),
]);

/**
 * Whether IntentSchema accepts `i`, checked by hand (every intent of a backtest passes here; zod
 * was a measurable share of its time). False for anything it might refuse: zod then decides and
 * gives the message.
 */
function isPlainIntent(i: OrderIntent): boolean {
  if (i === null || typeof i !== 'object') return false;
  const o = i as unknown as Record<string, unknown>;
  if (o.tag === 'cancel') return typeof o.clientOrderId === 'string' && o.clientOrderId.length > 0 && isClientOrderId(o.cancelClientOrderId);
  if (o.tag !== 'entry' && o.tag !== 'exit' && o.tag !== 'stop' && o.tag !== 'target') return false;
  if (o.side !== 'buy' && o.side !== 'sell') return false;
  if (o.type !== 'market' && o.type !== 'stop_market' && o.type !== 'limit') return false;
  if (!isPositiveNumber(o.qty) || (o.price !== undefined && !isPositiveNumber(o.price)) || (o.stopPrice !== undefined && !isPositiveNumber(o.stopPrice))) return false;
  return typeof o.reason === 'string' && isClientOrderId(o.clientOrderId);
}

/**
 * Sends intents in order, exactly once each: the client order id is looked up on the exchange
 * first and an order found there is used as it is (a retry after a crash that happened after the
 * exchange accepted the order), then createOrder, itself idempotent per id. Permanent exchange
 * errors (refused, unfunded, below minimum, unknown order) come back as `rejected`; transient ones
 * are thrown for the activity's retry policy, and the retry finds what the first attempt placed.
 *
 * Given the engine state (`args.engine`), the follow-ups of the outcome go out in the same call:
 * an entry's stop and target rest on the exchange as soon as it fills, with no second activity
 * (and its history events and round trip) in between. A retry after a crash between the entry's
 * fill and its protective orders finds the entry by its id, derives the same stop and target from
 * the same fill, and places whichever is missing.
 */
export async function executeIntentsStep(deps: ExecuteStepDeps, args: ExecuteStepArgs): Promise<ExecutionReport> {
  const first: ExecutionReport = await sendIntents(deps, args.symbol, args.intents);
  if (!args.engine) return first;
  const { cfg, ctx } = args.engine;
  const out: SettleOutcome = { state: args.engine.state, closed: [], rejected: [], sent: 0 };
  let intents = applyOutcome(out, first, cfg, ctx);
  let last: ExecutionReport | FollowUp = first;
  // The caller's settle() counts the same rounds and stops the engine at the same limit.
  for (let round = 1; intents.length > 0 && round < MAX_SEND_ROUNDS; round++) {
    const outcome = await sendIntents(deps, args.symbol, intents);
    last = last.next = { sent: intents.map((i) => i.clientOrderId), ...outcome };
    intents = applyOutcome(out, outcome, cfg, ctx);
  }
  return first;
}

/** Sends intents in order, each exactly once (see executeIntentsStep). */
async function sendIntents(deps: ExecuteStepDeps, symbol: string, intents: readonly OrderIntent[]): Promise<ExecutionOutcome> {
  const { exchange, recorder } = deps;
  const report: ExecutionOutcome = { fills: [], orders: [], rejected: [] };
  for (const raw of intents) {
    const parsed = isPlainIntent(raw) ? undefined : IntentSchema.safeParse(raw);
    if (parsed && !parsed.success) {
      const i = parsed.error.issues[0];
      throw new InvalidIntentError(`${symbol}: intent ${JSON.stringify(raw)}: ${i.path.join('.')}: ${i.message}`);
    }
    const intent = raw;
    const id = intent.tag === 'cancel' ? (intent.cancelClientOrderId as string) : intent.clientOrderId;
    try {
      if (intent.tag === 'cancel') {
        const order = await exchange.cancelOrder(symbol, { clientOrderId: id });
        await recorder?.recordOrder(id, order);
        report.orders.push({ clientOrderId: id, status: order.status, exchangeOrderId: order.id });
        // Lost the race: it filled before the cancel arrived; that fill must reach the engine.
        if (order.filledQty > 0) await collectFills(exchange, recorder, symbol, order, report);
        continue;
      }
      const decisionSeq = parseClientOrderId(id)?.seq;
      await recorder?.recordIntent({
        clientOrderId: id,
        symbol,
        side: intent.side,
        type: intent.type,
        qty: intent.qty,
        price: intent.price,
        stopPrice: intent.stopPrice,
        decisionSeq,
        reason: intent.reason,
        ...(intent.strategy ? { strategy: intent.strategy } : {}),
        ...(intent.entryTag !== undefined ? { entryTag: intent.entryTag } : {}),
      });
      const order =
        (await exchange.fetchOrderByClientId(symbol, id)) ??
        (await exchange.createOrder({
          clientOrderId: id,
          symbol,
          side: intent.side,
          type: intent.type,
          qty: intent.qty,
          price: intent.type === 'stop_market' ? undefined : intent.price,
          stopPrice: intent.type === 'stop_market' ? intent.stopPrice : undefined,
        }));
      await recorder?.recordOrder(id, order);
      report.orders.push({ clientOrderId: id, status: order.status, exchangeOrderId: order.id });
      if (order.filledQty > 0) await collectFills(exchange, recorder, symbol, order, report, intent.tag);
    } catch (err) {
      if (err instanceof ExchangeError && !err.retryable) {
        await recorder?.recordRejection(id, err.message);
        report.rejected.push({ clientOrderId: id, reason: `${err.name}: ${err.message}` });
        continue;
      }
      throw err;
    }
  }
  return report;
}

async function collectFills(exchange: ExchangeAdapter, recorder: TradeRecorder | undefined, symbol: string, order: ExchangeOrder, report: ExecutionOutcome, tag?: OrderTag): Promise<void> {
  const id = order.clientOrderId as string;
  const trades = (await exchange.fetchMyTrades(symbol, order.createdAt)).filter((t) => t.clientOrderId === id || (t.orderId !== undefined && t.orderId === order.id));
  const withId = trades.map((t) => ({ ...t, clientOrderId: id }));
  for (const t of withId) {
    const [f] = toEngineFills([t], symbol, () => tag);
    if (f) await recorder?.recordFill(id, { ...f, tradeId: t.id });
  }
  report.fills.push(...toEngineFills(withId, symbol, () => tag));
}
