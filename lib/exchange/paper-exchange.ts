import { timeframeToMs, type Candle } from '../candles';
import {
  FeeSchedule,
  SlippageModel,
  applyFill,
  feeRate,
  immediateFill,
  matchCandle,
  stopWouldTrigger,
  type Fill,
  type FillRules,
  type MarketCash,
  type WorkingOrder,
} from './fill-model';
import { decAdd, decCmp, decMul, decSub, toDecimalString } from '../decimal';
import { fitOrder } from '../precision';
import { silentLog, type Log } from '../log';
import {
  ExchangeUnavailableError,
  InsufficientFundsError,
  InvalidOrderError,
  OrderBelowMinimumError,
  OrderNotFoundError,
  PaperStateConflictError,
} from './errors';
import type { PaperAccountView, PaperFill, PaperRead, PaperStateChange, PaperStateStore, SyncPaperStateStore } from './paper-state';
import {
  isPlainOrderRequest,
  OrderRequest,
  type Balances,
  type BreakerStatus,
  type ExchangeAdapter,
  type ExchangeOrder,
  type MarketCatalog,
  type MarketDataSource,
  type MarketInfo,
  type OrderRef,
  type SyncMarketCatalog,
  type SyncMarketDataSource,
  type Trade,
} from './types';

/**
 * The exchange of DRY_RUN: a cash account that fills orders against candles (lib/fill-model.ts)
 * with maker/taker fees and slippage, fitted to the market's precision and minimums like the real
 * venue. Market data comes from any MarketDataSource (the replay source, or the live exchange's
 * public candles), so the same code paper-trades live and replays history.
 *
 * Time: resting orders are matched lazily, on every call, against the candles that closed since
 * the last match, so the account is always up to date "as of now" and nothing fills on a candle
 * that has not closed. A candle can fill an order only if it had not closed when the order was
 * placed: with decisions on candle closes, that is the next candle. Match against a short
 * timeframe (1m) when paper trading live, so that the part of a candle that came before the order
 * matters little.
 *
 * Stop and target for one position are both accepted (as an OCO pair would be): whichever fills
 * first spends the coins, and the other is canceled when touched, for lack of balance. When both
 * are touched inside one candle, the fill model keeps the worse one.
 */

export interface PaperExchangeOptions {
  /** Key of this account in the store. */
  account: string;
  store: PaperStateStore;
  marketData: MarketDataSource;
  markets: MarketCatalog & { loadMarkets?(reload?: boolean): Promise<string[]> };
  /** Timeframe of the candles orders are matched against. */
  timeframe: string;
  /** Balances of a new account (ignored once the account is stored). */
  initialBalances: Record<string, number | string>;
  /** Default: 0.1 % maker and taker (Binance spot's base rate). */
  fees?: FeeSchedule;
  slippage?: Partial<SlippageModel>;
  limitFill?: FillRules['limitFill'];
  now?: () => number;
  exchangeId?: string;
  log?: Log;
}

/** Candles asked per page while catching up (most venues cap a page at 500-1000). */
const PAGE = 500;
const COMMIT_TRIES = 5;

// One queue per store and account: two calls in this process never interleave their read-modify-write.
// `pending` counts the calls in flight on the account (PaperExchange.counted, from their start): a
// call answered at once (fetchMyTradesNow) runs only when it is 0, so it never runs in the middle
// of another's read-modify-write nor overtakes a call started before it.
interface AccountQueue {
  tail: Promise<unknown>;
  pending: number;
}
const queues = new WeakMap<PaperStateStore, Map<string, AccountQueue>>();

function accountQueue(store: PaperStateStore, account: string): AccountQueue {
  let byAccount = queues.get(store);
  if (!byAccount) queues.set(store, (byAccount = new Map()));
  let q = byAccount.get(account);
  if (!q) byAccount.set(account, (q = { tail: Promise.resolve(), pending: 0 }));
  return q;
}

function serialize<T>(store: PaperStateStore, account: string, fn: () => Promise<T>): Promise<T> {
  const q = accountQueue(store, account);
  const next = q.tail.then(fn, fn);
  q.tail = next.catch(() => undefined);
  return next;
}

