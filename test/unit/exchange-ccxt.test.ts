import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { createLogger } from '../../infra/logger';
import { CcxtExchangeAdapter, createCcxtExchange } from '../../activities/exchange/ccxt-adapter';
import {
  BadSymbolError,
  ExchangeAuthError,
  ExchangeCircuitOpenError,
  ExchangeError,
  ExchangeNetworkError,
  ExchangeRateLimitError,
  ExchangeTimeoutError,
  ExchangeUnavailableError,
  InsufficientFundsError,
  InvalidOrderError,
  MalformedResponseError,
  OrderBelowMinimumError,
} from '../../lib/exchange/errors';
import { toTemporalFailure } from '../../activities/exchange/error-mapping';
import { ExchangeResilience, type ResilienceOptions } from '../../activities/exchange/resilience';
import { lifecycleStatus } from '../../lib/exchange/types';
import { ExchangeStandin } from '../../testkit/exchange-standin';
import { fixtureCandleFile } from '../../testkit/fixtures';
import { readCandleCsv } from '../../infra/candle-files';

const BTC_1H = fixtureCandleFile('fixture_BTC-USDT_1h.csv');
const HOUR = 3_600_000;
const candles = readCandleCsv(BTC_1H).candles;
const K = 8000; // late 2020, BTC near 18,000: a 0.001 BTC market order clears the 10 USDT minimum notional
const NOW = candles[K].timestamp + 30 * 60_000; // half-way through candle K
const KEY = 'standin-api-key-0001';
const SECRET = 'standin-secret-0001';
const quiet = createLogger({ level: 'silent' });

