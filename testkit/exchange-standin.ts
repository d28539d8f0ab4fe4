import type http from 'node:http';
import { timeframeToMs, type Candle } from '../lib/candles';
import { readCandleCsv } from '../infra/candle-files';
import { Prng } from '../lib/random';
import { readBody, sendJson, startLocalHttpServer, type LocalHttpServer } from './http-standin';

/**
 * A local stand-in of Binance's spot REST API, enough for a real, unmodified ccxt `binance`
 * instance pointed at it (urls.api rewritten to http://127.0.0.1:<port>/...): exchangeInfo for
 * loadMarkets, klines served from whatever candle CSVs it is given, and a small account with
 * orders, balances and trades. Faults are injected per request (status codes, raw bodies, delays,
 * dropped connections) and every request is logged with its arrival time, so tests can see
 * retries, backoff and the rate limiter from the outside.
 *
 * It is not an exchange simulator: market orders fill at the last closed price, marketable limits
 * fill at once, everything else rests. Signatures are not checked; the API key header is.
 */

export interface StandinMarket {
  /** A candle CSV; symbol and timeframe from its name (<exchange>_<BASE>-<QUOTE>_<tf>.csv) unless given. */
  csvPath?: string;
  /** Or the candles themselves (generated ones: tests need nothing outside the repository); then symbol and timeframe are required. */
  candles?: Candle[];
  symbol?: string;
  timeframe?: string;
  tickSize?: string;
  stepSize?: string;
  minQty?: string;
  minNotional?: string;
  /**
   * With a live `clock`: at the first klines request for this market, every candle is moved by one
   * offset so that candle `lastClosedIndex` is the newest closed one then, order and spacing kept.
   * A recorded or generated series then plays as if it were happening now: the candles before it
   * are the history a trader warms up on, the later ones close one by one on the wall clock.
   *
   * A client judges "closed" by when it sent the request, which the stand-in cannot see. A first
   * request arriving less than `ambiguousMs` (default 3 s) after a candle close may have been sent
   * before it, and would then count that candle as still forming. Such a request is answered 503,
   * once, and not re-timed on: the client's retry is sent after the close for certain.
   */
  retimeAtFirstRequest?: { lastClosedIndex: number; ambiguousMs?: number };
}

export type Fault =
  | { kind: 'status'; status: number; body?: string }
  | { kind: 'body'; status?: number; body: string }
  | { kind: 'delay'; ms: number }
  | { kind: 'drop' }
  /** Carry the request out, then cut the connection before answering: a response lost on the way back. */
  | { kind: 'lose-response' }
  /** Carry the request out, then answer with an error status: Binance's 5xx whose "execution status is unknown". */
  | { kind: 'status-after'; status: number; body?: string }
  /** Carry the request out, then answer only after `ms` (longer than the client waits): a slow backend, the request done. */
  | { kind: 'late-answer'; ms: number };

export interface FaultRule {
  /** Matched against the path (no query), e.g. '/api/v3/klines'; all paths when absent. */
  path?: string | RegExp;
  method?: string;
  /** How many matching requests get the fault (default 1). */
  times?: number;
  /** Matching requests let through before the fault applies (default 0): a fault mid-way through a series of calls. */
  skip?: number;
  fault: Fault;
}

/**
 * Faults drawn at random (seeded) for a share of the requests, beside the scripted rules: about
 * `rate` of the matching requests get one of `kinds`, equally likely. The kinds are what a venue
 * does under stress: 429s, 5xx before or after carrying the request out, answers later than the
 * client's timeout (the request done meanwhile), responses lost after the request was carried out.
 */
export interface RandomFaults {
  rate: number;
  seed: number;
  /** Only these paths (as FaultRule.path); all when absent. */
  path?: string | RegExp;
  /** How late a `timeout` answers; set it above the client's timeout. */
  timeoutMs: number;
  kinds?: RandomFaultKind[];
}