/** The parts of a paper exchange that can answer at once, when all of them can. */
interface SyncParts {
  store: SyncPaperStateStore;
  marketData: SyncMarketDataSource;
  markets: SyncMarketCatalog;
}

function syncPartsOf(opts: PaperExchangeOptions): SyncParts | undefined {
  const store = opts.store as Partial<SyncPaperStateStore>;
  const marketData = opts.marketData as Partial<SyncMarketDataSource>;
  const markets = opts.markets as Partial<SyncMarketCatalog>;
  if (typeof store.readSync !== 'function' || typeof store.commitSync !== 'function' || typeof store.versionSync !== 'function') return undefined;
  if (typeof marketData.fetchCandlesSync !== 'function' || typeof markets.marketSync !== 'function') return undefined;
  return { store: opts.store as SyncPaperStateStore, marketData: opts.marketData as SyncMarketDataSource, markets: opts.markets as SyncMarketCatalog };
}

/**
 * The part of an account one operation read, being changed by it: balances of the currencies it
 * read, open orders and cursors of the markets it read, the order it looked up, and what it
 * changed, which is all a commit writes.
 */
class Working {
  readonly version: number;
  nextId: number;
  private readonly balances: Record<string, string>;
  private readonly cursors: Record<string, number>;
  /** Open orders of the markets read (and orders placed or changed since), by id, in placement order. */
  private readonly orders = new Map<string, ExchangeOrder>();
  // Sets of what changed, made on the first change: most calls (a candle's fill lookup) change nothing.
  private changedOrders?: Set<string>;
  private changedBalances?: Set<string>;
  private changedCursors?: Set<string>;
  readonly newFills: PaperFill[] = [];
  /** Currencies whose balances were read (one market's two); undefined: all of them. */
  private readonly readCurrencies: readonly string[] | undefined;
  private touched: boolean;

  constructor(view: PaperAccountView, read: PaperRead, newAccount: boolean) {
    this.version = view.version;
    this.nextId = view.nextId;
    this.balances = { ...view.balances };
    this.cursors = { ...view.cursors };
    for (const o of view.openOrders) this.orders.set(o.id, o);
    if (view.order && !this.orders.has(view.order.id)) this.orders.set(view.order.id, view.order);
    this.readCurrencies = read.currencies;
    // A new account is written by its first call, whatever that call does (its initial balances).
    this.touched = newAccount;
    if (newAccount) this.changedBalances = new Set(Object.keys(this.balances));
  }

  get dirty(): boolean {
    return this.touched || this.changedOrders !== undefined || this.newFills.length > 0 || this.changedBalances !== undefined || this.changedCursors !== undefined;
  }

  balance(currency: string): string {
    if (this.readCurrencies && !this.readCurrencies.includes(currency)) throw new Error(`paper exchange: the balance of ${currency} was not read for this operation`);
    return this.balances[currency] ?? '0';
  }

  setBalance(currency: string, total: string): void {
    this.balance(currency);
    this.balances[currency] = total;
    (this.changedBalances ??= new Set()).add(currency);
  }

  /** Every balance read, by currency. */
  allBalances(): Record<string, string> {
    return this.balances;
  }

  cursor(symbol: string): number {
    return this.cursors[symbol] ?? -Infinity;
  }

  setCursor(symbol: string, candleTs: number): void {
    this.cursors[symbol] = candleTs;
    (this.changedCursors ??= new Set()).add(symbol);
  }

  /** Open orders of one market (or of every market read), in placement order. */
  openOrders(symbol?: string): ExchangeOrder[] {
    const out: ExchangeOrder[] = [];
    for (const o of this.orders.values()) if (o.status === 'open' && (symbol === undefined || o.symbol === symbol)) out.push(o);
    return out;
  }

  /** Symbols with open orders among the markets read. */
  openSymbols(): string[] {
    return [...new Set(this.openOrders().map((o) => o.symbol))].sort();
  }

