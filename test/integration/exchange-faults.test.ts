import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { CcxtExchangeAdapter } from '../../activities/exchange/ccxt-adapter';
import { ExchangeResilience } from '../../activities/exchange/resilience';
import type { Venue } from '../../activities/trading';
import { createLogger } from '../../infra/logger';
import { ReplayMarketData } from '../../lib/exchange/replay-market-data';
import type { ExchangeAdapter } from '../../lib/exchange/types';
import { ExchangeStandin, RANDOM_FAULT_KINDS, type StandinOptions } from '../../testkit/exchange-standin';
import { sampledMarketCandles } from '../../testkit/candles';
import { sharedDevServerEnv } from '../../testkit/temporal';
import { historyEvents, ledgerOrders, ledgerTrades, tradeKey, tradingHarness } from '../../testkit/trading';

/**
 * A failing exchange under the real order path: SymbolTraderWorkflow on a Temporal dev server,
 * its executeIntents activity (with its retry policy), lib/trading/candle-io.ts's executeIntents
 * (client order id looked up before sending), the real ccxt `binance` client behind our adapter
 * and its resilience policy (retries with backoff, breaker), with API keys, against the local
 * Binance stand-in (as DRY_RUN=false with EXCHANGE_API_URL builds it; only the timeout and the
 * rate limiter are the test's, to keep minutes short).
 *
 * Candles come from memory as in a replay (the stand-in's clock follows the candle being
 * decided on, so market orders fill at its close), so the only difference between two runs is
 * the exchange's behaviour: one run fault-free, one with about 30 % of all calls failing
 * (timeouts whose request was carried out, 429s, 5xx before and after carrying it out, answers
 * lost after the order was accepted). Both must end with exactly the same orders on the
 * exchange, once each, and the same ledger. Permanent refusals (insufficient funds, an invalid
 * order) are sent once, never retried, and recorded as rejected orders.
 */

const M = 60_000;
const SYMBOL = 'FLT/USDT';
const N = 700;
// A generated market on which the rules strategy trades 6 times over N one-minute candles.
const CANDLES = sampledMarketCandles(SYMBOL, M, Date.UTC(2025, 3, 1), N, 6);
const KEY = 'faults-api-key-0001';
const SECRET = 'faults-secret-0001';
const CLIENT_TIMEOUT_MS = 1000;
const quiet = createLogger({ level: 'silent' });