export type RandomFaultKind = 'timeout' | '429' | '500' | '503-after' | '504-after' | 'lose-response';
export const RANDOM_FAULT_KINDS: readonly RandomFaultKind[] = ['timeout', '429', '500', '503-after', '504-after', 'lose-response'];

export interface LoggedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  at: number;
  faulted?: Fault['kind'];
  /** The random fault drawn for it (RandomFaults), if any. */
  random?: RandomFaultKind;
}

interface Market {
  id: string;
  symbol: string;
  base: string;
  quote: string;
  interval: string;
  tfMs: number;
  candles: Candle[];
  tickSize: string;
  stepSize: string;
  minQty: string;
  minNotional: string;
  retime?: { lastClosedIndex: number; ambiguousMs?: number; at?: number; refusedAt?: number };
  /** Candles opening at or after `openTime` are not served before the stand-in's clock reaches `at`. */
  late?: { openTime: number; at: number };
}

interface StandinOrder {
  symbol: string;
  orderId: number;
  clientOrderId: string;
  price: string;
  origQty: string;
  executedQty: string;
  cummulativeQuoteQty: string;
  status: 'NEW' | 'FILLED' | 'CANCELED';
  timeInForce: string;
  type: string;
  side: 'BUY' | 'SELL';
  stopPrice: string;
  time: number;
  updateTime: number;
  isWorking: boolean;
  origQuoteOrderQty: string;
  workingTime: number;
  selfTradePreventionMode: string;
}

const FEE_RATE = 0.001;

/** What Binance (or the load balancer in front of it) sends with these statuses. */
function defaultErrorBody(status: number): string {
  if (status === 429) return '{"code":-1003,"msg":"Too many requests; current limit of IP is 6000 requests per minute."}';
  if (status === 418) return '{"code":-1003,"msg":"Way too many requests; IP banned until 1700000000000."}';
  if (status >= 500) return `<html><head><title>${status}</title></head><body><center><h1>${status}</h1></center></body></html>`;
  return JSON.stringify({ code: -1100, msg: `stand-in fault ${status}` });
}

function decimalsOf(values: number[]): number {
  let max = 0;
  for (const v of values) {
    const s = String(v);
    const i = s.indexOf('.');
    if (i >= 0) max = Math.max(max, s.length - i - 1);
  }
  return Math.min(max, 8);
}

const step = (decimals: number) => (decimals === 0 ? '1' : `0.${'0'.repeat(decimals - 1)}1`);

export interface StandinOptions {
  markets: StandinMarket[];
  /** Stand-in clock (epoch ms); default: one hour after the last candle of the first market opened. */
  now?: number;
  balances?: Record<string, string>;
  /** The API key private calls must carry (header X-MBX-APIKEY). */
  apiKey?: string;
  randomFaults?: RandomFaults;
  /** A live stand-in: `now` follows this clock (e.g. Date.now) at every request instead of staying where it was set. */
  clock?: () => number;
}

export class ExchangeStandin {
  readonly requests: LoggedRequest[] = [];
  now: number;
  private readonly markets = new Map<string, Market>();
  private readonly faults: Array<Required<Omit<FaultRule, 'path' | 'method'>> & FaultRule> = [];
  private readonly orders: StandinOrder[] = [];
  private readonly trades: Array<Record<string, unknown>> = [];
  private readonly balances = new Map<string, number>();
  private nextOrderId = 1000;
  private readonly random?: { faults: RandomFaults; prng: Prng; kinds: readonly RandomFaultKind[] };
  private server?: LocalHttpServer;
  url = '';