  /** An order read or placed by this operation. */
  find(test: (o: ExchangeOrder) => boolean): ExchangeOrder | undefined {
    for (const o of this.orders.values()) if (test(o)) return o;
    return undefined;
  }

  upsert(order: ExchangeOrder): void {
    this.orders.set(order.id, order);
    (this.changedOrders ??= new Set()).add(order.id);
  }

  addFill(fill: PaperFill): void {
    this.newFills.push(fill);
  }

  change(): PaperStateChange {
    const orders: ExchangeOrder[] = [];
    if (this.changedOrders) for (const id of this.changedOrders) orders.push(this.orders.get(id) as ExchangeOrder);
    return { balances: picked(this.balances, this.changedBalances), cursors: picked(this.cursors, this.changedCursors), nextId: this.nextId, orders, fills: this.newFills };
  }
}

/** The entries of `from` named by `keys` (a loop, not a closure per call: a backtest commits on most candles). */
function picked<T>(from: Record<string, T>, keys: Set<string> | undefined): Record<string, T> {
  const out: Record<string, T> = {};
  if (keys) for (const k of keys) out[k] = from[k];
  return out;
}

export class PaperExchange implements ExchangeAdapter {
  readonly exchangeId: string;
  private readonly opts: PaperExchangeOptions;
  private readonly tfMs: number;
  private readonly fees: FeeSchedule;
  private readonly slippage: SlippageModel;
  private readonly now: () => number;
  private readonly log: Log;
  /** What a call about each market reads, made once per market (every candle asks). */
  private readonly marketReads = new Map<string, PaperRead>();
  /** Store, market data and catalog when all three answer at once (in-memory: the backtester). */
  private readonly sync: SyncParts | undefined;
  /**
   * The last fetchMyTradesNow answer that read a market with no open orders: nothing to match, so
   * nothing changed by it, and while the account's version stays the same (no commit by anyone)
   * the same question has the same answer. A flat backtest asks it on every candle.
   */
  private idleTrades?: { symbol: string; since: number | undefined; limit: number | undefined; version: number; trades: readonly Trade[] };

  constructor(opts: PaperExchangeOptions) {
    this.opts = opts;
    this.exchangeId = opts.exchangeId ?? 'paper';
    this.tfMs = timeframeToMs(opts.timeframe);
    this.fees = FeeSchedule.parse(opts.fees ?? { maker: 0.001, taker: 0.001 });
    this.slippage = SlippageModel.parse(opts.slippage ?? {});
    this.now = opts.now ?? Date.now;
    this.log = (opts.log ?? silentLog).child({ exchangeId: this.exchangeId, account: opts.account });
    this.sync = syncPartsOf(opts);
  }

  /** In DRY_RUN over live market data, the live venue's breaker still matters. */
  breakerState(): BreakerStatus | undefined {
    const source = this.opts.marketData as Partial<Pick<ExchangeAdapter, 'breakerState'>>;
    return source.breakerState?.();
  }

  // --- market data: straight through -----------------------------------------------------------

  async loadMarkets(reload?: boolean): Promise<string[]> {
    return this.opts.markets.loadMarkets ? this.opts.markets.loadMarkets(reload) : [];
  }

  market(symbol: string): Promise<MarketInfo> {
    return this.opts.markets.market(symbol);
  }

  fetchCandles(symbol: string, timeframe: string, since?: number, limit?: number): Promise<Candle[]> {
    return this.opts.marketData.fetchCandles(symbol, timeframe, since, limit);
  }

  // --- account ---------------------------------------------------------------------------------

  fetchBalance(): Promise<Balances> {
    return this.counted(this.fetchBalanceCall());
  }

