import assert from 'node:assert/strict';
import { FEATURE_SCHEMA, featureIndex } from '../../lib/features';
import { REGIMES } from '../../lib/regime';
import type { Candle } from '../../lib/candles';
import { engineConfig, runCandleStep, settle, type EngineFill, type ExecutionReport, type OrderIntent, type PreparedCandle, type StepPorts } from '../../lib/engine';
import type { Log } from '../../lib/log';
import { assertMessageOrigin, InvalidMessageError, type MessageOrigin } from '../../lib/contracts/trading';
import type { SymbolTraderInput } from '../../lib/contracts/workflows';
import { SymbolTrader, type CandleRead } from '../../lib/trading/symbol-trader';
import { continueAsNewDue, DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS } from '../../lib/trading/continue-as-new';

/**
 * SymbolTrader (lib/trading/symbol-trader.ts) without a Temporal server: the state
 * SymbolTraderWorkflow keeps, its query view and UI details, status changes, the candle wait, the
 * alerts of a step, model reloads and what a new run carries. Candle steps run through the real
 * engine (lib/engine runCandleStep and settle); the exchange is a few lines below that fills
 * market orders at the candle's close and rests stops and targets.
 */

const HOUR = 3_600_000;
const T0 = Date.UTC(2024, 0, 1);
const SYMBOL = 'BTC/USDT';
const WORKFLOW_ID = 'trader/binance/BTC/USDT';
const op: MessageOrigin = { by: 'test:operator', reason: 'test' };

function traderInput(over: Partial<SymbolTraderInput> = {}): SymbolTraderInput {
  return {
    symbol: SYMBOL,
    exchange: 'binance',
    account: 'paper-binance',
    mode: 'paper',
    timeframe: '1h',
    timeframeMs: HOUR,
    engine: engineConfig({ symbol: SYMBOL, strategy: 'rules', risk: {}, timeframeMs: HOUR, sleeveCapital: 10_000, feeRate: 0.001 }),
    candleDelayMs: 5_000,
    ...over,
  };
}

interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string;
  fields: Record<string, unknown>;
}
function recordingLog(lines: LogLine[]): Log {
  const at = (level: LogLine['level']) => (fields: object, msg?: string) => void lines.push({ level, msg: msg ?? '', fields: fields as Record<string, unknown> });
  const log: Log = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return log;
}

/** A feature vector the rules read as an uptrend with momentum (they enter on it); `exit` turns it bearish. */
function features(exit = false): number[] {
  const v = new Array<number>(FEATURE_SCHEMA.width).fill(0);
  const set = (name: string, x: number) => (v[featureIndex(name)] = x);
  set('ema_gap_20', exit ? -0.005 : 0.01);
  set('ema_gap_50', 0.02);
  set('ema_gap_100', 0.03);
  set('ema_slope_50_10', 0.001);
  set('adx_14', 28);
  set('di_plus_14', 30);
  set('di_minus_14', 12);
  set('rsi_14', exit ? 45 : 60);
  set('macd_hist_12_26_9', exit ? -0.001 : 0.001);
  set('atr_14', 200);
  set('atr_pct_14', 0.01);
  set('rvol_24', 0.008);
  set('rvol_pctile_24_480', 0.4);
  return v;
}

const candle = (i: number, close: number, o: Partial<Candle> = {}): Candle => ({ timestamp: T0 + i * HOUR, open: close, high: close * 1.002, low: close * 0.998, close, volume: 10, ...o });

/**
 * The other side of the ports: candle i's read (with the fills of resting orders the candle
 * touched) and an exchange that fills market orders at the last close and rests the others.
 */
class MiniVenue {
  resting: OrderIntent[] = [];
  last: Candle | null = null;
  reads: CandleRead[] = [];

  read(c: Candle | null, extra: Partial<CandleRead> = {}, exit = false): CandleRead {
    const fills: EngineFill[] = [];
    if (c) {
      for (const o of [...this.resting]) {
        const touched = (o.tag === 'stop' && c.low <= o.stopPrice!) || (o.tag === 'target' && c.high >= o.price!);
        if (touched) {
          const price = o.tag === 'stop' ? o.stopPrice! : o.price!;
          fills.push({ clientOrderId: o.clientOrderId, tag: o.tag, side: o.side, qty: o.qty, price, fee: o.qty * price * 0.001, time: c.timestamp + HOUR });
          this.resting = this.resting.filter((r) => r !== o);
        }
      }
      this.last = c;
    }
    const r: CandleRead = { done: false, fills, fillsSince: 0, problems: [], ...(c ? { input: { candle: c, features: features(exit), regime: { label: 'bull', confidence: 0.8, code: REGIMES.indexOf('bull') } } } : {}), ...extra };
    this.reads.push(r);
    return r;
  }

