import * as ccxt from 'ccxt';
import { timeframeToMs, type Candle } from '../../lib/candles';
import { fitOrder } from '../../lib/precision';
import { logger, registerSecret, type Logger } from '../../infra/logger';
import { parseBalance, parseCandles, parseFullOrder, parseMarket, parseOrder, parseOrders, parseTrades } from './ccxt-parse';
import { BadSymbolError, ExchangeRejectedError, InvalidOrderError, MalformedResponseError, OrderBelowMinimumError, OrderNotFoundError, type ExchangeErrorContext } from '../../lib/exchange/errors';
import { ExchangeResilience, resilienceFor, type BreakerStatus, type ResilienceOptions } from './resilience';
import { OrderRequest, type Balances, type ExchangeAdapter, type ExchangeOrder, type MarketInfo, type OrderRef, type Trade } from '../../lib/exchange/types';

/**
 * The live exchange, through ccxt (any of its exchange ids). Public market data needs no keys;
 * orders do. Every call goes through the exchange's shared resilience (retries + breaker) and
 * every answer is parsed at the edge (ccxt-parse.ts).
 */

export interface CcxtExchangeOptions {
  exchangeId: string;
  apiKey?: string;
  secret?: string;
  /** Some venues (OKX, KuCoin...) also need a passphrase. */
  password?: string;
  /** ccxt's sandbox/testnet endpoints (setSandboxMode(true)). */
  sandbox?: boolean;
  /** Per-request timeout; a request over it is a RequestTimeout (retried). Default 10 s. */
  timeoutMs?: number;
  /** Override ccxt's minimum spacing between requests (ms); the limiter itself is always on. */
  rateLimitMs?: number;
  /** Merged into exchange.options, e.g. { defaultType: 'spot' }. */
  ccxtOptions?: Record<string, unknown>;
  /**
   * Send every REST request here instead: a mirror, a reverse proxy, or a local stand-in in tests
   * (EXCHANGE_API_URL). Its origin and path prefix replace those of each endpoint; the endpoint's
   * own path is kept, so `https://proxy.example/binance` sends klines to
   * `https://proxy.example/binance/api/v3/klines`.
   */
  apiUrl?: string;
  /** Replace single entries of exchange.urls.api. */
  apiUrls?: Record<string, string>;
}