describe('ccxt adapter: a real ccxt binance against a local stand-in', function () {
  let standin: ExchangeStandin;

  before(async () => {
    standin = await ExchangeStandin.start({
      markets: [{ csvPath: BTC_1H, stepSize: '0.00001', tickSize: '0.01', minQty: '0.00001', minNotional: '10' }, { csvPath: fixtureCandleFile('synthetic_ETH-USDT_1h.csv') }],
      balances: { USDT: '10000', BTC: '0.5' },
      apiKey: KEY,
      now: NOW,
    });
  });
  after(() => standin.close());
  beforeEach(() => {
    standin.clearFaults();
    standin.now = NOW;
  });

  function adapter(over: { resilience?: ResilienceOptions; timeoutMs?: number; keys?: boolean; rateLimitMs?: number; lookup?: 'auto' | 'search'; log?: ReturnType<typeof createLogger>; ccxtOptions?: Record<string, unknown> } = {}) {
    const resilience = new ExchangeResilience('binance', { maxRetries: 3, initialDelayMs: 40, maxDelayMs: 400, breakerThreshold: 20, halfOpenAfterMs: 300, ...over.resilience }, over.log ?? quiet);
    const a = CcxtExchangeAdapter.create(
      {
        exchangeId: 'binance',
        apiUrl: standin.url,
        ...(over.keys === false ? {} : { apiKey: KEY, secret: SECRET }),
        timeoutMs: over.timeoutMs ?? 3000,
        rateLimitMs: over.rateLimitMs ?? 1,
        ccxtOptions: over.ccxtOptions ?? { fetchMarkets: { types: ['spot'] } },
      },
      { resilience, now: () => standin.now, log: quiet, lookupByClientId: over.lookup },
    );
    return { a, resilience };
  }

  async function ready(over: Parameters<typeof adapter>[0] = {}) {
    const r = adapter(over);
    await r.a.loadMarkets();
    standin.clearLog();
    return r;
  }

  const gaps = (p: string) => {
    const at = standin.calls(p).map((r) => r.at);
    return at.slice(1).map((t, i) => t - at[i]);
  };

  describe('market data and markets', () => {
    it('loads markets with ccxt defaults and reads precision and limits from exchangeInfo', async () => {
      const { a } = adapter({ ccxtOptions: {} });
      assert.deepEqual((await a.loadMarkets()).sort(), ['BTC/USDT', 'ETH/USDT']);
      assert.ok(standin.calls('/fapi/v1/exchangeInfo').length > 0, 'ccxt asked for futures too; the stand-in answered empty');
      const m = await a.market('BTC/USDT');
      assert.deepEqual(
        [m.base, m.quote, m.type, m.active, m.amountPrecision, m.pricePrecision, m.minAmount, m.minCost],
        ['BTC', 'USDT', 'spot', true, { kind: 'step', step: '0.00001' }, { kind: 'step', step: '0.01' }, 0.00001, 10],
      );
      await assert.rejects(a.market('DOGE/USDT'), (e: unknown) => e instanceof BadSymbolError && !e.retryable);
    });

    it('returns only closed candles, exactly as recorded, though the venue sends the forming one', async () => {
      const { a } = await ready();
      const latest = await a.fetchCandles('BTC/USDT', '1h', undefined, 5);
      assert.deepEqual(latest, candles.slice(K - 5, K), 'the five candles before the forming one');
      const [req] = standin.calls('/api/v3/klines');
      assert.equal(req.query.limit, '6', 'asked one more, since the forming candle is dropped');
      const since = candles[K - 10].timestamp;
      assert.deepEqual(await a.fetchCandles('BTC/USDT', '1h', since, 100), candles.slice(K - 10, K));
      standin.now = candles[K].timestamp + HOUR; // candle K just closed
      assert.deepEqual((await a.fetchCandles('BTC/USDT', '1h', undefined, 1))[0], candles[K]);
    });

    it('spaces requests with ccxt rate limiter (enableRateLimit is on)', async () => {
      // ccxt weighs Binance's klines at 0.4 units of rateLimit: 100 ms apart at 250 ms.
      const { a } = await ready({ rateLimitMs: 250 });
      assert.equal(a.exchange.enableRateLimit, true);
      for (let i = 0; i < 4; i++) await a.fetchCandles('BTC/USDT', '1h', undefined, 2);
      assert.ok(gaps('/api/v3/klines').every((g) => g >= 80), `limited gaps ${gaps('/api/v3/klines')}`);
      // Control: the same calls without the limiter go out back to back.
      standin.clearLog();
      a.exchange.enableRateLimit = false;
      for (let i = 0; i < 4; i++) await a.fetchCandles('BTC/USDT', '1h', undefined, 2);
      assert.ok(gaps('/api/v3/klines').every((g) => g < 40), `unlimited gaps ${gaps('/api/v3/klines')}`);
    });
  });

  describe('transient failures: retried with backoff', () => {
    for (const [status, cls] of [
      [429, ExchangeRateLimitError],
      [418, ExchangeRateLimitError],
      [503, ExchangeUnavailableError],
      [504, ExchangeTimeoutError],
    ] as const) {
      it(`HTTP ${status} twice, then success`, async () => {
        const { a, resilience } = await ready();
        standin.inject({ path: '/api/v3/klines', times: 2, fault: { kind: 'status', status } });
        const got = await a.fetchCandles('BTC/USDT', '1h', undefined, 3);
        assert.deepEqual(got, candles.slice(K - 3, K));
        assert.equal(standin.calls('/api/v3/klines').length, 3);
        assert.equal(resilience.stats.retries, 2);
        // Half jitter: retry n waits [d/2, d) with d = 40 ms * 2^n, so the waits grow.
        const [d1, d2] = resilience.stats.recentRetryDelaysMs;
        assert.ok(d1 >= 20 && d1 < 40 && d2 >= 40 && d2 < 80, `delays ${d1}, ${d2}`);
        const [g1, g2] = gaps('/api/v3/klines');
        assert.ok(g1 >= d1 - 2 && g2 >= d2 - 2, `the requests were really spaced: ${g1}, ${g2}`);
        // What the failures were mapped to, seen on a call that runs out of retries.
        standin.inject({ path: '/api/v3/klines', times: 10, fault: { kind: 'status', status } });
        const { a: once } = await ready({ resilience: { maxRetries: 0 } });
        await assert.rejects(once.fetchCandles('BTC/USDT', '1h'), (e: unknown) => e instanceof cls && e.retryable);
      });
    }

    it('"internal error, try again" answers (Binance -1001 with HTTP 503) are retried', async () => {
      const { a } = await ready();
      standin.inject({ path: '/api/v3/klines', fault: { kind: 'status', status: 503, body: '{"code":-1001,"msg":"Internal error; unable to process your request. Please try again."}' } });
      assert.equal((await a.fetchCandles('BTC/USDT', '1h', undefined, 2)).length, 2);
      assert.equal(standin.calls('/api/v3/klines').length, 2);
    });

    it('a request over the timeout is a RequestTimeout and is retried', async () => {
      const { a } = await ready({ timeoutMs: 250 });
      standin.inject({ path: '/api/v3/klines', fault: { kind: 'delay', ms: 800 } });
      const t0 = Date.now();
      assert.equal((await a.fetchCandles('BTC/USDT', '1h', undefined, 2)).length, 2);
      assert.ok(Date.now() - t0 >= 250);
      assert.equal(standin.calls('/api/v3/klines').length, 2);
      standin.inject({ path: '/api/v3/klines', fault: { kind: 'delay', ms: 800 } });
      const { a: once } = await ready({ timeoutMs: 250, resilience: { maxRetries: 0 } });
      await assert.rejects(once.fetchCandles('BTC/USDT', '1h'), ExchangeTimeoutError);
    });

    it('a dropped connection is a network error and is retried', async () => {
      const { a } = await ready();
      standin.inject({ path: '/api/v3/klines', fault: { kind: 'drop' } });
      assert.equal((await a.fetchCandles('BTC/USDT', '1h', undefined, 2)).length, 2);
      assert.equal(standin.calls('/api/v3/klines').length, 2);
    });

    it('a market load that failed is tried again by the next call (ccxt caches the rejected load)', async () => {
      // Not ready(): the first call loads the markets inside ccxt, and that load fails.
      const { a } = adapter({ resilience: { maxRetries: 0 } });
      standin.inject({ path: '/api/v3/exchangeInfo', times: 1, fault: { kind: 'status', status: 504 } });
      await assert.rejects(a.fetchMyTrades('BTC/USDT'), ExchangeTimeoutError);
      assert.ok(Array.isArray(await a.fetchMyTrades('BTC/USDT')), 'the next call loads the markets again and goes through');
      assert.equal(standin.calls('/api/v3/exchangeInfo').length, 2);
    });

    it('after the last retry, surfaces a retryable error that Temporal will retry later', async () => {
      const { a } = await ready({ resilience: { maxRetries: 2 } });
      standin.inject({ path: '/api/v3/klines', times: 10, fault: { kind: 'status', status: 429 } });
      const err = await a.fetchCandles('BTC/USDT', '1h').catch((e: unknown) => e);
      assert.ok(err instanceof ExchangeRateLimitError);
      assert.deepEqual([err.retryable, err.exchangeId, err.operation, err.symbol], [true, 'binance', 'fetchCandles', 'BTC/USDT']);
      assert.equal(standin.calls('/api/v3/klines').length, 3);
      const failure = toTemporalFailure(err);
      assert.ok(failure instanceof ApplicationFailure);
      assert.deepEqual([failure.nonRetryable, failure.type], [false, 'ExchangeRateLimitError']);
    });
  });

  describe('permanent failures: one attempt, non-retryable', () => {
    it('insufficient balance', async () => {
      const { a, resilience } = await ready();
      const err = await a.createOrder({ clientOrderId: 'too-big', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 5 }).catch((e: unknown) => e);
      assert.ok(err instanceof InsufficientFundsError, String(err));
      assert.equal(err.retryable, false);
      assert.equal(standin.calls('/api/v3/order').filter((r) => r.method === 'POST').length, 1);
      assert.equal(resilience.stats.retries, 0);
      const failure = toTemporalFailure(err);
      assert.ok(failure instanceof ApplicationFailure);
      assert.deepEqual([failure.nonRetryable, failure.type], [true, 'InsufficientFundsError']);
    });

    it('an order the venue rejects', async () => {
      const { a } = await ready();
      standin.inject({ path: '/api/v3/order', method: 'POST', fault: { kind: 'status', status: 400, body: '{"code":-2010,"msg":"Stop price would trigger immediately."}' } });
      const err = await a.createOrder({ clientOrderId: 'stop-now', symbol: 'BTC/USDT', side: 'sell', type: 'stop_market', qty: 0.01, stopPrice: 99999 }).catch((e: unknown) => e);
      assert.ok(err instanceof InvalidOrderError && !err.retryable, String(err));
      assert.equal(standin.calls('/api/v3/order').filter((r) => r.method === 'POST').length, 1);
    });

    it('bad credentials, and private calls without keys', async () => {
      const { a } = await ready();
      standin.inject({ path: '/api/v3/account', fault: { kind: 'status', status: 401, body: '{"code":-1022,"msg":"Signature for this request is not valid."}' } });
      await assert.rejects(a.fetchBalance(), (e: unknown) => e instanceof ExchangeAuthError && !e.retryable);
      assert.equal(standin.calls('/api/v3/account').length, 1);
      const { a: anon } = await ready({ keys: false });
      await assert.rejects(anon.fetchBalance(), ExchangeAuthError);
      assert.equal(standin.calls('/api/v3/account').length, 0, 'ccxt refused before sending');
      assert.equal((await anon.fetchCandles('BTC/USDT', '1h', undefined, 1)).length, 1, 'public data needs no keys');
    });

    it('an order below the market minimums never reaches the venue', async () => {
      const { a } = await ready();
      await assert.rejects(a.createOrder({ clientOrderId: 'dust', symbol: 'BTC/USDT', side: 'buy', type: 'limit', qty: 0.0001, price: 20000 }), (e: unknown) => e instanceof OrderBelowMinimumError && e.reason === 'cost_below_min');
      await assert.rejects(a.createOrder({ clientOrderId: 'dust2', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.000001 }), OrderBelowMinimumError);
      await assert.rejects(a.createOrder({ clientOrderId: 'bad id with spaces', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 1 }), InvalidOrderError);
      assert.equal(standin.calls('/api/v3/order').length, 0);
    });

    it('malformed payloads: a clear error naming the field, not retried', async () => {
      const { a } = await ready();
      const t = candles[K - 1].timestamp;
      const rows = JSON.stringify([[t - HOUR, '1', '2', '0.5', '1.5', '10', t - 1, '0', 0, '0', '0', '0'], [t, '1', '2', '0.5', 'abc', '10', t + HOUR - 1, '0', 0, '0', '0', '0']]);
      standin.inject({ path: '/api/v3/klines', fault: { kind: 'body', body: rows } });
      const err = await a.fetchCandles('BTC/USDT', '1h').catch((e: unknown) => e);
      assert.ok(err instanceof MalformedResponseError, String(err));
      assert.equal(err.field, 'candles[1].close');
      assert.match(err.message, /malformed payload at candles\[1\]\.close/);
      assert.equal(err.retryable, false);
      assert.equal(standin.calls('/api/v3/klines').length, 1);
      standin.inject({ path: '/api/v3/klines', fault: { kind: 'body', body: 'upstream error <html>' } });
      await assert.rejects(a.fetchCandles('BTC/USDT', '1h'), (e: unknown) => e instanceof MalformedResponseError && /candles\[0\]/.test(e.field));
      // A value ccxt's own parser chokes on: still a malformed payload, not an unknown failure.
      standin.inject({ path: '/api/v3/account', fault: { kind: 'body', body: '{"balances":[{"asset":"BTC","free":"zero","locked":"0"}]}' } });
      await assert.rejects(a.fetchBalance(), (e: unknown) => e instanceof MalformedResponseError && e.field === 'payload' && !e.retryable);
      assert.equal(standin.calls('/api/v3/account').length, 1);
    });

    it('error messages carry no request signature', async () => {
      const { a } = await ready({ resilience: { maxRetries: 0 } });
      standin.inject({ path: '/api/v3/account', fault: { kind: 'drop' } });
      const err = await a.fetchBalance().catch((e: unknown) => e);
      assert.ok(err instanceof ExchangeNetworkError);
      const signature = standin.calls('/api/v3/account')[0].query.signature;
      assert.ok(signature && signature.length > 20);
      assert.ok(!err.message.includes(signature), err.message);
      assert.ok(!err.message.includes(KEY) && !err.message.includes(SECRET));
    });
  });

  describe('circuit breaker', () => {
    it('opens after N consecutive transient failures, refuses calls, half-opens, then closes; state is visible and logged', async () => {
      const lines: string[] = [];
      const sink = new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) });
      const log = createLogger({ level: 'info', destination: sink });
      const { a } = await ready({ resilience: { maxRetries: 0, breakerThreshold: 3, halfOpenAfterMs: 300 }, log });
      assert.equal(a.breakerState().state, 'closed');
      standin.inject({ path: '/api/v3/klines', times: 3, fault: { kind: 'status', status: 503 } });
      for (let i = 0; i < 3; i++) await assert.rejects(a.fetchCandles('BTC/USDT', '1h'), ExchangeUnavailableError);
      const open = a.breakerState();
      assert.deepEqual([open.state, open.consecutiveFailures, open.exchangeId], ['open', 3, 'binance']);
      assert.match(open.lastFailure ?? '', /ExchangeUnavailableError/);

      const refused = await a.fetchCandles('BTC/USDT', '1h').catch((e: unknown) => e);
      assert.ok(refused instanceof ExchangeCircuitOpenError && refused.retryable, String(refused));
      assert.equal(standin.calls('/api/v3/klines').length, 3, 'the refused call never reached the venue');

      await new Promise((r) => setTimeout(r, 350));
      assert.equal((await a.fetchCandles('BTC/USDT', '1h', undefined, 2)).length, 2, 'the half-open trial call succeeds');
      assert.equal(a.breakerState().state, 'closed');
      const events = lines.map((l) => JSON.parse(l) as { msg: string; breaker?: string; exchangeId?: string });
      assert.deepEqual(events.filter((e) => e.breaker).map((e) => e.breaker), ['open', 'half_open', 'closed']);
      assert.ok(events.every((e) => e.exchangeId === 'binance'));
    });

    it('is not opened by permanent errors: the venue is answering', async () => {
      const { a } = await ready({ resilience: { maxRetries: 0, breakerThreshold: 2 } });
      for (let i = 0; i < 3; i++) await assert.rejects(a.createOrder({ clientOrderId: `nofunds-${i}`, symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 5 }), InsufficientFundsError);
      assert.equal(a.breakerState().state, 'closed');
    });
  });

  describe('orders', () => {
    it('places an order once per client order id', async () => {
      const { a } = await ready();
      const req = { clientOrderId: 'once-1', symbol: 'BTC/USDT', side: 'buy' as const, type: 'market' as const, qty: 0.0123456 };
      const first = await a.createOrder(req);
      assert.deepEqual([first.status, first.qty, first.clientOrderId], ['closed', 0.01234, 'once-1']);
      const again = await a.createOrder(req);
      assert.equal(again.id, first.id);
      const posts = standin.calls('/api/v3/order').filter((r) => r.method === 'POST');
      assert.equal(posts.length, 1);
      assert.deepEqual([posts[0].query.newClientOrderId, posts[0].query.quantity, posts[0].query.type], ['once-1', '0.01234', 'MARKET']);
    });

    for (const lookup of ['auto', 'search'] as const) {
      it(`a response lost after the venue took the order is not sent twice (${lookup} lookup)`, async () => {
        const { a } = await ready({ lookup });
        const id = `lost-${lookup}`;
        standin.inject({ path: '/api/v3/order', method: 'POST', fault: { kind: 'lose-response' } });
        const order = await a.createOrder({ clientOrderId: id, symbol: 'BTC/USDT', side: 'buy', type: 'limit', qty: 0.01, price: 1000 });
        assert.deepEqual([order.clientOrderId, order.status, order.price], [id, 'open', 1000]);
        assert.equal(standin.calls('/api/v3/order').filter((r) => r.method === 'POST').length, 1, 'the retry found the order instead of placing another');
        const open = await a.fetchOpenOrders('BTC/USDT');
        assert.equal(open.filter((o) => o.clientOrderId === id).length, 1);
        if (lookup === 'search') assert.ok(standin.calls('/api/v3/allOrders').length > 0);
      });
    }

    it('sends a stop_market as STOP_LOSS with the trigger on the tick; looks up, cancels, lists', async () => {
      const { a } = await ready();
      const stop = await a.createOrder({ clientOrderId: 'stop-1', symbol: 'BTC/USDT', side: 'sell', type: 'stop_market', qty: 0.0100009, stopPrice: 20000.126 });
      const post = standin.calls('/api/v3/order').find((r) => r.method === 'POST');
      assert.deepEqual([post?.query.type, post?.query.stopPrice, post?.query.quantity], ['STOP_LOSS', '20000.13', '0.01']);
      assert.deepEqual([stop.type, stop.status, stop.stopPrice], ['stop_market', 'open', 20000.13]);
      assert.equal(lifecycleStatus(stop), 'open');
      assert.equal(lifecycleStatus({ ...stop, filledQty: 0.004 }), 'partially_filled');
      assert.equal((await a.fetchOrderByClientId('BTC/USDT', 'stop-1'))?.id, stop.id);
      assert.equal(await a.fetchOrderByClientId('BTC/USDT', 'never-placed'), null);
      assert.ok((await a.fetchOpenOrders()).some((o) => o.id === stop.id));
      const canceled = await a.cancelOrder('BTC/USDT', { clientOrderId: 'stop-1' });
      assert.equal(canceled.status, 'canceled');
      assert.equal((await a.cancelOrder('BTC/USDT', { id: stop.id })).status, 'canceled', 'cancelling twice reports the final state');
      const filled = await a.createOrder({ clientOrderId: 'fill-1', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.001 });
      assert.equal((await a.cancelOrder('BTC/USDT', { id: filled.id })).status, 'closed');
      assert.deepEqual([lifecycleStatus(filled), lifecycleStatus(canceled)], ['filled', 'canceled']);
      const trades = await a.fetchMyTrades('BTC/USDT');
      const t = trades.find((x) => x.orderId === filled.id);
      assert.deepEqual([t?.qty, t?.liquidity, t?.fee?.currency], [0.001, 'taker', 'USDT']);
      const bal = await a.fetchBalance();
      assert.ok(bal.BTC.total > 0.5 && bal.USDT.total < 10000);
    });
  });

  it('sandbox switches ccxt to the testnet before any override; unknown venues are refused', () => {
    const ex = createCcxtExchange({ exchangeId: 'binance', sandbox: true });
    assert.match(String((ex.urls.api as Record<string, string>).public), /testnet/);
    assert.equal(ex.enableRateLimit, true);
    assert.throws(() => createCcxtExchange({ exchangeId: 'no-such-venue' }), (e: unknown) => e instanceof ExchangeError && /not a ccxt exchange id/.test(e.message));
  });
});