  execute(intents: OrderIntent[]): ExecutionReport {
    const out: ExecutionReport = { fills: [], orders: [], rejected: [] };
    const price = this.last!.close;
    for (const i of intents) {
      if (i.tag === 'cancel') {
        this.resting = this.resting.filter((r) => r.clientOrderId !== i.cancelClientOrderId);
        out.orders.push({ clientOrderId: i.cancelClientOrderId!, status: 'canceled', exchangeOrderId: 'x' });
      } else if (i.type === 'market') {
        out.fills.push({ clientOrderId: i.clientOrderId, tag: i.tag, side: i.side, qty: i.qty, price, fee: i.qty * price * 0.001, time: this.last!.timestamp + HOUR });
      } else {
        this.resting.push(i);
        out.orders.push({ clientOrderId: i.clientOrderId, status: 'open', exchangeOrderId: 'x' });
      }
    }
    return out;
  }
}

/** The workflow's ports over a MiniVenue, calling the trader as workflows/symbol-trader.ts does. */
function portsOf(trader: SymbolTrader, venue: MiniVenue, next: () => CandleRead, batches: Array<ReturnType<SymbolTrader['orderBatch']>> = []): StepPorts {
  return {
    prepare: async (cursor) => {
      trader.candleRead(cursor);
      const read = next();
      trader.candleReadDone(read);
      return read as PreparedCandle;
    },
    execute: async (intents) => {
      batches.push(trader.orderBatch(intents));
      return venue.execute(intents);
    },
    portfolio: () => trader.accountView(),
  };
}

async function step(trader: SymbolTrader, venue: MiniVenue, next: () => CandleRead, input = traderInput(), batches?: Array<ReturnType<SymbolTrader['orderBatch']>>) {
  const out = await runCandleStep(trader.state, trader.cursor, portsOf(trader, venue, next, batches), input.engine, trader.ctx);
  return { out, alerts: trader.stepped(out) };
}

/** Steps the trader into a long position on candle 1 at 20,000. */
async function entered(input = traderInput(), lines: LogLine[] = []) {
  const trader = new SymbolTrader(input, WORKFLOW_ID, recordingLog(lines));
  const venue = new MiniVenue();
  const first = await step(trader, venue, () => venue.read(candle(1, 20_000)), input);
  assert.equal(first.out.decision?.action, 'enter', first.out.decision?.reason);
  assert.ok(trader.state.position, 'a position is open');
  return { trader, venue, first };
}