  private async fetchBalanceCall(): Promise<Balances> {
    return this.transact({}, async (w) => {
      const used: Record<string, string> = {};
      for (const o of w.openOrders()) {
        const m = await this.market(o.symbol);
        if (o.side === 'sell') used[m.base] = decAdd(used[m.base] ?? '0', o.qty);
        else used[m.quote] = decAdd(used[m.quote] ?? '0', this.reserve(o));
      }
      const out: Balances = {};
      for (const [currency, total] of Object.entries(w.allBalances()).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        // Exit orders may share the same coins (stop and target), so what is reserved is capped at what is held.
        const reserved = used[currency] === undefined ? '0' : decCmp(used[currency], total) < 0 ? used[currency] : total;
        out[currency] = { total: Number(total), used: Number(reserved), free: Number(decSub(total, reserved)) };
      }
      return out;
    });
  }

  createOrder(request: OrderRequest): Promise<ExchangeOrder> {
    return this.counted(this.createOrderCall(request));
  }

  private async createOrderCall(request: OrderRequest): Promise<ExchangeOrder> {
    let req: OrderRequest;
    if (isPlainOrderRequest(request)) {
      // Valid as it is: only the fields the schema knows are read below, as from zod's copy.
      req = request;
    } else {
      const parsed = OrderRequest.safeParse(request);
      if (!parsed.success) {
        const i = parsed.error.issues[0];
        throw new InvalidOrderError(`order request ${i.path.join('.')}: ${i.message}`, { exchangeId: this.exchangeId, operation: 'createOrder', symbol: request?.symbol });
      }
      req = parsed.data;
    }
    const ctx = { exchangeId: this.exchangeId, operation: 'createOrder', symbol: req.symbol };
    const market = await this.market(req.symbol);
    return this.transact({ ...this.marketRead(market), order: { clientOrderId: req.clientOrderId } }, async (w) => {
      const existing = w.find((o) => o.clientOrderId === req.clientOrderId);
      if (existing) {
        const same = existing.symbol === req.symbol && existing.side === req.side && existing.type === req.type;
        if (!same) this.log.warn({ clientOrderId: req.clientOrderId, existing: existing.id }, 'client order id reused for a different order; returning the first one');
        return existing;
      }
      const last = await this.lastClosed(req.symbol);
      const fit = fitOrder(market, {
        amount: req.qty,
        price: req.type === 'limit' ? req.price : undefined,
        stopPrice: req.stopPrice,
        referencePrice: last.close,
      });
      if (!fit.ok) throw new OrderBelowMinimumError(`${this.exchangeId} ${fit.message}`, fit.reason, ctx);
      if (req.type === 'stop_market' && stopWouldTrigger(req.side, fit.stopPrice as number, last.close)) {
        throw new InvalidOrderError(`${this.exchangeId} ${req.symbol}: ${req.side} stop at ${fit.stopPrice} would trigger immediately (last price ${last.close})`, ctx);
      }
      const now = this.now();
      const order: ExchangeOrder = {
        id: `${this.exchangeId}-${this.opts.account}-${w.nextId}`, // unique across accounts sharing one ledger
        clientOrderId: req.clientOrderId,
        symbol: req.symbol,
        side: req.side,
        type: req.type,
        status: 'open',
        qty: fit.amount,
        filledQty: 0,
        price: fit.price,
        stopPrice: fit.stopPrice,
        createdAt: now,
        updatedAt: now,
      };
      const rules = this.rules(market);
      const fill = req.type === 'stop_market' ? undefined : immediateFill({ key: req.clientOrderId, side: req.side, type: req.type, qty: fit.amount, price: fit.price }, last.close, last, rules);
      const cash = this.cash(w, market);
      if (fill) {
        const after = applyFill(cash, fill);
        if (!after) throw this.unfunded(market, order, fill.price, this.fees.taker, cash, ctx);
        w.nextId++;
        return this.record(w, market, order, fill, after, now);
      }
      const price = (req.type === 'limit' ? fit.price : fit.stopPrice) as number;
      const rate = req.type === 'limit' ? this.fees.maker : this.fees.taker;
      const affordable = req.side === 'sell' ? decCmp(cash.base, fit.amount) >= 0 : decCmp(cash.quote, decMul(decMul(fit.amount, price), 1 + rate)) >= 0;
      if (!affordable) throw this.unfunded(market, order, price, rate, cash, ctx);
      w.nextId++;
      w.upsert(order);
      this.log.info({ orderId: order.id, clientOrderId: order.clientOrderId, symbol: order.symbol, side: order.side, type: order.type, qty: order.qty, price: order.price, stopPrice: order.stopPrice }, 'paper order resting');
      return order;
    });
  }