/** The adapter with the stand-in's clock set to the activity's (the close of the candle being processed) before every call. */
function onStandinClock(adapter: ExchangeAdapter, standin: ExchangeStandin, clock: (() => number) | null): ExchangeAdapter {
  return new Proxy(adapter, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (clock) standin.now = Math.max(standin.now, clock());
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

interface Run {
  standin: ExchangeStandin;
  resilience: ExchangeResilience;
  orders: Awaited<ReturnType<typeof ledgerOrders>>;
  trades: string[];
  /** executeIntents activities that Temporal ran more than once (attempt > 1 when it last started). */
  activityRetries: number;
  decisions: number;
  /** The ledger's rejected orders and why. */
  rejections: Array<{ clientOrderId: string; reason: string }>;
}

async function tradeAgainstStandin(env: TestWorkflowEnvironment, standinOpts: Omit<StandinOptions, 'markets' | 'apiKey'>, script?: (s: ExchangeStandin) => void): Promise<Run> {
  const standin = await ExchangeStandin.start({ markets: [{ candles: CANDLES, symbol: SYMBOL, timeframe: '1m' }], apiKey: KEY, ...standinOpts, now: CANDLES[0].timestamp });
  script?.(standin);
  // One resilience per run (the process-wide one is shared by every test in this process).
  const resilience = new ExchangeResilience('binance', { maxRetries: 3, initialDelayMs: 50, maxDelayMs: 800, breakerThreshold: 12, halfOpenAfterMs: 1000 }, quiet);
  const adapter = CcxtExchangeAdapter.create(
    { exchangeId: 'binance', apiKey: KEY, secret: SECRET, apiUrl: standin.url, timeoutMs: CLIENT_TIMEOUT_MS, rateLimitMs: 1, ccxtOptions: { fetchMarkets: { types: ['spot'] } } },
    { resilience, now: () => standin.now, log: quiet },
  );
  const venue: Venue = {
    mode: 'replay',
    exchangeId: 'binance',
    adapter: (clock) => onStandinClock(adapter, standin, clock),
    replayCandles: () => CANDLES,
  };
  // Same workflow id in every run (ids of orders derive from it), fresh database each time.
  const h = await tradingHarness(env, { venue: () => venue, symbols: [SYMBOL], timeframe: '1m', featureSource: new ReplayMarketData().addCandles(SYMBOL, '1m', CANDLES), exchange: 'standin', account: `standin-${Date.now()}` });
  try {
    const result = await h.withWorker(async () => {
      const handle = await env.client.workflow.start('symbolTraderWorkflow', { taskQueue: h.taskQueue, workflowId: h.workflowId(SYMBOL), args: [h.symbolInput(SYMBOL)] });
      return (await handle.result()) as { decisions: number };
    });
    let activityRetries = 0;
    for await (const wf of env.client.workflow.list({ query: `WorkflowId = '${h.workflowId(SYMBOL)}'` })) {
      for (const e of await historyEvents(env.client, wf.workflowId, wf.runId)) if ((e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1) activityRetries++;
    }
    const rejections = await h.db.sql<Run['rejections']>`select client_order_id as "clientOrderId", status_reason as reason from orders where status = 'rejected' order by id`;
    return { standin, resilience, orders: await ledgerOrders(h.db.sql), trades: (await ledgerTrades(h.db.ledger)).map(tradeKey), activityRetries, decisions: result.decisions, rejections: [...rejections] };
  } finally {
    await h.close();
  }
}

const orderFacts = (s: ExchangeStandin) => s.allOrders().map((o) => [o.clientOrderId, o.side, o.type, o.status, o.origQty, o.executedQty].join(' '));
const postsById = (s: ExchangeStandin) => {
  const n = new Map<string, number>();
  for (const r of s.requests) if (r.method === 'POST' && r.path === '/api/v3/order') n.set(r.query.newClientOrderId, (n.get(r.query.newClientOrderId) ?? 0) + 1);
  return n;
};

describe('exchange faults: the real order path against a failing exchange places every order exactly once', function () {
  this.timeout(20 * 60_000); // real order paths against a failing exchange stand-in, with the retry back-off of each fault
  let env: TestWorkflowEnvironment;
  let clean: Run;
  let faulty: Run;

  before(async () => {
    env = await sharedDevServerEnv();
    clean = await tradeAgainstStandin(env, { balances: { USDT: '10000' } });
    faulty = await tradeAgainstStandin(env, { balances: { USDT: '10000' }, randomFaults: { rate: 0.3, seed: 11, timeoutMs: CLIENT_TIMEOUT_MS + 500 } }, (s) => {
      // Besides the random ones, for certain: the first orders' answers are lost after the exchange took them.
      s.inject({ path: '/api/v3/order', method: 'POST', times: 2, fault: { kind: 'lose-response' } });
      s.inject({ path: '/api/v3/order', method: 'POST', skip: 2, times: 1, fault: { kind: 'late-answer', ms: CLIENT_TIMEOUT_MS + 500 } });
      s.inject({ path: '/api/v3/order', method: 'DELETE', times: 1, fault: { kind: 'lose-response' } });
    });
  });
  after(async () => {
    await clean?.standin.close();
    await faulty?.standin.close();
    await env?.teardown();
  });

  it('the fault-free run trades: entries, protective orders, exits and cancels', () => {
    const types = new Set(clean.standin.allOrders().map((o) => `${o.side} ${o.type} ${o.status}`));
    assert.ok(clean.trades.length >= 3, `trades: ${clean.trades.length}`);
    for (const t of ['BUY MARKET FILLED', 'SELL MARKET FILLED', 'SELL STOP_LOSS CANCELED', 'SELL LIMIT CANCELED']) assert.ok(types.has(t), `no ${t} among ${[...types].join(', ')}`);
    assert.equal(clean.resilience.stats.retries, 0, 'no retries without faults');
  });

  it('about 30 % of the calls failed, every kind of fault among them, and the client retried them with backoff', () => {
    const calls = faulty.standin.requests.length;
    const counts = faulty.standin.randomFaultCounts();
    const random = Object.values(counts).reduce((a, b) => a + b, 0);
    assert.ok(random / calls > 0.2 && random / calls < 0.4, `random faults ${random} of ${calls} calls`);
    for (const k of RANDOM_FAULT_KINDS) assert.ok(counts[k] > 0, `no ${k} fault was drawn: ${JSON.stringify(counts)}`);
    const lostAfterAccepted = faulty.standin.requests.filter((r) => r.method === 'POST' && r.path === '/api/v3/order' && ['lose-response', 'late-answer', 'status-after'].includes(r.faulted ?? '')).length;
    assert.ok(lostAfterAccepted >= 3, `orders whose answer was lost after the exchange took them: ${lostAfterAccepted}`);

    const { retries, attempts, recentRetryDelaysMs } = faulty.resilience.stats;
    assert.ok(retries >= random * 0.8, `retries ${retries} for ${random} random faults (attempts ${attempts})`);
    // Half jitter over 50 ms doubling to 800 ms: a retry waits at least 25 ms, a later one of the same call at least twice that.
    assert.ok(recentRetryDelaysMs.every((d) => d >= 25 && d <= 800), `delays ${recentRetryDelaysMs.map(Math.round).join(', ')}`);
    assert.ok(recentRetryDelaysMs.some((d) => d >= 50), `no second retry of one call among ${recentRetryDelaysMs.map(Math.round).join(', ')}`);
    console.log(`      ${calls} calls, ${random} random faults ${JSON.stringify(counts)}, ${lostAfterAccepted} order answers lost after acceptance; ${retries} client retries (${attempts} attempts), ${faulty.activityRetries} executeIntents activities retried by Temporal`);
  });

  it('every order landed exactly once, and the exchange and the ledger hold what the fault-free run made', () => {
    const ids = faulty.standin.allOrders().map((o) => o.clientOrderId);
    assert.equal(new Set(ids).size, ids.length, 'one order per client order id on the exchange');
    assert.deepEqual(orderFacts(faulty.standin), orderFacts(clean.standin), 'the same orders, in the same order, with the same outcome');
    for (const [id, n] of postsById(faulty.standin)) if (n > 1) assert.equal(ids.filter((x) => x === id).length, 1, `${id} was sent ${n} times and is on the exchange once`);
    assert.deepEqual(faulty.trades, clean.trades, 'the same closed trades in the ledger');
    assert.deepEqual(faulty.orders.map((o) => [o.clientOrderId, o.side, o.type, o.status]), clean.orders.map((o) => [o.clientOrderId, o.side, o.type, o.status]));
    assert.equal(faulty.decisions, clean.decisions);
  });

  describe('permanent refusals', () => {
    it('an invalid order and insufficient funds are sent once, not retried, and recorded as rejected; trading goes on', async () => {
      // The first entry is refused as invalid; every later one for want of funds (an entry costs ~500 USDT).
      const run = await tradeAgainstStandin(env, { balances: { USDT: '300' } }, (s) =>
        s.inject({ path: '/api/v3/order', method: 'POST', times: 1, fault: { kind: 'status', status: 400, body: '{"code":-1013,"msg":"Filter failure: LOT_SIZE"}' } }),
      );
      try {
        const r = run.rejections;
        assert.ok(r.length >= 2, `rejected orders: ${JSON.stringify(run.orders.map((o) => [o.clientOrderId, o.status]))}`);
        assert.match(r[0].reason, /LOT_SIZE/, 'the invalid order, with the exchange\'s reason');
        for (const x of r.slice(1)) assert.match(x.reason, /insufficient balance/i);
        assert.ok(r.every((x) => x.clientOrderId.endsWith('-en')), 'entries');
        const posts = postsById(run.standin);
        for (const x of r) assert.equal(posts.get(x.clientOrderId), 1, `${x.clientOrderId} was sent ${posts.get(x.clientOrderId)} times`);
        assert.equal(run.resilience.stats.retries, 0, 'a permanent error is not retried by the client');
        assert.equal(run.activityRetries, 0, 'nor by Temporal');
        assert.equal(run.standin.allOrders().length, 0, 'nothing was placed');
        assert.deepEqual(run.trades, []);
        console.log(`      ${r.length} refused entries, each sent once and recorded as rejected: ${r[0].reason}; ${r[1].reason}`);
      } finally {
        await run.standin.close();
      }
    });
  });
});