/** Builds the ccxt instance: rate limiter on, sandbox switched before any URL override. */
export function createCcxtExchange(opts: CcxtExchangeOptions): ccxt.Exchange {
  const ctor = (ccxt as unknown as Record<string, unknown>)[opts.exchangeId];
  if (typeof ctor !== 'function' || !(ctor.prototype instanceof ccxt.Exchange)) {
    throw new ExchangeRejectedError(`'${opts.exchangeId}' is not a ccxt exchange id (see ccxt.exchanges)`, { exchangeId: opts.exchangeId });
  }
  registerSecret(opts.apiKey);
  registerSecret(opts.secret);
  registerSecret(opts.password);
  const exchange = new (ctor as new (config: Record<string, unknown>) => ccxt.Exchange)({
    enableRateLimit: true,
    timeout: opts.timeoutMs ?? 10_000,
    ...(opts.apiKey ? { apiKey: opts.apiKey, secret: opts.secret } : {}),
    ...(opts.password ? { password: opts.password } : {}),
    ...(opts.rateLimitMs !== undefined ? { rateLimit: opts.rateLimitMs } : {}),
  });
  // Binance refuses symbol-less open-order queries unless told we accept their rate cost.
  exchange.options = { ...exchange.options, warnOnFetchOpenOrdersWithoutSymbol: false, ...(opts.ccxtOptions ?? {}) };
  if (opts.sandbox) exchange.setSandboxMode(true);
  const api = exchange.urls.api as unknown;
  if (opts.apiUrl) {
    const base = new URL(opts.apiUrl);
    const prefix = (base.origin + base.pathname).replace(/\/+$/, '');
    const hostname = (exchange as unknown as { hostname?: string }).hostname ?? '';
    // Entries may be templates ('https://api.{hostname}/v5') that ccxt fills in per request.
    const rewrite = (u: string) => prefix + new URL(u.replace('{hostname}', hostname)).pathname.replace(/\/$/, '');
    const walk = (node: Record<string, unknown>): void => {
      for (const [k, v] of Object.entries(node)) {
        if (typeof v === 'string' && /^https?:\/\//.test(v)) node[k] = rewrite(v);
        else if (typeof v === 'object' && v !== null) walk(v as Record<string, unknown>);
      }
    };
    if (typeof api === 'string') exchange.urls.api = rewrite(api) as never;
    else if (typeof api === 'object' && api !== null) walk(api as Record<string, unknown>);
  }
  if (opts.apiUrls && typeof api === 'object' && api !== null) Object.assign(api, opts.apiUrls);
  return exchange;
}

/**
 * Venues where ccxt's fetchOrder takes a client order id natively (read from ccxt's source).
 * Others are searched among open and closed orders.
 */
const NATIVE_CLIENT_ID_PARAM: Record<string, string> = {
  binance: 'origClientOrderId',
  binanceus: 'origClientOrderId',
  binanceusdm: 'origClientOrderId',
  binancecoinm: 'origClientOrderId',
  okx: 'clOrdId',
  bitget: 'clientOrderId',
};

export interface CcxtAdapterOptions {
  /** Shared per exchange by default (resilienceFor(id)); give options or an instance to override. */
  resilience?: ExchangeResilience | ResilienceOptions;
  /** Clock deciding which candles are closed. Default Date.now. */
  now?: () => number;
  /** 'search' skips the venue's native client-id lookup and searches open and closed orders. */
  lookupByClientId?: 'auto' | 'search';
  log?: Logger;
  /**
   * Called with the closed candles of every answer of fetchCandles, before they are returned (the
   * live loop puts them in the candle store). Awaited, so a caller that has its candles knows
   * they were offered; a failure of it is logged and never reaches the caller.
   */
  onClosedCandles?: ClosedCandlesSink;
}

/**
 * ccxt keeps the promise of its first market load (Exchange.loadMarkets caches `marketsLoading`),
 * rejected or not, and every market or private call awaits it: one transient error while loading
 * (a 504 on binance's /sapi/v1/capital/config/getall) made every later call of that client fail
 * with the same error, for good, the breaker open after it (found by test/integration/exchange-faults.test.ts).
 * A failed load is forgotten here, so the next call, or the retry, loads again.
 */
function forgetFailedMarketLoads(exchange: ccxt.Exchange): void {
  const held = exchange as unknown as { marketsLoading?: Promise<unknown> };
  const load = exchange.loadMarkets.bind(exchange);
  exchange.loadMarkets = async (...args: Parameters<typeof load>) => {
    const loading = load(...args);
    // ccxt's loadMarkets is async: it returns a new promise around the one it keeps, set synchronously.
    const kept = held.marketsLoading;
    try {
      return await loading;
    } catch (err) {
      if (held.marketsLoading === kept) held.marketsLoading = undefined;
      throw err;
    }
  };
}

export type ClosedCandlesSink = (symbol: string, timeframe: string, candles: Candle[]) => Promise<void>;

export class CcxtExchangeAdapter implements ExchangeAdapter {
  readonly exchangeId: string;
  private readonly resilience: ExchangeResilience;
  private readonly now: () => number;
  private readonly lookup: 'auto' | 'search';
  private readonly log: Logger;
  private readonly onClosedCandles?: ClosedCandlesSink;
  private readonly marketCache = new Map<string, MarketInfo>();
  private marketsLoaded = false;

  static create(opts: CcxtExchangeOptions, adapterOpts: CcxtAdapterOptions = {}): CcxtExchangeAdapter {
    const exchange = createCcxtExchange(opts);
    const key = opts.sandbox ? `${opts.exchangeId}:sandbox` : opts.exchangeId;
    const resilience = adapterOpts.resilience instanceof ExchangeResilience ? adapterOpts.resilience : resilienceFor(key, adapterOpts.resilience);
    return new CcxtExchangeAdapter(exchange, { ...adapterOpts, resilience });
  }

  constructor(
    readonly exchange: ccxt.Exchange,
    opts: CcxtAdapterOptions = {},
  ) {
    this.exchangeId = exchange.id;
    forgetFailedMarketLoads(exchange);
    this.resilience = opts.resilience instanceof ExchangeResilience ? opts.resilience : resilienceFor(exchange.id, opts.resilience);
    this.now = opts.now ?? Date.now;
    this.lookup = opts.lookupByClientId ?? 'auto';
    this.log = (opts.log ?? logger()).child({ exchangeId: exchange.id });
    this.onClosedCandles = opts.onClosedCandles;
  }

  breakerState(): BreakerStatus {
    return this.resilience.breakerState();
  }

  private ctx(operation: string, symbol?: string): ExchangeErrorContext {
    return { exchangeId: this.exchangeId, operation, symbol };
  }

  async loadMarkets(reload = false): Promise<string[]> {
    await this.resilience.run('loadMarkets', () => this.exchange.loadMarkets(reload));
    this.marketsLoaded = true;
    if (reload) this.marketCache.clear();
    return this.exchange.symbols ?? [];
  }

  async market(symbol: string): Promise<MarketInfo> {
    const cached = this.marketCache.get(symbol);
    if (cached) return cached;
    if (!this.marketsLoaded) await this.loadMarkets();
    const raw = this.exchange.markets?.[symbol];
    if (!raw) throw new BadSymbolError(`${this.exchangeId} has no market ${symbol}`, this.ctx('market', symbol));
    const info = parseMarket(raw, this.exchange.precisionMode ?? 2, this.ctx('market', symbol));
    this.marketCache.set(symbol, info);
    return info;
  }

  async fetchCandles(symbol: string, timeframe: string, since?: number, limit?: number): Promise<Candle[]> {
    const tfMs = timeframeToMs(timeframe);
    if (!this.exchange.has['fetchOHLCV']) throw new ExchangeRejectedError(`${this.exchangeId} has no OHLCV endpoint`, this.ctx('fetchCandles', symbol));
    // The venue includes the candle still forming; ask for one more so `limit` closed ones remain.
    const ask = limit === undefined ? undefined : since === undefined ? limit + 1 : limit;
    // Closed as of when we asked, not when the answer came: a candle that closes while the request
    // is in flight comes back as the venue saw it then, still forming, and must not pass for final.
    // Taken per attempt: a retry sent after the close is answered with the candle final.
    let asked = this.now();
    const raw = await this.resilience.run(
      'fetchCandles',
      () => {
        asked = this.now();
        return this.exchange.fetchOHLCV(symbol, timeframe, since, ask);
      },
      symbol,
    );
    const byTime = new Map<number, Candle>();
    for (const c of parseCandles(raw, this.ctx('fetchCandles', symbol))) {
      if (c.timestamp + tfMs <= asked && (since === undefined || c.timestamp >= since)) byTime.set(c.timestamp, c);
    }
    const closed = [...byTime.values()].sort((a, b) => a.timestamp - b.timestamp);
    if (this.onClosedCandles && closed.length > 0) {
      await this.onClosedCandles(symbol, timeframe, closed).catch((err: unknown) => this.log.warn({ err, symbol, timeframe }, 'closed candles could not be handed on (candle store)'));
    }
    if (limit === undefined) return closed;
    return since === undefined ? closed.slice(-limit) : closed.slice(0, limit);
  }

  async fetchBalance(): Promise<Balances> {
    const raw = await this.resilience.run('fetchBalance', () => this.exchange.fetchBalance());
    return parseBalance(raw, this.ctx('fetchBalance'));
  }

  async createOrder(request: OrderRequest): Promise<ExchangeOrder> {
    const parsed = OrderRequest.safeParse(request);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new InvalidOrderError(`order request ${i.path.join('.') || ''}: ${i.message}`, this.ctx('createOrder', request?.symbol));
    }
    const req = parsed.data;
    const ctx = this.ctx('createOrder', req.symbol);
    const market = await this.market(req.symbol);
    const fit = fitOrder(market, {
      amount: req.qty,
      price: req.type === 'limit' ? req.price : undefined,
      stopPrice: req.stopPrice,
      referencePrice: req.type === 'market' ? req.price : undefined,
    });
    if (!fit.ok) throw new OrderBelowMinimumError(`${this.exchangeId} ${fit.message}`, fit.reason, ctx);
    const params: Record<string, unknown> = { clientOrderId: req.clientOrderId };
    if (req.type === 'stop_market') params.triggerPrice = fit.stopPrice;
    const ccxtType = req.type === 'limit' ? 'limit' : 'market';
    const price = req.type === 'limit' ? fit.price : undefined;

    return this.resilience.run(
      'createOrder',
      async () => {
        // Every attempt looks first: the previous one may have reached the exchange before the
        // connection dropped, and a second order is worse than a slow one.
        const existing = await this.findByClientId(req.symbol, req.clientOrderId);
        if (existing) {
          this.log.info({ clientOrderId: req.clientOrderId, orderId: existing.id, status: existing.status }, 'order already on the exchange, not sent again');
          return existing;
        }
        let raw: unknown;
        try {
          raw = await this.exchange.createOrder(req.symbol, ccxtType, req.side, fit.amount, price, params);
        } catch (err) {
          if (err instanceof ccxt.DuplicateOrderId) {
            const dup = await this.findByClientId(req.symbol, req.clientOrderId);
            if (dup) return dup;
          }
          throw err;
        }
        this.log.info({ clientOrderId: req.clientOrderId, symbol: req.symbol, side: req.side, type: req.type, qty: fit.amount, price, stopPrice: fit.stopPrice }, 'order placed');
        const order = parseOrder(raw, ctx);
        if (order) return { ...order, clientOrderId: order.clientOrderId ?? req.clientOrderId };
        // A thin acknowledgement: ask for the full order.
        const full = await this.findByClientId(req.symbol, req.clientOrderId);
        if (full) return full;
        const ack = ackOrderId(raw, ctx);
        return { id: ack, clientOrderId: req.clientOrderId, symbol: req.symbol, side: req.side, type: req.type, status: 'open', qty: fit.amount, filledQty: 0, price, stopPrice: fit.stopPrice, createdAt: this.now() };
      },
      req.symbol,
    );
  }

  async fetchOrderByClientId(symbol: string, clientOrderId: string): Promise<ExchangeOrder | null> {
    return this.resilience.run('fetchOrderByClientId', () => this.findByClientId(symbol, clientOrderId), symbol);
  }

  async cancelOrder(symbol: string, ref: OrderRef): Promise<ExchangeOrder> {
    const ctx = this.ctx('cancelOrder', symbol);
    return this.resilience.run(
      'cancelOrder',
      async () => {
        let id = ref.id;
        if (!id) {
          const found = await this.findByClientId(symbol, ref.clientOrderId as string);
          if (!found) throw new OrderNotFoundError(`${this.exchangeId}: no order ${ref.clientOrderId} on ${symbol}`, ctx);
          if (found.status !== 'open') return found;
          id = found.id;
        }
        try {
          const raw = await this.exchange.cancelOrder(id, symbol);
          const order = parseOrder(raw, ctx);
          this.log.info({ orderId: id, clientOrderId: ref.clientOrderId, symbol }, 'order canceled');
          return order ?? (await this.fetchById(id, symbol));
        } catch (err) {
          // Already filled or canceled: report what it became instead of failing.
          if (err instanceof ccxt.OrderNotFound && this.exchange.has['fetchOrder']) {
            const current = await this.fetchById(id, symbol).catch(() => undefined);
            if (current && current.status !== 'open') return current;
          }
          throw err;
        }
      },
      symbol,
    );
  }

  async fetchOpenOrders(symbol?: string): Promise<ExchangeOrder[]> {
    const raw = await this.resilience.run('fetchOpenOrders', () => this.exchange.fetchOpenOrders(symbol), symbol);
    return parseOrders(raw, this.ctx('fetchOpenOrders', symbol));
  }

  async fetchMyTrades(symbol: string, since?: number, limit?: number): Promise<Trade[]> {
    const raw = await this.resilience.run('fetchMyTrades', () => this.exchange.fetchMyTrades(symbol, since, limit), symbol);
    return parseTrades(raw, this.ctx('fetchMyTrades', symbol));
  }

  // --- raw lookups, called inside a resilience.run --------------------------------------------

  private async fetchById(id: string, symbol: string): Promise<ExchangeOrder> {
    const raw = await this.exchange.fetchOrder(id, symbol);
    return parseFullOrder(raw, this.ctx('fetchOrder', symbol));
  }

  private async findByClientId(symbol: string, clientOrderId: string): Promise<ExchangeOrder | null> {
    const ctx = this.ctx('fetchOrderByClientId', symbol);
    const nativeParam = this.lookup === 'auto' ? NATIVE_CLIENT_ID_PARAM[this.exchange.id] : undefined;
    if (nativeParam && this.exchange.has['fetchOrder']) {
      try {
        const raw = await this.exchange.fetchOrder(undefined as unknown as string, symbol, { [nativeParam]: clientOrderId });
        return parseFullOrder(raw, ctx);
      } catch (err) {
        if (err instanceof ccxt.OrderNotFound) return null;
        throw err;
      }
    }
    const has = this.exchange.has;
    const lists: Array<() => Promise<unknown>> = [];
    if (has['fetchOpenOrders']) lists.push(() => this.exchange.fetchOpenOrders(symbol));
    if (has['fetchClosedOrders']) lists.push(() => this.exchange.fetchClosedOrders(symbol));
    else if (has['fetchCanceledAndClosedOrders']) lists.push(() => this.exchange.fetchCanceledAndClosedOrders(symbol));
    else if (has['fetchOrders']) lists.push(() => this.exchange.fetchOrders(symbol));
    if (lists.length < 2 && !has['fetchOrders']) {
      throw new ExchangeRejectedError(`${this.exchangeId}: cannot look orders up by client order id (no open/closed order listing); placing orders here is not idempotent`, ctx);
    }
    for (const list of lists) {
      const found = parseOrders(await list(), ctx).find((o) => o.clientOrderId === clientOrderId);
      if (found) return found;
    }
    return null;
  }
}

function ackOrderId(raw: unknown, ctx: ExchangeErrorContext): string {
  const id = raw && typeof raw === 'object' ? (raw as { id?: unknown }).id : undefined;
  if (typeof id === 'string' || typeof id === 'number') return String(id);
  throw new MalformedResponseError(`${ctx.exchangeId} createOrder: malformed payload at order.id: no order id in the answer`, 'order.id', ctx);
}