  fetchOrderByClientId(symbol: string, clientOrderId: string): Promise<ExchangeOrder | null> {
    return this.counted(this.fetchOrderByClientIdCall(symbol, clientOrderId));
  }

  private async fetchOrderByClientIdCall(symbol: string, clientOrderId: string): Promise<ExchangeOrder | null> {
    const market = await this.market(symbol);
    return this.transact({ ...this.marketRead(market), order: { clientOrderId } }, async (w) => w.find((o) => o.symbol === symbol && o.clientOrderId === clientOrderId) ?? null);
  }

  cancelOrder(symbol: string, ref: OrderRef): Promise<ExchangeOrder> {
    return this.counted(this.cancelOrderCall(symbol, ref));
  }

  private async cancelOrderCall(symbol: string, ref: OrderRef): Promise<ExchangeOrder> {
    const market = await this.market(symbol);
    const lookup = ref.id ? { id: ref.id } : { clientOrderId: ref.clientOrderId as string };
    return this.transact({ ...this.marketRead(market), order: lookup }, async (w) => {
      const order = w.find((o) => o.symbol === symbol && (ref.id ? o.id === ref.id : o.clientOrderId === ref.clientOrderId));
      if (!order) throw new OrderNotFoundError(`${this.exchangeId}: no order ${ref.id ?? ref.clientOrderId} on ${symbol}`, { exchangeId: this.exchangeId, operation: 'cancelOrder', symbol });
      if (order.status !== 'open') return order;
      const canceled: ExchangeOrder = { ...order, status: 'canceled', updatedAt: this.now(), reason: 'canceled on request' };
      w.upsert(canceled);
      this.log.info({ orderId: order.id, clientOrderId: order.clientOrderId, symbol }, 'paper order canceled');
      return canceled;
    });
  }

  fetchOpenOrders(symbol?: string): Promise<ExchangeOrder[]> {
    return this.counted(this.fetchOpenOrdersCall(symbol));
  }

  private async fetchOpenOrdersCall(symbol?: string): Promise<ExchangeOrder[]> {
    const read = symbol === undefined ? {} : this.marketRead(await this.market(symbol));
    return this.transact(read, async (w) => w.openOrders(symbol));
  }

  fetchMyTrades(symbol: string, since?: number, limit?: number): Promise<Trade[]> {
    return this.counted(this.fetchMyTradesCall(symbol, since, limit));
  }

  private async fetchMyTradesCall(symbol: string, since?: number, limit?: number): Promise<Trade[]> {
    const market = await this.market(symbol);
    return this.transact({ ...this.marketRead(market), fills: { symbol, since, limit } }, async (w, stored) => tradesOf(w, stored, symbol, since, limit));
  }

  /**
   * fetchMyTrades answered at once (same answer, same effects: resting orders matched up to now
   * and committed), or undefined when it cannot be: a store, market data or catalog that needs
   * I/O, or another call queued on the account. The backtester asks on every candle.
   */
  fetchMyTradesNow(symbol: string, since?: number, limit?: number): Trade[] | undefined {
    const sync = this.sync;
    const { store, account } = this.opts;
    if (!sync || accountQueue(store, account).pending > 0) return undefined;
    const market = sync.markets.marketSync(symbol);
    const memo = this.idleTrades;
    // A fresh array each time; the trades in it are frozen, as they may be handed out again. (Not
    // a frozen array: Array.prototype.filter and friends take a slow path on frozen arrays.)
    if (memo && memo.symbol === symbol && memo.since === since && memo.limit === limit && memo.version === sync.store.versionSync(account)) return memo.trades.slice();
    let idle = false;
    const trades = this.transactNow(sync, { ...this.marketRead(market), fills: { symbol, since, limit } }, (w, stored) => {
      idle = w.openOrders(symbol).length === 0 && !w.dirty;
      const out = tradesOf(w, stored, symbol, since, limit);
      if (idle) for (const t of out) Object.freeze(t);
      return out;
    });
    this.idleTrades = idle ? { symbol, since, limit, version: sync.store.versionSync(account), trades: trades.slice() } : undefined;
    return trades;
  }

