import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { WorkflowUpdateFailedError, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { ExchangeAdapter, MarketDataSource, OrderRequest } from '../../lib/exchange/types';
import type { PrepareResult, Venue } from '../../activities/trading';
import { timeframeToMs, type Candle } from '../../lib/candles';
import { FEATURE_SCHEMA } from '../../lib/features';
import { emergencyCloseUpdate, lastDecisionQuery, pauseSignal, reloadModelSignal, resumeSignal, stateQuery } from '../../workflows/messages';
import { TradingStatusKey } from '../../lib/contracts/search-attributes';
import type { symbolTraderWorkflow } from '../../workflows/symbol-trader';
import {
  eventMs,
  historyEvents,
  ledgerOrders,
  ledgerTrades,
  localActivityMarker,
  runChain,
  tradeKey,
  tradingHarness,
  tradingTimeSkippingEnv,
  tradingTmpDir,
  truncatedCandleFiles,
  type TradeRow,
  type TradingHarness,
} from '../../testkit/trading';
import { readCandleCsv } from '../../infra/candle-files';
import { replayVenue, type ReplayVenue } from '../../activities/trading/venue';
import { testLog } from '../../testkit/db';
import { sharedDevServerEnv } from '../../testkit/temporal';
import { SineWaveMarket } from '../../testkit/candles';
import { PaperExchange } from '../../lib/exchange/paper-exchange';
import type { PaperStateStore } from '../../lib/exchange/paper-state';
import { spotMarket, StaticMarketCatalog } from '../../lib/exchange/markets';
import type { MessageOrigin, SymbolStateView } from '../../lib/contracts/trading';
import { runBacktest } from '../../backtester/run';

/**
 * SymbolTraderWorkflow with its real activities (paper exchange and ledger on PostgreSQL,
 * feature cache) over the first 700 recorded BTC/USDT hours, on the time-skipping test server.
 * The first decision is on candle FEATURE_SCHEMA.warmup, so a run decides ~200 candles and trades
 * about five times; the backtester over the same file says which trades, and the tests steer the
 * workflow to the candles where those trades happen.
 */

const SYMBOL = 'BTC/USDT';
const ROWS = 700;
const CAPITAL = 10_000;
const W = FEATURE_SCHEMA.warmup;
const by: MessageOrigin = { by: 'test:symbol-trader', reason: 'test' };

type Handle = WorkflowHandleWithFirstExecutionRunId<typeof symbolTraderWorkflow>;

function backtestRows(trades: Awaited<ReturnType<typeof runBacktest>>['trades']): TradeRow[] {
  return trades.map((t) => ({ symbol: t.symbol, qty: t.qty, entryTime: t.entryTime, entryPrice: t.entryPrice, exitTime: t.exitTime, exitPrice: t.exitPrice, fees: t.fees, pnl: t.pnl, exitReason: t.exitReason }));
}

async function waitFor<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last seen: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('SymbolTraderWorkflow (time-skipping server, real activities over a replay venue)', function () {
  this.timeout(120_000); // a time-skipping server of its own (its clock is the file's) and real activities over a replay venue
  let env: TestWorkflowEnvironment;
  let dir: string;
  let files: string[];
  let candles: Candle[];
  let tfMs: number;
  let expected: TradeRow[];
  let h: TradingHarness | undefined;

  before(async () => {
    env = await tradingTimeSkippingEnv();
    dir = tradingTmpDir();
    files = truncatedCandleFiles(dir, [{ file: 'fixture_BTC-USDT_1h.csv', rows: ROWS }]);
    candles = readCandleCsv(files[0]).candles;
    tfMs = timeframeToMs('1h');
    expected = backtestRows((await runBacktest({ files, strategy: 'rules', initialCapital: CAPITAL })).trades);
    assert.ok(expected.length >= 4, `the backtest should trade on these ${ROWS} candles (got ${expected.length} trades)`);
  });
  after(async () => {
    await env?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  /** Index of the candle that closes at `closeTime`. */
  const candleClosingAt = (closeTime: number): number => {
    const i = candles.findIndex((c) => c.timestamp + tfMs === closeTime);
    assert.ok(i >= W, `no decision candle closes at ${new Date(closeTime).toISOString()}`);
    return i;
  };

  const start = (harness: TradingHarness, overrides: Parameters<TradingHarness['symbolInput']>[1] = {}): Promise<Handle> =>
    env.client.workflow.start<typeof symbolTraderWorkflow>('symbolTraderWorkflow', {
      workflowId: harness.workflowId(SYMBOL),
      taskQueue: harness.taskQueue,
      args: [harness.symbolInput(SYMBOL, overrides)],
    });

  /**
   * A replay at a speed factor sleeps one timer per candle, so skipping the test server's clock
   * by k timers makes the workflow decide exactly k more candles: this walks it to the moment
   * it has decided candle `index` (and nothing after it).
   */
  const stepTo = async (handle: Handle, timerMs: number, index: number): Promise<SymbolStateView> => {
    const now = await handle.query(stateQuery);
    const target = index - W + 1;
    assert.ok(target >= now.decisions, `cannot step back from decision ${now.decisions} to ${target}`);
    if (target > now.decisions) await env.sleep((target - now.decisions) * timerMs);
    const s = await waitFor('the step to finish', () => handle.query(stateQuery), (v) => v.decisions >= target);
    assert.equal(s.decisions, target, 'one candle per timer');
    assert.equal(s.lastCandleTime, candles[index].timestamp, 'the workflow decided the candle the timers lead to');
    return s;
  };

  const tradingStatusAttribute = async (handle: Handle): Promise<string | undefined> => (await handle.describe()).typedSearchAttributes.get(TradingStatusKey);

  it('replay at a speed factor: one durable timer of timeframe/speed per candle, and the backtest trades', async () => {
    h = await tradingHarness(env, { files, initialCapital: CAPITAL });
    const speed = 1800; // 1h candles -> a 2 s timer each
    const timerMs = tfMs / speed;
    const t0 = Date.now();
    const { result, events } = await h.withWorker(async () => {
      const handle = await start(h!, { speed });
      const result = await handle.result();
      return { result, events: await historyEvents(env.client, handle.workflowId, handle.firstExecutionRunId) };
    });
    const realMs = Date.now() - t0;

    const decisions = candles.length - W;
    assert.equal(result.decisions, decisions, 'one decision per candle after the warm-up');
    const timers = events.filter((e) => e.timerStartedEventAttributes);
    // One per candle, plus the one after which the data turned out to be exhausted.
    assert.equal(timers.length, decisions + 1, 'one durable timer per candle');
    for (const t of timers) assert.equal(tsToMs(t.timerStartedEventAttributes!.startToFireTimeout), timerMs, 'each timer lasts timeframe/speed');

    // Each fired timer is followed by exactly one candle read (the local activity's marker),
    // for the next recorded candle in order.
    const seen: number[] = [];
    let sinceTimer = -1;
    for (const e of events) {
      if (e.timerFiredEventAttributes) {
        assert.ok(sinceTimer === -1 || sinceTimer === 1, `one candle read per timer (saw ${sinceTimer})`);
        sinceTimer = 0;
      } else if (localActivityMarker(e)) {
        const { activityType, result: prep } = localActivityMarker<PrepareResult>(e)!;
        assert.equal(activityType, 'prepareCandle', 'the one local activity per candle reads it');
        sinceTimer++;
        if (prep?.input) seen.push(prep.input.candle.timestamp);
        else assert.equal(prep?.done, true, 'a read without a candle is the end of the data');
      }
    }
    assert.deepEqual(seen, candles.slice(W).map((c) => c.timestamp), 'the timers walk the recorded candles one by one');

    // The server's clock moved by every timer; the test did not wait for them.
    const simulated = eventMs(events[events.length - 1]) - eventMs(events[0]);
    assert.ok(simulated >= timers.length * timerMs, `server time covers every timer (${simulated} ms for ${timers.length} timers)`);
    assert.ok(realMs < simulated / 2, `time was skipped (real ${realMs} ms, simulated ${simulated} ms)`);

    assert.deepEqual((await ledgerTrades(h.db.ledger)).map(tradeKey), expected.map(tradeKey), 'a replay at a speed factor trades as the backtest');
  });

  it('pause: no new entries while protective exits still fill; resume: active again; TradingStatus follows', async () => {
    // A trade closed by its stop or target, and the next entry after it, from the backtest.
    const k = expected.findIndex((t, i) => (t.exitReason === 'take_profit' || t.exitReason === 'stop_loss') && expected[i + 1] !== undefined && expected[i + 1].entryTime > t.exitTime);
    assert.ok(k >= 0, 'the data has a protective exit followed by another entry');
    const [a, b] = [expected[k], expected[k + 1]];
    const iA = candleClosingAt(a.entryTime);
    const iB = candleClosingAt(b.entryTime);

    h = await tradingHarness(env, { files, initialCapital: CAPITAL });
    const speed = 36;
    const timerMs = tfMs / speed;
    await h.withWorker(async () => {
      const handle = await start(h!, { speed });
      const entered = await stepTo(handle, timerMs, iA);
      assert.ok(entered.position, 'the position of the backtest trade is open');
      assert.equal(await tradingStatusAttribute(handle), 'active', 'TradingStatus starts active');

      await handle.signal(pauseSignal, by);
      const paused = await waitFor('paused', () => handle.query(stateQuery), (s) => s.tradingStatus === 'paused');
      assert.match(paused.statusReason ?? '', /test:symbol-trader/, 'the status says who paused it');
      assert.equal(await waitFor('the search attribute', () => tradingStatusAttribute(handle), (v) => v === 'paused'), 'paused', 'TradingStatus = paused');
      const seqAtPause = paused.decisions;

      // Through the protective exit, to the candle where the backtest entered again.
      const atB = await stepTo(handle, timerMs, iB);
      assert.equal(atB.tradingStatus, 'paused', 'still paused');
      assert.equal(atB.position, null, 'the protective exit closed the position while paused');
      const closed = (await ledgerTrades(h!.db.ledger)).find((t) => t.entryTime === a.entryTime);
      assert.ok(closed, 'the paused symbol\'s trade is in the ledger');
      assert.equal(closed.exitReason, a.exitReason, 'closed by its resting stop or target');
      assert.equal(closed.exitTime, a.exitTime, 'at the candle the backtest says');
      const d = await handle.query(lastDecisionQuery);
      assert.equal(d?.candleTime, candles[iB].timestamp, 'the last decision is on the entry candle');
      assert.equal(d?.action, 'blocked', 'the entry the backtest made is blocked');
      assert.match(d?.reason ?? '', /paused/, 'because the symbol is paused');
      const entriesWhilePaused = (await ledgerOrders(h!.db.sql)).filter((o) => o.clientOrderId.endsWith('-en') && (o.decisionSeq ?? 0) > seqAtPause);
      assert.deepEqual(entriesWhilePaused, [], 'no entry order was placed while paused');

      await handle.signal(resumeSignal, by);
      const resumed = await waitFor('active', () => handle.query(stateQuery), (s) => s.tradingStatus === 'active');
      assert.equal(await waitFor('the search attribute', () => tradingStatusAttribute(handle), (v) => v === 'active'), 'active', 'TradingStatus = active');
      const result = await handle.result();
      assert.equal(result.decisions, candles.length - W, 'the replay ran to the end');
      const entriesAfter = (await ledgerOrders(h!.db.sql)).filter((o) => o.clientOrderId.endsWith('-en') && (o.decisionSeq ?? 0) > resumed.decisions);
      assert.ok(entriesAfter.length >= 1, 'entries are placed again after resume');
      assert.equal((await ledgerTrades(h!.db.ledger)).find((t) => t.entryTime === b.entryTime), undefined, 'the entry blocked by the pause never happened');
    });
  });

  it('emergency close: returns what it closed, leaves the symbol halted and flat; validators keep bad messages out of history', async () => {
    const a = expected[0];
    const iA = candleClosingAt(a.entryTime);
    h = await tradingHarness(env, { files, initialCapital: CAPITAL });
    const speed = 36;
    const timerMs = tfMs / speed;
    await h.withWorker(async () => {
      const handle = await start(h!, { speed });
      const open = await stepTo(handle, timerMs, iA);
      const pos = open.position;
      assert.ok(pos, 'a position is open');

      // Bad messages: refused by the validator before anything enters history.
      for (const bad of [{}, { by: '' }, { by: 'x'.repeat(101) }]) {
        await assert.rejects(
          handle.executeUpdate(emergencyCloseUpdate, { args: [bad as MessageOrigin] }),
          (err: unknown) => err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && /needs \{ by/.test(err.cause.message),
          `an emergency close without a valid 'by' (${JSON.stringify(bad).slice(0, 30)}) is rejected`,
        );
      }
      assert.ok((await handle.query(stateQuery)).position, 'a rejected update closed nothing');

      const res = await handle.executeUpdate(emergencyCloseUpdate, { args: [{ by: 'test:emergency', reason: 'test' }] });
      assert.equal(res.symbol, SYMBOL, 'the result names the symbol');
      assert.equal(res.tradingStatus, 'halted', 'the symbol is halted');
      assert.equal(res.canceledOrders, 2, 'the resting stop and target were canceled');
      assert.equal(res.closed.length, 1, 'one position closed');
      const [c] = res.closed;
      assert.equal(c.qty, pos.qty, 'the whole position was sold');
      assert.equal(c.entryPrice, pos.entryPrice, 'entry price reported');
      const close = candles[iA].close;
      assert.ok(Math.abs(c.exitPrice - close) <= close * 1e-9, `sold at market, the last close ${close} (got ${c.exitPrice})`);
      const fees = 0.001 * c.qty * (c.entryPrice + c.exitPrice);
      assert.ok(Math.abs(c.pnl - ((c.exitPrice - c.entryPrice) * c.qty - fees)) < 1e-6, `pnl is net of both fees (${c.pnl})`);
      assert.match(c.clientOrderId, /-em$/, 'the exit is the emergency order');

      const s = await handle.query(stateQuery);
      assert.equal(s.tradingStatus, 'halted', 'state says halted');
      assert.equal(s.position, null, 'state says flat');
      assert.equal(await waitFor('the search attribute', () => tradingStatusAttribute(handle), (v) => v === 'halted'), 'halted', 'TradingStatus = halted');
      const account = await h!.store.snapshot(`${h!.account}/${SYMBOL}`);
      assert.ok(account, 'the paper account exists');
      assert.equal(Number(account.balances.BTC ?? '0'), 0, 'the paper account holds no BTC');
      assert.deepEqual(account.orders.filter((o) => o.status === 'open'), [], 'no order is left working on the exchange');
      assert.deepEqual(await h!.db.ledger.openPositions(), [], 'the ledger has no open position');
      const t = (await ledgerTrades(h!.db.ledger)).find((x) => x.exitReason === 'emergency');
      assert.ok(t && Math.abs(t.qty - c.qty) < 1e-12, 'the ledger records the emergency exit');

      // Halted: no more candles are decided, and a second close has nothing to do.
      await env.sleep(5 * timerMs);
      assert.equal((await handle.query(stateQuery)).decisions, open.decisions, 'a halted symbol decides nothing');
      const again = await handle.executeUpdate(emergencyCloseUpdate, { args: [{ by: 'test:emergency' }] });
      assert.deepEqual(again.closed, [], 'nothing left to close');

      const events = await historyEvents(env.client, handle.workflowId);
      const accepted = events.filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes);
      assert.equal(accepted.length, 2, 'only the two valid updates entered history');
      await handle.terminate('test done');
    });
  });

  it('exactly-once: executeIntents failing after the exchange accepted the orders leaves one order per client order id', async () => {
    h = await tradingHarness(env, { files, initialCapital: CAPITAL });
    const real = h.activities.executeIntents;
    let injected = 0;
    // The worker "dies" after the exchange accepted and the ledger recorded: the first attempt of
    // every call runs for real, then fails; the retry must find what it placed.
    const crashing: typeof real = async (args) => {
      const report = await real(args);
      if (Context.current().info.attempt === 1) {
        injected++;
        throw ApplicationFailure.retryable('simulated crash after the exchange accepted the orders', 'SimulatedCrash');
      }
      return report;
    };
    const events = await h.withWorker(async () => {
      const handle = await start(h!, { speed: 'max' });
      await handle.result();
      return historyEvents(env.client, handle.workflowId);
    }, { executeIntents: crashing });

    const executes = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'executeIntents');
    assert.ok(injected >= 10, `every order batch failed once after being placed (${injected} failures)`);
    assert.equal(executes.length, injected, 'each batch was scheduled once and retried, not re-decided');
    const scheduled = new Set(executes.map((e) => String(e.eventId)));
    const attempts = events.filter((e) => scheduled.has(String(e.activityTaskStartedEventAttributes?.scheduledEventId))).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.ok(attempts.length === injected && attempts.every((n) => n === 2), `each batch completed on its second attempt (${attempts.join(',')})`);

    const account = await h.store.snapshot(`${h.account}/${SYMBOL}`);
    assert.ok(account, 'the paper account exists');
    const count = (ids: Array<string | undefined>) => ids.reduce((m, id) => m.set(id ?? '', (m.get(id ?? '') ?? 0) + 1), new Map<string, number>());
    const onExchange = count(account.orders.map((o) => o.clientOrderId));
    assert.deepEqual([...onExchange].filter(([, n]) => n > 1), [], 'no client order id was placed twice on the exchange');
    assert.deepEqual([...count(account.fills.map((f) => f.clientOrderId))].filter(([, n]) => n > 1), [], 'no order filled twice');
    const ledger = await ledgerOrders(h.db.sql);
    const sent = ledger.filter((o) => o.exchangeOrderId !== null).map((o) => o.clientOrderId).sort();
    assert.deepEqual(sent, [...onExchange.keys()].sort(), 'the ledger and the exchange hold the same orders, one row each');
    const [{ dup }] = await h.db.sql<{ dup: number }[]>`select count(*)::int as dup from (select order_id from fills group by order_id having count(*) > 1) d`;
    assert.equal(dup, 0, 'no order has two fills in the ledger');
    assert.deepEqual((await ledgerTrades(h.db.ledger)).map(tradeKey), expected.map(tradeKey), 'the trades are those of a run without failures');
  });

  it('exactly-once: a crash between the entry\'s fill and its stop, inside the one activity that places both, leaves one order per client order id', async () => {
    // The venue of the harness, except that the first attempt to place each stop dies: the
    // entry has filled and been recorded, its stop and target are not on the exchange yet.
    let replay: ReplayVenue | undefined;
    const crashedStops = new Set<string>();
    const venue = (store: PaperStateStore): Venue => {
      const rv = replayVenue({ files, store, account: 'crash-stop', initialCapital: CAPITAL, log: testLog });
      replay = rv;
      return {
        ...rv,
        adapter(clock, symbol) {
          const real = rv.adapter(clock, symbol);
          return Object.assign(Object.create(real) as ExchangeAdapter, {
            createOrder: async (req: OrderRequest) => {
              if (req.type === 'stop_market' && !crashedStops.has(req.clientOrderId)) {
                crashedStops.add(req.clientOrderId);
                throw new Error(`simulated worker crash before placing stop ${req.clientOrderId}`);
              }
              return real.createOrder(req);
            },
          });
        },
      };
    };
    const featureSource: MarketDataSource = { fetchCandles: (...a) => (replay as ReplayVenue).data.at(Number.MAX_SAFE_INTEGER).fetchCandles(...a) };
    h = await tradingHarness(env, { venue, featureSource, symbols: [SYMBOL], timeframe: '1h', initialCapital: CAPITAL });
    const events = await h.withWorker(async () => {
      const handle = await start(h!, { speed: 'max' });
      await handle.result();
      return historyEvents(env.client, handle.workflowId);
    });

    const entries = expected.length;
    assert.ok(crashedStops.size >= entries, `the first stop of every entry crashed (${crashedStops.size} crashes, ${entries} trades)`);
    const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'executeIntents');
    const inputs = scheduled.map((e) => JSON.parse(Buffer.from(e.activityTaskScheduledEventAttributes!.input!.payloads![0].data!).toString('utf8')) as { intents: Array<{ tag: string }> });
    assert.equal(inputs.filter((i) => i.intents.some((x) => x.tag === 'stop') && !i.intents.some((x) => x.tag === 'entry' || x.tag === 'cancel')).length, 0, 'no second activity placed the stop and target');
    const retried = events.filter((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1).length;
    assert.ok(retried >= entries, `the activity that crashed was retried, not re-decided (${retried} retries)`);

    const account = await h.store.snapshot(`crash-stop/${SYMBOL}`);
    assert.ok(account, 'the paper account exists');
    const count = (ids: Array<string | undefined>) => ids.reduce((m, id) => m.set(id ?? '', (m.get(id ?? '') ?? 0) + 1), new Map<string, number>());
    assert.deepEqual([...count(account.orders.map((o) => o.clientOrderId))].filter(([, n]) => n > 1), [], 'no client order id was placed twice');
    assert.deepEqual([...count(account.fills.map((f) => f.clientOrderId))].filter(([, n]) => n > 1), [], 'no order filled twice');
    assert.ok(account.orders.filter((o) => o.clientOrderId?.endsWith('-st')).length >= entries, 'every entry got its stop');
    const ledger = await ledgerOrders(h.db.sql);
    assert.deepEqual(ledger.filter((o) => o.exchangeOrderId !== null).map((o) => o.clientOrderId).sort(), account.orders.map((o) => o.clientOrderId).sort(), 'the ledger and the exchange hold the same orders');
    assert.deepEqual((await ledgerTrades(h.db.ledger)).map(tradeKey), expected.map(tradeKey), 'the trades are those of a run without the crash');
  });

  it('continue-as-new keeps a model reload asked for in the middle of a candle step', async () => {
    // Up to a little after the first entry, so the chain (one run per candle) ends by itself:
    // terminating a workflow in the middle of a workflow task left the test server unable to
    // skip time for the rest of the suite (observed).
    const shortDir = path.join(dir, 'short');
    fs.mkdirSync(shortDir, { recursive: true, mode: 0o755 });
    const short = truncatedCandleFiles(shortDir, [{ file: 'fixture_BTC-USDT_1h.csv', rows: candleClosingAt(expected[0].entryTime) + 8 }]);
    h = await tradingHarness(env, { files: short, initialCapital: CAPITAL });
    const realExecute = h.activities.executeIntents;
    const realPrepare = h.activities.prepareCandle;
    let signalled = false;
    const asked: Array<{ reload: boolean; version?: string }> = [];
    // The operator's reloadModel arrives while the first orders are being placed; the run then
    // continues as new right after that candle (threshold 1: after every candle).
    const execute: typeof realExecute = async (args) => {
      const report = await realExecute(args);
      if (!signalled) {
        signalled = true;
        await env.client.workflow.getHandle(args.workflowId).signal(reloadModelSignal, { by: 'test:reload', version: 'v-test' });
      }
      return report;
    };
    const prepare: typeof realPrepare = async (args) => {
      if (signalled) asked.push({ reload: args.reloadModel, version: args.requestedModelVersion });
      return realPrepare(args);
    };
    await h.withWorker(
      async () => {
        const handle = await start(h!, { speed: 'max', continueAsNewAfterEvents: 1 });
        await handle.result();
      },
      { executeIntents: execute, prepareCandle: prepare },
    );
    assert.ok(signalled && asked.length >= 2, `orders were placed and candles read after them (${asked.length})`);
    assert.deepEqual(asked[0], { reload: true, version: 'v-test' }, 'the next candle read after continue-as-new asks for the requested model');
    assert.equal(asked[1].reload, false, 'and only that one');
  });

  it('a pause signalled while the entry is being placed holds after that candle step (the step does not overwrite it)', async () => {
    // Up to a little after the first entry, so the replay ends by itself (see the test above).
    const shortDir = path.join(dir, 'pause-mid-step');
    fs.mkdirSync(shortDir, { recursive: true, mode: 0o755 });
    const short = truncatedCandleFiles(shortDir, [{ file: 'fixture_BTC-USDT_1h.csv', rows: candleClosingAt(expected[0].entryTime) + 8 }]);
    h = await tradingHarness(env, { files: short, initialCapital: CAPITAL });
    const realExecute = h.activities.executeIntents;
    let pausedAtSeq: number | null = null;
    // The operator's pause reaches the workflow while the entry order is on its way to the exchange.
    const execute: typeof realExecute = async (args) => {
      const report = await realExecute(args);
      const entry = args.intents.find((i) => i.tag === 'entry');
      if (entry && pausedAtSeq === null) {
        pausedAtSeq = (await h!.db.sql<{ seq: number }[]>`select decision_seq::int as seq from orders where client_order_id = ${entry.clientOrderId}`)[0].seq;
        await env.client.workflow.getHandle(args.workflowId).signal(pauseSignal, { by: 'test:pause-mid-step' });
      }
      return report;
    };
    const { state, status, events } = await h.withWorker(
      async () => {
        const handle = await start(h!, { speed: 'max' });
        await handle.result();
        return { state: await handle.query(stateQuery), status: await tradingStatusAttribute(handle), events: await historyEvents(env.client, handle.workflowId) };
      },
      { executeIntents: execute },
    );
    assert.ok(pausedAtSeq !== null, 'an entry was placed and the pause sent during it');
    assert.equal(state.tradingStatus, 'paused', 'still paused after the step and to the end of the data');
    assert.match(state.statusReason ?? '', /test:pause-mid-step/);
    assert.equal(status, 'paused', 'TradingStatus agrees with the state');
    const entries = (await ledgerOrders(h.db.sql)).filter((o) => o.clientOrderId.endsWith('-en'));
    assert.deepEqual(entries.map((o) => o.decisionSeq), [pausedAtSeq], 'no entry after the pause');
    const patchIds = events
      .filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
      .map((e) => (JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details!['patch-data']!.payloads![0].data!).toString('utf8')) as { id: string }).id);
    // A run of the current code marks its patches once, at its start (workflows/patches.ts): this one among them.
    assert.deepEqual(patchIds, ['patches-at-start'], 'the run is marked as taking the patches, once, and no patch is marked where it applies');
  });

  it('continue-as-new: a chain of small runs ends with the decisions and trades of one run', async () => {
    h = await tradingHarness(env, { files, initialCapital: CAPITAL });
    const threshold = 200;
    const { result, runs } = await h.withWorker(async () => {
      const handle = await start(h!, { speed: 3600, continueAsNewAfterEvents: threshold });
      const result = await handle.result();
      return { result, runs: await runChain(env.client, handle.workflowId, handle.firstExecutionRunId) };
    });
    assert.ok(runs.length >= 4, `the workflow continued as new several times (${runs.length} runs)`);
    for (const [i, r] of runs.entries()) {
      const last = r.events[r.events.length - 1];
      if (i < runs.length - 1) assert.ok(last.workflowExecutionContinuedAsNewEventAttributes, `run ${i + 1} ends by continuing as new`);
      else assert.ok(last.workflowExecutionCompletedEventAttributes, 'the last run completes');
      // A run checks after each candle: one candle step (<= ~20 events) past the threshold at most.
      assert.ok(r.events.length <= threshold + 30, `run ${i + 1} has ${r.events.length} events (threshold ${threshold})`);
    }
    assert.equal(result.decisions, candles.length - W, 'decisions counted across runs');
    assert.equal(result.tradesClosed, expected.length, 'trades counted across runs');
    const pnl = expected.reduce((s, t) => s + t.pnl, 0);
    assert.ok(Math.abs(result.realizedPnl - pnl) < 1e-6, `realized PnL carried across runs (${result.realizedPnl} vs ${pnl})`);
    assert.deepEqual((await ledgerTrades(h.db.ledger)).map(tradeKey), expected.map(tradeKey), 'the same trades as one uninterrupted run');
  });
});