  constructor(private readonly opts: StandinOptions) {
    for (const m of opts.markets) {
      const file = m.candles
        ? { symbol: m.symbol!, timeframe: m.timeframe!, timeframeMs: timeframeToMs(m.timeframe!), candles: m.candles }
        : readCandleCsv(m.csvPath!, { symbol: m.symbol, timeframe: m.timeframe });
      const [base, quote] = file.symbol.split('/');
      const priceDecimals = decimalsOf(file.candles.slice(-500).flatMap((c) => [c.open, c.high, c.low, c.close]));
      const volumeDecimals = decimalsOf(file.candles.slice(-500).map((c) => c.volume));
      const stepSize = m.stepSize ?? step(Math.max(volumeDecimals, 5));
      this.markets.set(base + quote, {
        id: base + quote,
        symbol: file.symbol,
        base,
        quote,
        interval: file.timeframe,
        tfMs: file.timeframeMs,
        candles: file.candles,
        tickSize: m.tickSize ?? step(priceDecimals),
        stepSize,
        minQty: m.minQty ?? stepSize,
        minNotional: m.minNotional ?? (['USDT', 'USDC', 'BUSD', 'USD', 'TUSD', 'FDUSD'].includes(quote) ? '5' : '0.0001'),
        retime: m.retimeAtFirstRequest && { ...m.retimeAtFirstRequest },
      });
    }
    const first = [...this.markets.values()][0];
    this.now = opts.clock?.() ?? opts.now ?? (first ? first.candles[first.candles.length - 1].timestamp + first.tfMs : Date.now());
    for (const [asset, amount] of Object.entries(opts.balances ?? {})) this.balances.set(asset, Number(amount));
    if (opts.randomFaults) {
      const f = opts.randomFaults;
      if (!(f.rate >= 0 && f.rate <= 1)) throw new RangeError(`randomFaults.rate is a fraction, got ${f.rate}`);
      this.random = { faults: f, prng: new Prng(f.seed), kinds: f.kinds ?? RANDOM_FAULT_KINDS };
    }
  }

  /** Random faults drawn so far, by kind. */
  randomFaultCounts(): Record<RandomFaultKind, number> {
    const out = Object.fromEntries(RANDOM_FAULT_KINDS.map((k) => [k, 0])) as Record<RandomFaultKind, number>;
    for (const r of this.requests) if (r.random) out[r.random]++;
    return out;
  }

  /** Every order the stand-in holds, in placement order (a copy). */
  allOrders(): Array<{ clientOrderId: string; symbol: string; side: string; type: string; status: string; origQty: string; executedQty: string }> {
    return this.orders.map((o) => ({ clientOrderId: o.clientOrderId, symbol: o.symbol, side: o.side, type: o.type, status: o.status, origQty: o.origQty, executedQty: o.executedQty }));
  }

  private drawRandomFault(pathname: string): { kind: RandomFaultKind; fault: Fault } | undefined {
    const r = this.random;
    if (!r) return undefined;
    const p = r.faults.path;
    if (p !== undefined && !(typeof p === 'string' ? p === pathname : p.test(pathname))) return undefined;
    // Two draws per request whatever the outcome, so the sequence of faults depends only on the seed and the request count.
    const hit = r.prng.next() < r.faults.rate;
    const kind = r.kinds[Math.min(r.kinds.length - 1, Math.floor(r.prng.next() * r.kinds.length))];
    if (!hit) return undefined;
    const fault: Fault =
      kind === 'timeout'
        ? { kind: 'late-answer', ms: r.faults.timeoutMs }
        : kind === '429'
          ? { kind: 'status', status: 429 }
          : kind === '500'
            ? { kind: 'status', status: 500 }
            : kind === '503-after'
              ? { kind: 'status-after', status: 503 }
              : kind === '504-after'
                ? { kind: 'status-after', status: 504 }
                : { kind: 'lose-response' };
    return { kind, fault };
  }

  static async start(opts: StandinOptions): Promise<ExchangeStandin> {
    const s = new ExchangeStandin(opts);
    await s.listen();
    return s;
  }