  // --- internals -------------------------------------------------------------------------------

  /**
   * Counts a call as in flight on its account from its start to its end: fetchMyTradesNow does not
   * run while one is, even before the call has reached the queue (it may first await the
   * market's rules). Linearizes an answer given at once after every call started before it.
   */
  private counted<T>(call: Promise<T>): Promise<T> {
    const q = accountQueue(this.opts.store, this.opts.account);
    q.pending++;
    const leave = () => void q.pending--;
    call.then(leave, leave);
    return call;
  }

  /** What every call about one market reads: its open orders and cursor, its two currencies. */
  private marketRead(market: MarketInfo): PaperRead {
    let read = this.marketReads.get(market.symbol);
    if (!read) {
      read = Object.freeze({ symbols: Object.freeze([market.symbol]), currencies: Object.freeze(market.base === market.quote ? [market.base] : [market.base, market.quote]) });
      this.marketReads.set(market.symbol, read);
    }
    return read;
  }

  /**
   * Read what `read` names, catch its markets up with the candles closed since, run `fn`, commit
   * what changed; redone from a fresh read if another writer got in first.
   */
  private transact<T>(read: PaperRead, fn: (w: Working, stored: PaperAccountView) => Promise<T>): Promise<T> {
    const { store, account } = this.opts;
    return serialize(store, account, async () => {
      for (let attempt = 1; ; attempt++) {
        const stored = await store.read(account, read);
        const w = new Working(stored ?? this.newAccount(), read, stored === undefined);
        await this.catchUp(w, read.symbols ?? w.openSymbols());
        const result = await fn(w, stored ?? EMPTY_VIEW);
        if (!w.dirty) return result;
        try {
          await store.commit(account, w.version, w.change());
          return result;
        } catch (err) {
          if (!(err instanceof PaperStateConflictError) || attempt >= COMMIT_TRIES) throw err;
          this.log.debug({ attempt }, 'paper account changed by another writer; redoing');
        }
      }
    });
  }

  /**
   * transact without a promise: the same read, catch-up, operation and commit, through the parts'
   * synchronous calls. Only when no other call is queued on the account (checked by the caller),
   * so it cannot interleave with one; and an in-memory store has no other writer to conflict with.
   */
  private transactNow<T>(sync: SyncParts, read: PaperRead, fn: (w: Working, stored: PaperAccountView) => T): T {
    const { account } = this.opts;
    for (let attempt = 1; ; attempt++) {
      const stored = sync.store.readSync(account, read);
      const w = new Working(stored ?? this.newAccount(), read, stored === undefined);
      this.catchUpNow(sync, w, read.symbols ?? w.openSymbols());
      const result = fn(w, stored ?? EMPTY_VIEW);
      if (!w.dirty) return result;
      try {
        sync.store.commitSync(account, w.version, w.change());
        return result;
      } catch (err) {
        if (!(err instanceof PaperStateConflictError) || attempt >= COMMIT_TRIES) throw err;
        this.log.debug({ attempt }, 'paper account changed by another writer; redoing');
      }
    }
  }

  private newAccount(): PaperAccountView {
    const balances: Record<string, string> = {};
    for (const [c, v] of Object.entries(this.opts.initialBalances)) balances[c] = toDecimalString(v);
    return { balances, openOrders: [], fills: [], cursors: {}, nextId: 1, version: 0 };
  }

  private rules(market: MarketInfo): FillRules {
    return { fees: this.fees, slippage: this.slippage, pricePrecision: market.pricePrecision, limitFill: this.opts.limitFill };
  }

  private cash(w: Working, market: MarketInfo): MarketCash {
    return { base: w.balance(market.base), quote: w.balance(market.quote) };
  }