describe('SymbolTraderWorkflow in paper mode (wall clock)', function () {
  this.timeout(60_000); // real timers on the wall clock, on the shared dev server
  // A dev server: real timers on the machine's clock, the clock the paper venue and the prepare
  // activity read (the time-skipping server keeps a clock of its own, and a timer of it was seen
  // firing 674 ms before its due time by the process clock).
  let env: TestWorkflowEnvironment;
  let h: TradingHarness | undefined;
  before(async () => {
    env = await sharedDevServerEnv();
  });
  after(async () => {
    await env?.teardown();
  });
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('paper mode: sleeps to each candle close + candleDelayMs and decides on the candle that just closed', async function () {
    // Live timing needs market data that follows the clock: synthetic 1 s candles, published at
    // their close, and the paper exchange on them. Nothing is skipped here: the prepare activity
    // reads the process clock, so the workflow's timers must be real ones too.
    // 2 s candles: a loaded machine can take more than a second between a timer firing and the
    // read it wakes (1 s candles then read the next candle and this test failed on load alone).
    const tf = '2s';
    const tf1 = timeframeToMs(tf);
    const delay = 200;
    const market = new SineWaveMarket(Date.now);
    const venue = (store: PaperStateStore): Venue => ({
      mode: 'paper',
      exchangeId: 'paper',
      adapter: (_clock, symbol = 'SYN/USDT') =>
        new PaperExchange({ account: `paper-test/${symbol}`, store, marketData: market, markets: new StaticMarketCatalog([spotMarket(symbol)]), timeframe: tf, initialBalances: { USDT: CAPITAL } }),
    });
    h = await tradingHarness(env, { venue, featureSource: market, symbols: ['SYN/USDT'], timeframe: tf, initialCapital: CAPITAL });
    const events = await h.withWorker(async () => {
      const handle = await env.client.workflow.start<typeof symbolTraderWorkflow>('symbolTraderWorkflow', {
        workflowId: h!.workflowId('SYN/USDT'),
        taskQueue: h!.taskQueue,
        args: [h!.symbolInput('SYN/USDT', { candleDelayMs: delay })],
      });
      await waitFor('five decisions', () => handle.query(stateQuery), (s) => s.decisions >= 5, 40_000);
      await handle.terminate('test done');
      return historyEvents(env.client, handle.workflowId);
    });

    for (const e of events.filter((x) => x.timerStartedEventAttributes)) {
      const d = tsToMs(e.timerStartedEventAttributes!.startToFireTimeout);
      assert.ok(d > 0 && d <= tf1 + delay, `a timer sleeps at most one candle plus the delay (${d} ms)`);
    }
    // Each timer is followed by the read of one candle: the one that had just closed when the
    // timer fired, and the next one after the previous read (none skipped, none read twice).
    const reads: Array<{ firedAt: number; candle: number }> = [];
    let firedAt: number | null = null;
    for (const e of events) {
      if (e.timerFiredEventAttributes) firedAt = eventMs(e);
      const prep = localActivityMarker<PrepareResult>(e)?.result;
      if (prep?.input && firedAt !== null) reads.push({ firedAt, candle: prep.input.candle.timestamp });
    }
    assert.ok(reads.length >= 3, `the workflow slept between candles (${reads.length} candles read after a timer)`);
    for (let i = 1; i < reads.length; i++) {
      // Due: the close of the candle after the one read before, plus the delay.
      const due = reads[i - 1].candle + 2 * tf1 + delay;
      const late = reads[i].firedAt - due;
      // Never early (the exchange may not have published the candle), and late only by the
      // server's and the worker's latency: the timer is computed from when the read returned.
      assert.ok(late >= 0 && late < 0.7 * tf1, `a timer fires at the candle's close + ${delay} ms (fired ${late} ms after that)`);
      assert.equal(reads[i].candle - reads[i - 1].candle, tf1, 'consecutive candles, none skipped');
    }
  });
});