describe('SymbolTrader: the symbol workflow\'s state and logic without a server', () => {
  it('a new trader is flat and active; its view and UI details say so', () => {
    const t = new SymbolTrader(traderInput(), WORKFLOW_ID, recordingLog([]));
    const v = t.view();
    assert.deepEqual(
      { workflowId: v.workflowId, symbol: v.symbol, exchange: v.exchange, mode: v.mode, strategy: v.strategy, status: v.tradingStatus, position: v.position, lastDecision: v.lastDecision, decisions: v.decisions, done: v.done },
      { workflowId: WORKFLOW_ID, symbol: SYMBOL, exchange: 'binance', mode: 'paper', strategy: 'rules', status: 'active', position: null, lastDecision: null, decisions: 0, done: false },
    );
    assert.equal(
      t.details(),
      ['**BTC/USDT** on binance, paper, strategy rules', 'Status: **active**', 'Position: flat', 'Last decision: none yet', 'Realized PnL: 0.00 over 0 trades; 0 decisions'].join('\n'),
    );
  });

  it('status changes: applied once with who and why, published once per change, and a signal without a valid origin is ignored with a warning', () => {
    const lines: LogLine[] = [];
    const t = new SymbolTrader(traderInput(), WORKFLOW_ID, recordingLog(lines));
    assert.equal(t.statusToPublish(), 'active', 'each run publishes its status once at start');
    assert.equal(t.statusToPublish(), null, 'and not again while it does not change');

    assert.equal(t.changeStatus('paused', op), true);
    assert.equal(t.status, 'paused');
    assert.equal(t.view().statusReason, 'test by test:operator');
    assert.deepEqual(lines.at(-1), { level: 'info', msg: 'trading status changed', fields: { symbol: SYMBOL, from: 'active', to: 'paused', by: 'test:operator', reason: 'test' } });
    assert.equal(t.changeStatus('paused', { by: 'someone-else' }), false, 'already paused: no change');
    assert.equal(t.view().statusReason, 'test by test:operator', 'the reason of the change that happened stays');
    assert.equal(t.statusToPublish(), 'paused');
    assert.equal(t.statusToPublish(), null);
    assert.match(t.details(), /Status: \*\*paused\*\* \(test by test:operator\)/);

    assert.equal(t.changeStatus('reduce-only', { by: 'cli:me' }), true);
    assert.equal(t.view().statusReason, 'requested by cli:me', 'no reason given');
    assert.equal(t.changeStatus('active', op), true);
    // Pause then resume between two publishes: the status published is unchanged, so no upsert.
    assert.equal(t.statusToPublish(), 'active');
    t.changeStatus('paused', op);
    t.changeStatus('active', op);
    assert.equal(t.statusToPublish(), null, 'back where the search attribute already is');

    const warnings = lines.filter((l) => l.level === 'warn').length;
    for (const bad of [undefined, {}, { by: '' }, { by: 'x'.repeat(101) }, { by: 42 }, { by: 'ok', reason: 7 }]) {
      assert.equal(t.changeStatus('halted', bad as unknown as MessageOrigin), false, `${JSON.stringify(bad)} is ignored`);
      assert.equal(t.status, 'active');
    }
    assert.equal(lines.filter((l) => l.level === 'warn').length, warnings + 6, 'each ignored signal is logged');
    assert.match(lines.at(-1)!.msg, /without a valid origin/);
  });

  it('update validators: assertMessageOrigin refuses what the signal handlers ignore, with a clear message', () => {
    for (const bad of [undefined, null, {}, { by: '' }, { by: 'x'.repeat(101) }, { by: 1 }, { by: 'a', reason: {} }]) {
      assert.throws(() => assertMessageOrigin(bad), (e: unknown) => e instanceof InvalidMessageError && /needs \{ by: "<who>" \} \(1-100 characters\)/.test(e.message), JSON.stringify(bad));
    }
    assert.doesNotThrow(() => assertMessageOrigin({ by: 'telegram:42' }));
    assert.doesNotThrow(() => assertMessageOrigin({ by: 'x'.repeat(100), reason: 'why', symbol: 'BTC/USDT' }), 'other fields of a message are its own business');
  });

  it('waits for each candle: timeframe/speed in replay, the close + delay live, none at "max"', () => {
    const now = T0 + 10 * HOUR + 123_000; // 2 min into the candle that opened at 10:00
    assert.equal(new SymbolTrader(traderInput({ mode: 'replay', speed: 1800 }), WORKFLOW_ID, recordingLog([])).msToNextCandle(now), 2_000);
    assert.equal(new SymbolTrader(traderInput({ mode: 'replay', speed: 1e9 }), WORKFLOW_ID, recordingLog([])).msToNextCandle(now), 1, 'at least 1 ms');
    assert.equal(new SymbolTrader(traderInput({ mode: 'replay', speed: 'max' }), WORKFLOW_ID, recordingLog([])).msToNextCandle(now), null);
    assert.equal(new SymbolTrader(traderInput({ mode: 'replay' }), WORKFLOW_ID, recordingLog([])).msToNextCandle(now), null);

    const live = new SymbolTrader(traderInput({ mode: 'live', candleDelayMs: 5_000 }), WORKFLOW_ID, recordingLog([]));
    assert.equal(live.msToNextCandle(now), null, 'first read, past the delay: the candle that closed at 10:00 is read at once');
    assert.equal(live.msToNextCandle(T0 + 10 * HOUR + 2_000), 3_000, 'first read, within the delay: until 10:00 + the delay');
    live.cursor = { after: T0 + 9 * HOUR, fillsSince: 0 };
    assert.equal(live.msToNextCandle(now), T0 + 11 * HOUR + 5_000 - now, 'after reading the 09:00 candle: the 10:00 candle closes at 11:00');
    live.cursor = { after: T0 + 8 * HOUR, fillsSince: 0 };
    assert.equal(live.msToNextCandle(now), null, 'a candle already due: no sleep');
  });

  it('times the next candle from when the read returned: the workflow clock stands still during the task that ran it', () => {
    const trader = new SymbolTrader(traderInput({ mode: 'paper', candleDelayMs: 5_000 }), WORKFLOW_ID, recordingLog([]));
    const taskStart = T0 + 11 * HOUR + 5_000; // the 10:00 candle is due: read it
    trader.candleRead({ after: T0 + 9 * HOUR, fillsSince: 0 });
    const read = { done: false, fills: [], fillsSince: 0, problems: [], input: { candle: { timestamp: T0 + 10 * HOUR, open: 1, high: 1, low: 1, close: 1, volume: 1 }, features: [], regime: { label: 'sideways' as const, confidence: 0, code: 0 } }, readAt: taskStart + 1_800 };
    trader.candleReadDone(read);
    trader.cursor = { after: T0 + 10 * HOUR, fillsSince: 0 };
    const due = T0 + 12 * HOUR + 5_000;
    assert.equal(trader.msToNextCandle(taskStart), due - (taskStart + 1_800), 'in the task of the read (clock at its start): from when the read returned');
    assert.equal(trader.msToNextCandle(taskStart + 2_500), due - (taskStart + 2_500), 'in a later task (after placing orders): its own, later clock');
    const old = new SymbolTrader(traderInput({ mode: 'paper', candleDelayMs: 5_000 }), WORKFLOW_ID, recordingLog([]));
    old.candleRead({ after: T0 + 9 * HOUR, fillsSince: 0 });
    old.candleReadDone({ ...read, readAt: undefined });
    old.cursor = trader.cursor;
    assert.equal(old.msToNextCandle(taskStart), due - taskStart, 'a read recorded without the time (older histories) times as before');
  });

  it('a step that opens a position raises "opened" and fills the view; the stop filling later raises "closed" and counts the trade', async () => {
    const lines: LogLine[] = [];
    const { trader, venue, first } = await entered(traderInput(), lines);
    assert.equal(first.alerts.length, 1);
    const pos = trader.state.position!;
    assert.equal(first.alerts[0].key, `trade-opened/${pos.entryOrderId}`);
    assert.match(first.alerts[0].text, /^Opened LONG .* BTC\/USDT @ 20000 \(stop .*, target .*\) \[paper\]$/);

    const v = trader.view();
    assert.equal(v.decisions, 1);
    assert.deepEqual(v.lastDecision, first.out.decision);
    assert.equal(v.lastCandleTime, T0 + HOUR);
    assert.deepEqual(v.position, { symbol: SYMBOL, side: 'long', qty: pos.qty, entryPrice: 20_000, entryTime: pos.entryTime, stopPrice: pos.stopPrice, targetPrice: pos.targetPrice, markPrice: 20_000, unrealizedPnl: 0 });
    assert.ok(pos.stopPrice !== null && pos.stopPrice < 20_000, 'the stop rests below the entry');
    assert.match(trader.details(), new RegExp(`Position: LONG ${pos.qty} @ 20000 \\(stop ${pos.stopPrice}, target ${pos.targetPrice}, uPnL 0\\.00\\)`));
    assert.match(trader.details(), /Last decision: enter \(.*\) at 2024-01-01T01:00:00\.000Z/);

    // Holding on a higher close: nothing to announce; the mark moves.
    const hold = await step(trader, venue, () => venue.read(candle(2, 20_100)));
    assert.deepEqual(hold.alerts, [], 'holding raises nothing');
    assert.ok(Math.abs(trader.view().position!.unrealizedPnl! - 100 * pos.qty) < 1e-9);

    // A candle through the stop: the resting stop fills.
    const stop = pos.stopPrice!;
    const hit = await step(trader, venue, () => venue.read(candle(3, stop * 1.001, { low: stop * 0.99 })));
    assert.equal(hit.out.closed.length, 1);
    assert.equal(trader.state.position, null);
    assert.equal(hit.alerts.length, 1, 'one alert, the close (no new entry right after a stop-out)');
    assert.equal(hit.alerts[0].key, `trade-closed/${hit.out.closed[0].exitOrderId}`);
    assert.match(hit.alerts[0].text, /^Closed .* BTC\/USDT 20000 -> .*, PnL -.* \(stop_loss\) \[paper\]$/);
    assert.equal(trader.view().tradesClosed, 1);
    assert.ok(trader.view().realizedPnl < 0);
    assert.equal(trader.view().decisions, 3);
    assert.ok(lines.some((l) => l.msg === 'trade closed' && l.fields.exitReason === 'stop_loss'), 'the close is logged');
  });

  it('a status change that arrives while a step places orders is kept; workflows from before the fix replay as they ran', async () => {
    const input = traderInput();
    const run = async (keeps: boolean) => {
      const t = new SymbolTrader(input, WORKFLOW_ID, recordingLog([]));
      t.statusToPublish();
      const venue = new MiniVenue();
      const ports = portsOf(t, venue, () => venue.read(candle(1, 20_000)));
      const execute = ports.execute;
      let paused = false;
      ports.execute = async (intents, why, state) => {
        // The operator's pause lands while the entry is being placed (the signal handler runs, then publishes).
        if (!paused) paused = t.changeStatus('paused', op) && t.statusToPublish() === 'paused';
        return execute(intents, why, state);
      };
      const out = await runCandleStep(t.state, t.cursor, ports, input.engine, t.ctx);
      assert.ok(paused, 'the pause was taken while the step ran');
      assert.equal(out.state.tradingStatus, 'active', 'the step carries the status it started with');
      let asked = 0;
      t.stepped(out, () => (asked++, keeps));
      assert.equal(asked, 1, 'asked because the status changed during the step');
      assert.ok(t.state.position, 'the entry decided before the pause stands');
      return t;
    };
    const fixed = await run(true);
    assert.equal(fixed.status, 'paused', 'the pause holds after the step');
    assert.match(fixed.view().statusReason ?? '', /test:operator/);
    assert.equal(fixed.statusToPublish(), null, 'already published by the signal handler');

    const before = await run(false);
    assert.equal(before.status, 'active', 'before the fix the step overwrote the pause');
    assert.equal(before.statusToPublish(), null, 'and published nothing for it (the search attribute said paused)');
    assert.equal(before.changeStatus('paused', op), true);
    assert.equal(before.statusToPublish(), 'paused', 'a later pause is published as it was then');

    // A step during which nothing changed does not ask.
    const venue = new MiniVenue();
    let asked = 0;
    const out = await runCandleStep(fixed.state, fixed.cursor, portsOf(fixed, venue, () => venue.read(candle(2, 20_000))), input.engine, fixed.ctx);
    fixed.stepped(out, () => (asked++, true));
    assert.equal(asked, 0);
  });

  it('an order the exchange refuses is alerted once, by what it was for; workflows from before the alert replay without it', async () => {
    const refusing = (venue: MiniVenue, tag: OrderIntent['tag']) => (intents: OrderIntent[]): ExecutionReport => {
      const refused = intents.filter((i) => i.tag === tag);
      const out = venue.execute(intents.filter((i) => i.tag !== tag));
      return { ...out, rejected: refused.map((i) => ({ clientOrderId: i.clientOrderId, reason: 'InsufficientFundsError: Account has insufficient balance for requested action.' })) };
    };
    const run = async (tag: OrderIntent['tag'], alerts: boolean) => {
      const t = new SymbolTrader(traderInput(), WORKFLOW_ID, recordingLog([]));
      const venue = new MiniVenue();
      const ports = portsOf(t, venue, () => venue.read(candle(1, 20_000)));
      ports.execute = async (intents) => refusing(venue, tag)(intents);
      const out = await runCandleStep(t.state, t.cursor, ports, traderInput().engine, t.ctx);
      let asked = 0;
      const raised = t.stepped(out, undefined, () => (asked++, alerts));
      return { out, raised, asked };
    };

    const entry = await run('entry', true);
    assert.equal(entry.asked, 1);
    assert.equal(entry.out.state.position, null, 'no position without the entry');
    const [a] = entry.raised;
    assert.equal(entry.raised.length, 1, JSON.stringify(entry.raised));
    assert.deepEqual([a.severity, a.key], ['warning', `order-rejected/${entry.out.rejected[0].clientOrderId}`]);
    assert.match(a.text, /^Exchange refused the entry order dt[0-9a-f]{8}-[0-9a-z]+-en for BTC\/USDT: InsufficientFundsError: Account has insufficient balance.*Not retried; no position was opened\. \[paper\]$/);

    const stop = await run('stop', true);
    const stopAlert = stop.raised.find((x) => x.key.startsWith('order-rejected/'));
    assert.equal(stopAlert?.severity, 'critical', 'a position without its stop is critical');
    assert.match(stopAlert?.text ?? '', /refused the stop-loss order .*closed at market instead/);

    const before = await run('entry', false);
    assert.equal(before.asked, 1);
    assert.deepEqual(before.raised, [], 'the patch off: no alert, as those workflows ran');

    const plain = await run('cancel', true);
    assert.equal(plain.asked, 0, 'not asked when nothing was refused');
  });

  it('replay raises no alerts, executes orders at the candle\'s close, and ends "done" at the end of the data', async () => {
    const input = traderInput({ mode: 'replay', speed: 'max' });
    const trader = new SymbolTrader(input, WORKFLOW_ID, recordingLog([]));
    const venue = new MiniVenue();
    const batches: Array<ReturnType<SymbolTrader['orderBatch']>> = [];
    const s = await step(trader, venue, () => venue.read(candle(1, 20_000)), input, batches);
    assert.equal(s.out.decision?.action, 'enter');
    assert.deepEqual(s.alerts, [], 'no Telegram feed for replays');
    assert.ok(batches.length >= 2, 'entry, then stop and target');
    for (const b of batches) assert.deepEqual({ workflowId: b.workflowId, symbol: b.symbol, mode: b.mode, asOf: b.asOf }, { workflowId: WORKFLOW_ID, symbol: SYMBOL, mode: 'replay', asOf: T0 + 2 * HOUR });
    assert.equal(trader.orderBatch([]).asOf, T0 + 2 * HOUR, 'between steps (an emergency close): the last candle\'s close');

    const end = await step(trader, venue, () => venue.read(null, { done: true }), input);
    assert.equal(end.out.done, true);
    assert.equal(trader.view().done, true);
    assert.equal(trader.msToRetryLateCandle(), null);
    const r = trader.result();
    assert.deepEqual(r, { symbol: SYMBOL, decisions: 1, realizedPnl: 0, tradesClosed: 0, reason: 'end_of_data' });

    const live = new SymbolTrader(traderInput(), WORKFLOW_ID, recordingLog([]));
    assert.equal(live.orderBatch([]).asOf, null, 'live and paper orders execute on the exchange\'s own clock');
  });

  it('live: a candle not yet published makes the next wait a retry of max(5 s, delay)', async () => {
    const trader = new SymbolTrader(traderInput({ mode: 'live', candleDelayMs: 2_000 }), WORKFLOW_ID, recordingLog([]));
    const venue = new MiniVenue();
    await step(trader, venue, () => venue.read(null));
    assert.equal(trader.msToRetryLateCandle(), 5_000);
    const slow = new SymbolTrader(traderInput({ mode: 'live', candleDelayMs: 30_000 }), WORKFLOW_ID, recordingLog([]));
    await step(slow, venue, () => venue.read(null));
    assert.equal(slow.msToRetryLateCandle(), 30_000);
    await step(slow, venue, () => venue.read(candle(1, 20_000)));
    assert.equal(slow.msToRetryLateCandle(), null, 'the candle came: no retry');
  });

  it('model reload: the next candle read asks once; one asked for while a read runs waits for the next read', () => {
    const lines: LogLine[] = [];
    const t = new SymbolTrader(traderInput(), WORKFLOW_ID, recordingLog(lines));
    const venue = new MiniVenue();
    const cursor = { after: null, fillsSince: 0 };
    assert.deepEqual(
      t.candleRead(cursor),
      { workflowId: WORKFLOW_ID, symbol: SYMBOL, timeframe: '1h', mode: 'paper', after: null, fillsSince: 0, modelVersion: null, reloadModel: false, requestedModelVersion: undefined, strategy: { ref: 'rules', params: { enterProb: 0.55, exitProb: 0.45 }, revision: 0, position: null } },
    );
    t.candleReadDone(venue.read(null, { modelVersion: 'v1' }));

    t.requestReload({ version: 'v2', by: 'test' });
    const asked = t.candleRead(cursor);
    assert.deepEqual([asked.modelVersion, asked.reloadModel, asked.requestedModelVersion], ['v1', true, 'v2']);
    t.requestReload({ by: 'test' }); // arrives while that read runs: the champion, next time
    t.candleReadDone(venue.read(null, { modelVersion: 'v2' }));
    const next = t.candleRead(cursor);
    assert.deepEqual([next.modelVersion, next.reloadModel, next.requestedModelVersion], ['v2', true, undefined]);
    t.candleReadDone(venue.read(null, { modelVersion: 'v3' }));
    assert.equal(t.candleRead(cursor).reloadModel, false, 'asked once');
    assert.equal(t.view().modelVersion, 'v3');

    t.requestReload({ version: 12 as unknown as string });
    assert.equal(t.candleRead(cursor).reloadModel, false, 'a version that is not text is ignored');
    assert.match(lines.at(-1)!.msg, /not text/);
  });

  it('continue-as-new: the next run starts from the carried state, reload asked for included, and publishes its status again', async () => {
    const { trader, venue } = await entered();
    trader.changeStatus('reduce-only', op);
    trader.requestReload({ version: 'v9' });
    const carried = JSON.parse(JSON.stringify(trader.carried())); // it travels as a JSON payload
    const next = new SymbolTrader(traderInput({ carried }), WORKFLOW_ID, recordingLog([]));
    const { done: _a, exchangeBreaker: _b, ...was } = trader.view();
    const { done: _c, exchangeBreaker: _d, ...now } = next.view();
    assert.deepEqual(now, was, 'the same symbol as before, position and decisions included');
    assert.deepEqual(next.cursor, trader.cursor);
    assert.equal(next.statusToPublish(), 'reduce-only');
    const read = next.candleRead(next.cursor);
    assert.deepEqual([read.reloadModel, read.requestedModelVersion], [true, 'v9']);

    // The new run trades on: the resting target fills there as it would have here.
    const target = trader.state.position!.targetPrice!;
    next.candleReadDone(venue.read(null));
    const hit = await step(next, venue, () => venue.read(candle(2, target, { high: target * 1.01 })));
    assert.equal(hit.out.closed[0]?.exitReason, 'take_profit');
    assert.equal(next.result().tradesClosed, 1);
    assert.equal(next.result().decisions, 2, 'decisions counted across runs');
  });

  it("hands each decision to the next candle read for the metrics: once, with the read's latency; kept until a read completes, and across continue-as-new", async () => {
    const trader = new SymbolTrader(traderInput(), WORKFLOW_ID, recordingLog([]));
    const venue = new MiniVenue();
    trader.stepBegins(T0 + 2 * HOUR + 5_000);
    const first = await step(trader, venue, () => venue.read(candle(1, 20_000), { latencyMs: 42 }));
    assert.equal(venue.reads.length, 1);
    const d = first.out.decision!;
    const read = trader.candleRead(trader.cursor);
    assert.equal(read.dueAt, T0 + 2 * HOUR + 5_000, 'when the step began (workflow time)');
    assert.deepEqual(read.decided, { seq: d.seq, candleTime: T0 + HOUR, closeTime: T0 + 2 * HOUR, action: 'enter', reason: d.reason, price: 20_000, ordersSent: 3, latencyMs: 42 });
    // That read failed (no result came back): the next one carries the decision again.
    assert.deepEqual(trader.candleRead(trader.cursor).decided, read.decided);
    trader.candleReadDone(venue.read(null));
    assert.equal('decided' in trader.candleRead(trader.cursor), false, 'reported once');

    const second = await step(trader, venue, () => venue.read(candle(2, 20_100)));
    const next = new SymbolTrader(traderInput({ carried: JSON.parse(JSON.stringify(trader.carried())) }), WORKFLOW_ID, recordingLog([]));
    assert.equal(next.candleRead(next.cursor).decided?.seq, second.out.decision!.seq, 'an unreported decision travels to the next run');
  });

  it('continues as new past the event threshold or when the server suggests it', () => {
    assert.equal(DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS, 4000);
    assert.equal(continueAsNewDue({ historyLength: 4000, continueAsNewSuggested: false }), false);
    assert.equal(continueAsNewDue({ historyLength: 4001, continueAsNewSuggested: false }), true);
    assert.equal(continueAsNewDue({ historyLength: 10, continueAsNewSuggested: true }), true);
    const t = new SymbolTrader(traderInput({ continueAsNewAfterEvents: 150 }), WORKFLOW_ID, recordingLog([]));
    assert.equal(t.shouldContinueAsNew({ historyLength: 150, continueAsNewSuggested: false }), false);
    assert.equal(t.shouldContinueAsNew({ historyLength: 151, continueAsNewSuggested: false }), true);
  });

  it('the exchange\'s breaker: an alert when it opens (not again while it stays open, not in replay), and the state view shows it', () => {
    const t = new SymbolTrader(traderInput(), WORKFLOW_ID, recordingLog([]));
    const venue = new MiniVenue();
    const open = { state: 'open', since: T0, consecutiveFailures: 5, lastFailure: 'ExchangeNotAvailable: 503' };
    t.candleRead(t.cursor);
    assert.equal(t.candleReadDone(venue.read(null, { breaker: { state: 'closed', since: T0, consecutiveFailures: 0 } })), null, 'healthy');
    const alert = t.candleReadDone(venue.read(null, { breaker: open }));
    assert.equal(alert?.key, 'circuit-breaker/binance/breaker open after 5 failures');
    assert.match(alert?.text ?? '', /ExchangeNotAvailable: 503/);
    assert.deepEqual(t.view().exchangeBreaker, open);
    assert.equal(t.candleReadDone(venue.read(null, { breaker: open })), null, 'still open: already said');
    assert.equal(t.candleReadDone(venue.read(null, {})), null, 'a read that does not report the breaker');
    assert.deepEqual(t.view().exchangeBreaker, open, 'keeps the last one reported');
    assert.notEqual(t.candleReadDone(venue.read(null, { breaker: { ...open, state: 'half-open' } })), null, 'another state of not-closed');

    const replay = new SymbolTrader(traderInput({ mode: 'replay' }), WORKFLOW_ID, recordingLog([]));
    assert.equal(replay.candleReadDone(venue.read(null, { breaker: open })), null);
  });

  it('emergency close: sells at market, cancels the stop and target, halts, and says what it closed; a second one has nothing to do', async () => {
    const lines: LogLine[] = [];
    const { trader, venue } = await entered(traderInput(), lines);
    trader.statusToPublish();
    const qty = trader.state.position!.qty;
    const close = trader.emergencyClose();
    assert.deepEqual(close.intents.map((i) => i.tag).sort(), ['cancel', 'cancel', 'exit']);
    await settle(close.outcome, close.intents, { execute: async (intents) => venue.execute(intents) }, traderInput().engine, trader.ctx, 'emergency close');
    const res = trader.emergencyClosed(close, { by: 'telegram:42' });
    assert.equal(res.symbol, SYMBOL);
    assert.equal(res.canceledOrders, 2);
    assert.equal(res.tradingStatus, 'halted');
    assert.equal(res.closed.length, 1);
    assert.equal(res.closed[0].qty, qty);
    assert.match(res.closed[0].clientOrderId, /-em$/);
    assert.equal(trader.view().statusReason, 'emergency close by telegram:42');
    assert.equal(trader.view().position, null);
    assert.equal(trader.statusToPublish(), 'halted');
    assert.deepEqual(venue.resting, [], 'nothing left resting');

    const again = trader.emergencyClose();
    assert.deepEqual(again.intents, []);
    const res2 = trader.emergencyClosed(again, { by: 'telegram:42' });
    assert.deepEqual([res2.closed, res2.canceledOrders, res2.tradingStatus], [[], 0, 'halted']);
    assert.equal(trader.statusToPublish(), null, 'already halted: nothing to publish');
  });

  it('emergency close refused by the exchange: logged as an error, the position stays', async () => {
    const lines: LogLine[] = [];
    const { trader } = await entered(traderInput(), lines);
    const close = trader.emergencyClose();
    const refuse = async (intents: OrderIntent[]): Promise<ExecutionReport> => ({ fills: [], orders: [], rejected: intents.filter((i) => i.tag === 'exit').map((i) => ({ clientOrderId: i.clientOrderId, reason: 'InsufficientFunds' })) });
    await settle(close.outcome, close.intents, { execute: refuse }, traderInput().engine, trader.ctx, 'emergency close');
    const res = trader.emergencyClosed(close, op);
    assert.deepEqual(res.closed, []);
    assert.equal(res.tradingStatus, 'halted', 'halted all the same: no new entries');
    assert.ok(trader.view().position, 'the position is still there for an operator to see');
    const err = lines.find((l) => l.level === 'error');
    assert.equal(err?.msg, 'emergency exit refused by the exchange');
    assert.equal(err?.fields.reason, 'InsufficientFunds');
  });
});