  /** Quote a resting buy would need if it filled now. */
  private reserve(o: ExchangeOrder): string {
    const price = o.type === 'limit' ? o.price : o.stopPrice;
    const rate = o.type === 'limit' ? this.fees.maker : this.fees.taker;
    return price === undefined ? '0' : decMul(decMul(o.qty, price), 1 + rate);
  }

  private unfunded(market: MarketInfo, order: ExchangeOrder, price: number, rate: number, cash: MarketCash, ctx: { exchangeId: string; operation: string; symbol: string }): InsufficientFundsError {
    const need = order.side === 'buy' ? `${decMul(decMul(order.qty, price), 1 + rate)} ${market.quote}` : `${order.qty} ${market.base}`;
    const have = order.side === 'buy' ? `${cash.quote} ${market.quote}` : `${cash.base} ${market.base}`;
    return new InsufficientFundsError(`${this.exchangeId} ${order.symbol}: ${order.side} ${order.qty} at ~${price} needs ${need}, account has ${have}`, ctx);
  }

  private async lastClosed(symbol: string): Promise<Candle> {
    const [last] = await this.opts.marketData.fetchCandles(symbol, this.opts.timeframe, undefined, 1);
    if (!last) throw new ExchangeUnavailableError(`${this.exchangeId} ${symbol}: no closed ${this.opts.timeframe} candle yet, no price to trade at`, { exchangeId: this.exchangeId, operation: 'createOrder', symbol });
    const age = this.now() - (last.timestamp + this.tfMs);
    if (age > 3 * this.tfMs) this.log.warn({ symbol, lastCandle: new Date(last.timestamp).toISOString(), ageMs: age }, 'paper price is stale: trading at the last known close');
    return last;
  }

  /** Applies a fill to the order, the balances and the fill log; returns the filled order. */
  private record(w: Working, market: MarketInfo, order: ExchangeOrder, fill: Fill, after: MarketCash, at: number, candleTs?: number): ExchangeOrder {
    w.setBalance(market.base, after.base);
    w.setBalance(market.quote, after.quote);
    const filled: ExchangeOrder = {
      ...order,
      status: 'closed',
      filledQty: fill.qty,
      avgFillPrice: fill.price,
      cost: Number(fill.cost),
      fee: { cost: Number(fill.fee), currency: market.quote },
      updatedAt: at,
    };
    w.upsert(filled);
    w.addFill({
      id: `${order.id}-1`,
      orderId: order.id,
      clientOrderId: order.clientOrderId as string,
      symbol: order.symbol,
      side: fill.side,
      qty: fill.qty,
      price: fill.price,
      cost: fill.cost,
      fee: fill.fee,
      feeCurrency: market.quote,
      liquidity: fill.liquidity,
      timestamp: at,
      candleTs,
    });
    this.log.info(
      { orderId: order.id, clientOrderId: order.clientOrderId, symbol: order.symbol, side: fill.side, qty: fill.qty, price: fill.price, liquidity: fill.liquidity, fee: fill.fee, feeRate: feeRate(this.fees, fill.liquidity) },
      'paper fill',
    );
    return filled;
  }

  /**
   * Matches the open orders of `symbols` against every candle closed since their last match. Only
   * the markets a call is about are caught up (all of them for fetchBalance and fetchOpenOrders()):
   * the others are matched, exactly as far, by the next call about them.
   */
  private async catchUp(w: Working, symbols: readonly string[]): Promise<void> {
    for (const symbol of symbols) {
      if (w.openOrders(symbol).length === 0) continue;
      const market = await this.market(symbol);
      let since = this.catchUpFrom(w, symbol);
      for (;;) {
        const batch = await this.opts.marketData.fetchCandles(symbol, this.opts.timeframe, since, PAGE);
        if (this.matchBatch(w, symbol, market, batch)) break;
        since = batch[batch.length - 1].timestamp + 1;
      }
    }
  }