  private async listen(): Promise<void> {
    this.server = await startLocalHttpServer((req, res) => {
      this.handle(req, res).catch((err) => {
        if (!res.headersSent) sendJson(res, 500, { code: -1000, msg: String(err) });
      });
    });
    this.url = this.server.url;
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  inject(rule: FaultRule): void {
    this.faults.push({ times: 1, skip: 0, ...rule });
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  clearLog(): void {
    this.requests.length = 0;
  }

  /** Requests whose path matches, e.g. calls('/api/v3/klines'). */
  calls(path: string): LoggedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  balance(asset: string): number {
    return this.balances.get(asset) ?? 0;
  }

  /** The candles of a market (`BTC/USDT` or `BTCUSDT`) as served: re-timed once the first klines request has come. */
  servedCandles(symbol: string): Candle[] {
    return [...this.market(symbol).candles];
  }

  /** When a `retimeAtFirstRequest` market was re-timed (its first klines request), or undefined before. */
  retimedAt(symbol: string): number | undefined {
    return this.market(symbol).retime?.at;
  }

  /**
   * The candle opening at `openTime` is published late: until the stand-in's clock reaches `at`,
   * klines end before it (as a venue whose candle roll-over lags does), then it is served as usual.
   */
  publishLate(symbol: string, openTime: number, at: number): void {
    this.market(symbol).late = { openTime, at };
  }

  private market(symbol: string): Market {
    const m = this.markets.get(symbol.replace('/', '')) ?? this.markets.get(symbol);
    if (!m) throw new Error(`the stand-in has no market ${symbol}`);
    return m;
  }

  /** The last price at the stand-in's now: close of the last closed candle. */
  lastPrice(symbolId: string): number {
    const m = this.markets.get(symbolId);
    if (!m) throw new Error(`no market ${symbolId}`);
    const closed = m.candles.filter((c) => c.timestamp + m.tfMs <= this.now);
    const last = closed[closed.length - 1] ?? m.candles[0];
    return last.close;
  }

  // --- HTTP ----------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin');
    const body = await readBody(req);
    const query: Record<string, string> = Object.fromEntries(url.searchParams);
    if (body) Object.assign(query, Object.fromEntries(new URLSearchParams(body)));
    const method = (req.method ?? 'GET').toUpperCase();
    if (this.opts.clock) this.now = this.opts.clock();
    const logged: LoggedRequest = { method, path: url.pathname, query, at: Date.now() };
    this.requests.push(logged);

    let rule = this.faults.find((f) => f.times > 0 && (!f.method || f.method === method) && (f.path === undefined || (typeof f.path === 'string' ? f.path === url.pathname : f.path.test(url.pathname))));
    if (rule && rule.skip > 0) {
      rule.skip--;
      rule = undefined;
    }
    let f: Fault | undefined;
    if (rule) {
      rule.times--;
      f = rule.fault;
    } else {
      const drawn = this.drawRandomFault(url.pathname);
      if (drawn) {
        logged.random = drawn.kind;
        f = drawn.fault;
      }
    }
    if (f) {
      logged.faulted = f.kind;
      if (f.kind === 'drop') {
        req.socket.destroy();
        return;
      }
      if (f.kind === 'lose-response') {
        const sink = Object.assign(Object.create(res) as http.ServerResponse, { writeHead: () => sink, end: () => req.socket.destroy() });
        this.route(method, url.pathname, query, req, sink);
        return;
      }
      if (f.kind === 'status-after' || f.kind === 'late-answer') {
        // The request is carried out now; what the client gets is an error, or an answer it no longer waits for.
        let answer: { status: number; text: string } = { status: 200, text: '' };
        const capture = Object.assign(Object.create(res) as http.ServerResponse, {
          writeHead: (status: number) => ((answer.status = status), capture),
          end: (text: string) => void (answer = { ...answer, text }),
        });
        this.route(method, url.pathname, query, req, capture);
        if (f.kind === 'status-after') {
          sendJson(res, f.status, f.body ?? defaultErrorBody(f.status));
          return;
        }
        await new Promise((r) => setTimeout(r, f.ms));
        if (res.destroyed || req.socket.destroyed) return;
        sendJson(res, answer.status, answer.text);
        return;
      }
      if (f.kind === 'delay') {
        await new Promise((r) => setTimeout(r, f.ms));
        if (res.destroyed || req.socket.destroyed) return;
      } else {
        sendJson(res, f.kind === 'status' ? f.status : (f.status ?? 200), f.kind === 'status' ? (f.body ?? defaultErrorBody(f.status)) : f.body);
        return;
      }
    }
    this.route(method, url.pathname, query, req, res);
  }

  private route(method: string, path: string, q: Record<string, string>, req: http.IncomingMessage, res: http.ServerResponse): void {
    const key = `${method} ${path}`;
    switch (key) {
      case 'GET /api/v3/ping':
        return sendJson(res, 200, {});
      case 'GET /api/v3/time':
        return sendJson(res, 200, { serverTime: this.now });
      case 'GET /api/v3/exchangeInfo':
        return sendJson(res, 200, this.exchangeInfo());
      case 'GET /fapi/v1/exchangeInfo':
      case 'GET /dapi/v1/exchangeInfo':
        // Derivatives are not served: an empty listing keeps ccxt's default loadMarkets working.
        return sendJson(res, 200, { timezone: 'UTC', serverTime: this.now, rateLimits: [], exchangeFilters: [], symbols: [] });
      case 'GET /sapi/v1/capital/config/getall':
      case 'GET /sapi/v1/margin/allPairs':
      case 'GET /sapi/v1/margin/isolated/allPairs':
        // With keys ccxt also asks for currencies and margin pairs; none here.
        return sendJson(res, 200, []);
      case 'GET /api/v3/klines':
        return this.klines(q, res);
    }
    if (path.startsWith('/api/v3/') && !['/api/v3/klines', '/api/v3/exchangeInfo'].includes(path)) {
      if (this.opts.apiKey && req.headers['x-mbx-apikey'] !== this.opts.apiKey) {
        return sendJson(res, 401, { code: -2015, msg: 'Invalid API-key, IP, or permissions for action.' });
      }
      switch (key) {
        case 'GET /api/v3/account':
          return sendJson(res, 200, this.account());
        case 'POST /api/v3/order':
          return this.placeOrder(q, res);
        case 'GET /api/v3/order':
        case 'DELETE /api/v3/order': {
          const o = this.findOrder(q);
          if (!o) return sendJson(res, 400, method === 'GET' ? { code: -2013, msg: 'Order does not exist.' } : { code: -2011, msg: 'Unknown order sent.' });
          if (method === 'DELETE') {
            if (o.status !== 'NEW') return sendJson(res, 400, { code: -2011, msg: 'Unknown order sent.' });
            o.status = 'CANCELED';
            o.updateTime = this.now;
          }
          return sendJson(res, 200, o);
        }
        case 'GET /api/v3/openOrders':
          return sendJson(res, 200, this.orders.filter((o) => o.status === 'NEW' && (!q.symbol || o.symbol === q.symbol)));
        case 'GET /api/v3/allOrders':
          return sendJson(res, 200, this.orders.filter((o) => o.symbol === q.symbol));
        case 'GET /api/v3/myTrades':
          // Binance: startTime/endTime bound the trade time, limit the count (default 500).
          return sendJson(
            res,
            200,
            this.trades
              .filter((t) => t.symbol === q.symbol && (q.startTime === undefined || (t.time as number) >= Number(q.startTime)) && (q.endTime === undefined || (t.time as number) <= Number(q.endTime)))
              .slice(0, Math.min(Number(q.limit ?? 500), 1000)),
          );
      }
    }
    sendJson(res, 404, { code: -1, msg: `stand-in does not serve ${key}` });
  }

  private exchangeInfo(): unknown {
    return {
      timezone: 'UTC',
      serverTime: this.now,
      rateLimits: [{ rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 6000 }],
      exchangeFilters: [],
      symbols: [...this.markets.values()].map((m) => ({
        symbol: m.id,
        status: 'TRADING',
        baseAsset: m.base,
        baseAssetPrecision: 8,
        quoteAsset: m.quote,
        quotePrecision: 8,
        quoteAssetPrecision: 8,
        baseCommissionPrecision: 8,
        quoteCommissionPrecision: 8,
        orderTypes: ['LIMIT', 'LIMIT_MAKER', 'MARKET', 'STOP_LOSS', 'STOP_LOSS_LIMIT', 'TAKE_PROFIT', 'TAKE_PROFIT_LIMIT'],
        icebergAllowed: true,
        ocoAllowed: true,
        quoteOrderQtyMarketAllowed: true,
        allowTrailingStop: true,
        cancelReplaceAllowed: true,
        isSpotTradingAllowed: true,
        isMarginTradingAllowed: false,
        filters: [
          { filterType: 'PRICE_FILTER', minPrice: m.tickSize, maxPrice: '1000000.00000000', tickSize: m.tickSize },
          { filterType: 'LOT_SIZE', minQty: m.minQty, maxQty: '9000.00000000', stepSize: m.stepSize },
          { filterType: 'NOTIONAL', minNotional: m.minNotional, applyMinToMarket: true, maxNotional: '9000000.00000000', applyMaxToMarket: false, avgPriceMins: 5 },
        ],
        permissions: [],
        permissionSets: [['SPOT']],
        defaultSelfTradePreventionMode: 'EXPIRE_MAKER',
        allowedSelfTradePreventionModes: ['EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH'],
      })),
    };
  }

  private klines(q: Record<string, string>, res: http.ServerResponse): void {
    const m = this.markets.get(q.symbol);
    if (!m) return sendJson(res, 400, { code: -1121, msg: 'Invalid symbol.' });
    if (q.interval !== m.interval) return sendJson(res, 400, { code: -1120, msg: 'Invalid interval.' });
    if (m.retime && m.retime.at === undefined) {
      const newestClose = Math.floor(this.now / m.tfMs) * m.tfMs;
      if (m.retime.refusedAt === undefined && this.now - newestClose < (m.retime.ambiguousMs ?? 3000)) {
        m.retime.refusedAt = this.now;
        return sendJson(res, 503, { code: -1008, msg: 'Server is currently overloaded with other requests. Please try again in a few minutes.' });
      }
      const newestClosedOpen = newestClose - m.tfMs;
      const shift = newestClosedOpen - m.candles[m.retime.lastClosedIndex].timestamp;
      m.candles = m.candles.map((c) => ({ ...c, timestamp: c.timestamp + shift }));
      m.retime.at = this.now;
    }
    const limit = Math.min(Number(q.limit ?? 500), 1000);
    const late = m.late && this.now < m.late.at ? m.late.openTime : Infinity;
    // Up to now, including the candle still forming (as the real API does), shown as just opened.
    const visible = m.candles.filter((c) => c.timestamp <= this.now && c.timestamp < late && (q.endTime === undefined || c.timestamp <= Number(q.endTime)));
    let rows = q.startTime !== undefined ? visible.filter((c) => c.timestamp >= Number(q.startTime)).slice(0, limit) : visible.slice(-limit);
    rows = rows.map((c) => (c.timestamp + m.tfMs > this.now ? { ...c, high: c.open, low: c.open, close: c.open, volume: 0 } : c));
    sendJson(
      res,
      200,
      rows.map((c) => [c.timestamp, String(c.open), String(c.high), String(c.low), String(c.close), String(c.volume), c.timestamp + m.tfMs - 1, '0', 0, '0', '0', '0']),
    );
  }

  private account(): unknown {
    return {
      makerCommission: 10,
      takerCommission: 10,
      canTrade: true,
      canWithdraw: true,
      canDeposit: true,
      updateTime: this.now,
      accountType: 'SPOT',
      balances: [...this.balances.entries()].map(([asset, free]) => ({ asset, free: free.toFixed(8), locked: '0.00000000' })),
      permissions: ['SPOT'],
    };
  }

  private findOrder(q: Record<string, string>): StandinOrder | undefined {
    return this.orders.find((o) => o.symbol === q.symbol && (q.orderId ? String(o.orderId) === q.orderId : o.clientOrderId === q.origClientOrderId));
  }

  private placeOrder(q: Record<string, string>, res: http.ServerResponse): void {
    const m = this.markets.get(q.symbol);
    if (!m) return sendJson(res, 400, { code: -1121, msg: 'Invalid symbol.' });
    if (this.orders.some((o) => o.status === 'NEW' && o.clientOrderId === q.newClientOrderId)) {
      return sendJson(res, 400, { code: -2010, msg: 'Duplicate order sent.' });
    }
    const qty = Number(q.quantity);
    const last = this.lastPrice(m.id);
    const price = q.type === 'LIMIT' ? Number(q.price) : q.type === 'MARKET' ? last : Number(q.stopPrice);
    if (qty * price < Number(m.minNotional)) return sendJson(res, 400, { code: -1013, msg: 'Filter failure: NOTIONAL' });
    const need = q.side === 'BUY' ? qty * price * (1 + FEE_RATE) : qty;
    const asset = q.side === 'BUY' ? m.quote : m.base;
    if (this.balance(asset) < need) return sendJson(res, 400, { code: -2010, msg: 'Account has insufficient balance for requested action.' });
    const fillsNow = q.type === 'MARKET' || (q.type === 'LIMIT' && (q.side === 'BUY' ? price >= last : price <= last));
    const fillPrice = q.type === 'MARKET' ? last : price;
    const order: StandinOrder = {
      symbol: m.id,
      orderId: this.nextOrderId++,
      clientOrderId: q.newClientOrderId,
      price: q.type === 'LIMIT' ? q.price : '0.00000000',
      origQty: q.quantity,
      executedQty: fillsNow ? q.quantity : '0.00000000',
      cummulativeQuoteQty: fillsNow ? String(qty * fillPrice) : '0.00000000',
      status: fillsNow ? 'FILLED' : 'NEW',
      timeInForce: q.timeInForce ?? 'GTC',
      type: q.type,
      side: q.side as 'BUY' | 'SELL',
      stopPrice: q.stopPrice ?? '0.00000000',
      time: this.now,
      updateTime: this.now,
      isWorking: q.type !== 'STOP_LOSS',
      origQuoteOrderQty: '0.00000000',
      workingTime: this.now,
      selfTradePreventionMode: 'EXPIRE_MAKER',
    };
    this.orders.push(order);
    const fills: unknown[] = [];
    if (fillsNow) {
      const cost = qty * fillPrice;
      const fee = cost * FEE_RATE;
      if (q.side === 'BUY') {
        this.balances.set(m.quote, this.balance(m.quote) - cost - fee);
        this.balances.set(m.base, this.balance(m.base) + qty);
      } else {
        this.balances.set(m.base, this.balance(m.base) - qty);
        this.balances.set(m.quote, this.balance(m.quote) + cost - fee);
      }
      const trade = { symbol: m.id, id: this.trades.length + 1, orderId: order.orderId, orderListId: -1, price: String(fillPrice), qty: q.quantity, quoteQty: String(cost), commission: String(fee), commissionAsset: m.quote, time: this.now, isBuyer: q.side === 'BUY', isMaker: false, isBestMatch: true };
      this.trades.push(trade);
      fills.push({ price: String(fillPrice), qty: q.quantity, commission: String(fee), commissionAsset: m.quote, tradeId: trade.id });
    }
    sendJson(res, 200, { ...order, transactTime: this.now, fills });
  }
}