  /** catchUp through the synchronous parts (transactNow). */
  private catchUpNow(sync: SyncParts, w: Working, symbols: readonly string[]): void {
    for (const symbol of symbols) {
      if (w.openOrders(symbol).length === 0) continue;
      const market = sync.markets.marketSync(symbol);
      let since = this.catchUpFrom(w, symbol);
      for (;;) {
        const batch = sync.marketData.fetchCandlesSync(symbol, this.opts.timeframe, since, PAGE);
        if (this.matchBatch(w, symbol, market, batch)) break;
        since = batch[batch.length - 1].timestamp + 1;
      }
    }
  }

  /** Where a market's catch-up starts: after its cursor, and no earlier than the first candle that can fill one of its open orders. */
  private catchUpFrom(w: Working, symbol: string): number {
    // The first candle that can fill an order is the one that had not closed when it was placed.
    const earliest = Math.min(...w.openOrders(symbol).map((o) => (o.createdAt ?? 0) - this.tfMs + 1));
    return Math.max(w.cursor(symbol) + 1, earliest);
  }

  /** Matches one page of candles against the market's open orders; true when the catch-up is over (last page, or nothing left open). */
  private matchBatch(w: Working, symbol: string, market: MarketInfo, batch: readonly Candle[]): boolean {
    const rules = this.rules(market);
    for (const candle of batch) {
      if (candle.timestamp <= w.cursor(symbol)) continue;
      const close = candle.timestamp + this.tfMs;
      const eligible = w.openOrders(symbol).filter((o) => (o.createdAt ?? 0) < close);
      w.setCursor(symbol, candle.timestamp);
      if (eligible.length === 0) continue;
      const working: WorkingOrder[] = eligible.map((o) => ({
        key: o.clientOrderId as string,
        side: o.side,
        type: o.type === 'limit' ? 'limit' : 'stop_market',
        qty: o.qty,
        price: o.price,
        stopPrice: o.stopPrice,
      }));
      const match = matchCandle(working, candle, this.cash(w, market), rules);
      let cash = this.cash(w, market);
      for (const fill of match.fills) {
        const order = eligible.find((o) => o.clientOrderId === fill.key) as ExchangeOrder;
        cash = applyFill(cash, fill) as MarketCash;
        this.record(w, market, order, fill, cash, close, candle.timestamp);
      }
      for (const key of match.unfunded) {
        const order = eligible.find((o) => o.clientOrderId === key) as ExchangeOrder;
        const have = order.side === 'sell' ? `${cash.base} ${market.base}` : `${cash.quote} ${market.quote}`;
        w.upsert({ ...order, status: 'canceled', updatedAt: close, reason: `triggered in the ${new Date(candle.timestamp).toISOString()} candle but the account no longer had the funds (${have}): an earlier fill used them` });
        this.log.info({ orderId: order.id, clientOrderId: order.clientOrderId, symbol }, 'paper order canceled: funds used by an earlier fill');
      }
    }
    return batch.length < PAGE || w.openOrders(symbol).length === 0;
  }
}

/** The fills an operation read (and the ones it made), as trades. */
function tradesOf(w: Working, stored: PaperAccountView, symbol: string, since: number | undefined, limit: number | undefined): Trade[] {
  const fresh = w.newFills.filter((f) => f.symbol === symbol && (since === undefined || f.timestamp >= since));
  const fills = fresh.length === 0 ? stored.fills : [...stored.fills, ...fresh];
  const trades = fills.map(
    (f): Trade => ({
      id: f.id,
      orderId: f.orderId,
      clientOrderId: f.clientOrderId,
      symbol: f.symbol,
      side: f.side,
      price: f.price,
      qty: f.qty,
      cost: Number(f.cost),
      fee: { cost: Number(f.fee), currency: f.feeCurrency },
      liquidity: f.liquidity,
      timestamp: f.timestamp,
    }),
  );
  return limit === undefined ? trades : trades.slice(0, limit);
}

const EMPTY_VIEW: PaperAccountView = Object.freeze({ version: 0, nextId: 1, balances: {}, cursors: {}, openOrders: [], fills: [] });
