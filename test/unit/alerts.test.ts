import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { Telegram } from 'telegraf';
import { AlertDispatcher, createAlertActivities, telegramAlertSink } from '../../activities/alerts';
import { createLogger } from '../../infra/logger';
import {
  AlertQueue,
  TELEGRAM_TEXT_LIMIT,
  drawdownWarningAlert,
  formatAlert,
  killSwitchTrippedAlert,
  tradeClosedAlert,
  tradeOpenedAlert,
  workerCrashedAlert,
  type Alert,
} from '../../lib/alerts';
import { BotApiStandin } from '../../testkit/bot-api-standin';

const a = (severity: Alert['severity'], key: string, text = key): Alert => ({ severity, key, text });

describe('AlertQueue (pure)', () => {
  const fast = { sendBurst: 100, sendIntervalMs: 1, dedupWindowMs: 60_000 };

  it('serves critical before warning before info, FIFO within a severity', () => {
    const q = new AlertQueue(fast);
    q.push(a('info', 'i1'), 0);
    q.push(a('warning', 'w1'), 1);
    q.push(a('info', 'i2'), 2);
    q.push(a('critical', 'c1'), 3);
    q.push(a('warning', 'w2'), 4);
    const order: string[] = [];
    for (let e = q.take(10); e; e = q.take(10)) order.push(e.key);
    assert.deepEqual(order, ['c1', 'w1', 'w2', 'i1', 'i2']);
    assert.equal(q.size, 0);
  });

  it('merges a duplicate key while it waits (latest text, highest severity) and suppresses it after a send within the window', () => {
    const q = new AlertQueue(fast);
    assert.equal(q.push(a('warning', 'dd', 'drawdown 10%'), 0).status, 'queued');
    assert.deepEqual(q.push(a('warning', 'dd', 'drawdown 11%'), 1), { status: 'merged', repeats: 2 });
    assert.deepEqual(q.push(a('critical', 'dd', 'drawdown 13%'), 2), { status: 'merged', repeats: 3 });
    assert.equal(q.size, 1, 'one entry for the key');
    const e = q.take(3)!;
    assert.equal(e.severity, 'critical', 'escalated to the highest severity seen');
    assert.equal(e.text, 'drawdown 13%');
    assert.match(formatAlert(e), /^🚨 CRITICAL: drawdown 13%\n\(repeated 3 times\)$/);
    q.recordSent(e, 4);
    assert.deepEqual(q.push(a('critical', 'dd'), 100), { status: 'suppressed', suppressed: 1 });
    assert.deepEqual(q.push(a('warning', 'dd'), 200), { status: 'suppressed', suppressed: 2 });
    // After the window, the key is news again and says how much was swallowed.
    assert.equal(q.push(a('critical', 'dd', 'drawdown 14%'), 60_010).status, 'queued');
    const again = q.take(60_011)!;
    assert.equal(again.suppressedBefore, 2);
    assert.match(formatAlert(again), /2 similar alerts suppressed since the last one/);
    assert.deepEqual(
      [q.stats().queued, q.stats().merged, q.stats().suppressed, q.stats().sent],
      [2, 2, 2, 1],
    );
  });

  it('a higher severity of a key already sent is not suppressed', () => {
    const q = new AlertQueue(fast);
    q.push(a('warning', 'cb'), 0);
    q.recordSent(q.take(0)!, 0);
    assert.equal(q.push(a('warning', 'cb'), 10).status, 'suppressed');
    assert.equal(q.push(a('critical', 'cb'), 20).status, 'queued');
  });

  it('is bounded: a full queue evicts its oldest least important alert for a more important one, else drops the new one', () => {
    const q = new AlertQueue({ ...fast, capacity: 3 });
    q.push(a('info', 'i1'), 0);
    q.push(a('info', 'i2'), 1);
    q.push(a('warning', 'w1'), 2);
    assert.deepEqual(q.push(a('info', 'i3'), 3), { status: 'dropped', reason: 'full' });
    const r = q.push(a('critical', 'c1'), 4);
    assert.equal(r.status, 'queued');
    assert.equal(r.status === 'queued' && r.evicted?.key, 'i1', 'the oldest info alert makes room');
    q.push(a('critical', 'c2'), 5);
    q.push(a('critical', 'c3'), 6);
    assert.deepEqual(q.peekAll().map((e) => e.key), ['c1', 'c2', 'c3']);
    assert.deepEqual(q.push(a('critical', 'c4'), 7), { status: 'dropped', reason: 'full' }, 'nothing less important left to evict');
    assert.equal(q.size, 3);
    assert.deepEqual([q.stats().droppedFull, q.stats().evicted], [2, 3]);
    // An evicted key is not remembered as waiting: once there is room it queues again, not merges.
    assert.equal(q.take(8)?.key, 'c1');
    assert.equal(q.push(a('info', 'i1'), 9).status, 'queued');
  });

  it('throttles sends with a token bucket and says how long to wait', () => {
    const q = new AlertQueue({ sendBurst: 2, sendIntervalMs: 1_000, dedupWindowMs: 0 });
    for (const k of ['a', 'b', 'c']) q.push(a('info', k), 0);
    assert.ok(q.take(0), 'first of the burst');
    assert.ok(q.take(0), 'second of the burst');
    assert.equal(q.take(0), undefined, 'the burst is spent');
    assert.equal(q.waitMs(0), 1_000);
    assert.equal(q.waitMs(400), 600);
    assert.equal(q.take(999), undefined, 'not yet');
    assert.equal(q.take(1_000)?.key, 'c');
    assert.equal(q.waitMs(1_000), Infinity, 'nothing waits');
  });

  it('drops stale info and warning alerts when their turn comes, never critical ones', () => {
    const q = new AlertQueue({ ...fast, maxAgeMs: 1_000 });
    q.push(a('info', 'old-info'), 0);
    q.push(a('critical', 'old-critical'), 0);
    q.push(a('warning', 'fresh-warning'), 1_500);
    const stale: ReturnType<AlertQueue['peekAll']> = [];
    assert.equal(q.take(2_000, stale)?.key, 'old-critical');
    assert.equal(q.take(2_000, stale)?.key, 'fresh-warning');
    assert.equal(q.take(2_000, stale), undefined);
    assert.deepEqual(stale.map((s) => s.key), ['old-info']);
    assert.equal(q.stats().droppedStale, 1);
  });

  it('rejects nonsensical options', () => {
    assert.throws(() => new AlertQueue({ capacity: 0 }), RangeError);
    assert.throws(() => new AlertQueue({ sendBurst: 1.5 }), RangeError);
    assert.throws(() => new AlertQueue({ dedupWindowMs: -1 }), RangeError);
  });

  it('formats plain text within Telegram\'s limit', () => {
    const long = formatAlert({ severity: 'info', text: 'x'.repeat(5000), repeats: 1, suppressedBefore: 0 });
    assert.equal(long.length, TELEGRAM_TEXT_LIMIT);
    assert.ok(long.endsWith('…'), 'a cut message says it was cut');
  });

  it('builds the alert kinds with their severities and dedup keys', () => {
    assert.equal(killSwitchTrippedAlert({ account: 'main', reason: 'drawdown 15%' }).severity, 'critical');
    assert.equal(workerCrashedAlert({ worker: 'trading', error: 'boom' }).key, 'worker-crashed/trading');
    assert.equal(drawdownWarningAlert({ account: 'main', drawdown: 0.05, limit: 0.15 }).severity, 'warning');
    assert.equal(drawdownWarningAlert({ account: 'main', drawdown: 0.13, limit: 0.15 }).severity, 'critical');
    const o1 = tradeOpenedAlert({ symbol: 'BTC/USDT', qty: 0.01, price: 50_000, stopPrice: 49_000, clientOrderId: 'x-1' });
    const o2 = tradeOpenedAlert({ symbol: 'BTC/USDT', qty: 0.01, price: 50_100, clientOrderId: 'x-2' });
    assert.notEqual(o1.key, o2.key, 'two trades are two messages');
    assert.match(o1.text, /Opened LONG 0.01 BTC\/USDT @ 50000 \(stop 49000\)/);
    assert.match(tradeClosedAlert({ symbol: 'ETH/USDT', qty: 1, entryPrice: 3000, exitPrice: 2900, pnl: -100, reason: 'stop_loss', clientOrderId: 'y' }).text, /PnL -100.00 \(stop_loss\)/);
  });
});

describe('AlertDispatcher and sendAlert through the real telegraf client', function () {
  this.timeout(30_000); // the real telegraf client against a local Bot API stand-in, with its retry back-off
  const token = '123456:ALERTS_test_token_abcdefghijklmnop';
  const ADMIN_A = 111_111;
  const ADMIN_B = 222_222;
  let api: BotApiStandin;
  const lines: string[] = [];
  const log = createLogger({ level: 'info', name: 'test', destination: { write: (l: string) => void lines.push(l) } });
  let dispatchers: AlertDispatcher[] = [];

  const dispatcher = (opts: Partial<ConstructorParameters<typeof AlertDispatcher>[0]> = {}) => {
    const d = new AlertDispatcher({
      log,
      sink: telegramAlertSink(new Telegram(token, { apiRoot: api.apiRoot })),
      adminIds: [ADMIN_A, ADMIN_B],
      queue: { sendBurst: 10, sendIntervalMs: 10 },
      backoff: { initialMs: 50, maxMs: 200 },
      sendTimeoutMs: 2_000,
      ...opts,
    });
    dispatchers.push(d);
    return d;
  };

  beforeEach(async () => {
    api = await BotApiStandin.start({ token });
    lines.length = 0;
  });
  afterEach(async () => {
    await Promise.all(dispatchers.map((d) => d.stop()));
    dispatchers = [];
    await api.stop();
  });

  it('a critical alert raised through the sendAlert activity reaches every admin chat', async () => {
    const d = dispatcher();
    const { sendAlert } = createAlertActivities(d);
    const res = await sendAlert(killSwitchTrippedAlert({ account: 'main', reason: 'drawdown 15.2% reached MAX_DRAWDOWN', by: 'portfolio' }));
    assert.equal(res.status, 'queued');
    for (const chat of [ADMIN_A, ADMIN_B]) {
      const m = await api.waitForMessage(chat, /CRITICAL: Kill switch tripped for main: drawdown 15.2%/);
      assert.ok(m.text.startsWith('🚨'), 'critical alerts carry the siren');
    }
    await api.waitFor('the delivery to be recorded', () => d.stats().sent === 1 || undefined);
  });

  it('sends the most important first when alerts pile up', async () => {
    const d = dispatcher({ queue: { sendBurst: 1, sendIntervalMs: 100 } });
    // All three are queued before the sender loop gets a turn.
    d.enqueue(a('info', 'trade', 'trade opened'));
    d.enqueue(a('warning', 'breaker', 'circuit breaker open'));
    d.enqueue(a('critical', 'crash', 'worker crashed'));
    assert.equal(await d.idle(5_000), true, 'the queue drains');
    assert.equal(d.stats().sent, 3);
    assert.deepEqual(api.messagesTo(ADMIN_A).map((m) => m.text.split(': ')[1]), ['worker crashed', 'circuit breaker open', 'trade opened']);
  });

  it('the activity refuses a malformed alert as non-retryable', async () => {
    const { sendAlert } = createAlertActivities(dispatcher());
    await assert.rejects(
      sendAlert({ severity: 'urgent' as never, key: 'k', text: 't' }),
      (err: unknown) => err instanceof ApplicationFailure && err.nonRetryable && err.type === 'InvalidAlert' && /severity: expected one of critical, warning, info/.test(err.message),
    );
    await assert.rejects(sendAlert({ severity: 'info', key: ' ', text: 't' }), /key: must not be empty/);
  });

  it('when Telegram is down, alerts are dropped with a counter and a log line, and enqueue never waits', async () => {
    api.setDown('error-502');
    const d = dispatcher({ backoff: { initialMs: 1_000, maxMs: 1_000 } });
    const t0 = process.hrtime.bigint();
    d.enqueue(a('critical', 'k1', 'first'));
    const elapsedMs = Number(process.hrtime.bigint() - t0) / 1e6;
    assert.ok(elapsedMs < 50, `enqueue must return at once (took ${elapsedMs} ms)`);
    await api.waitFor('the failed send to be counted', () => d.stats().droppedSendFailed === 1 || undefined);
    assert.equal(d.stats().sent, 0);
    assert.ok(d.stats().telegramDown, 'the dispatcher knows Telegram is down');
    assert.ok(lines.some((l) => /"msg":"alert dropped: Telegram unreachable"/.test(l) && /"droppedSendFailed":1/.test(l)), 'a log line says the alert was dropped');
    // Back up: the next alert goes through.
    api.setDown(false);
    d.enqueue(a('warning', 'k2', 'second'));
    await api.waitForMessage(ADMIN_A, /WARNING: second/);
    await api.waitFor('the delivery to be recorded', () => d.stats().sent === 1 || undefined);
    assert.equal(d.stats().telegramDown, false);
  });

  it('a hanging Telegram times out the send; the queue stays bounded and overflow is counted', async () => {
    api.setDown('hang');
    const d = dispatcher({ sendTimeoutMs: 200, queue: { capacity: 2, sendBurst: 10, sendIntervalMs: 10 } });
    d.enqueue(a('info', 'x0'));
    await api.waitFor('the first send to hang', () => api.callsOf('sendMessage').length === 1 || undefined);
    const outcomes = ['x1', 'x2', 'x3'].map((k) => d.enqueue(a('info', k)).status);
    assert.deepEqual(outcomes, ['queued', 'queued', 'dropped']);
    assert.ok(lines.some((l) => /alert dropped: queue full/.test(l)), 'overflow is logged');
    await api.waitFor('the hung send to time out', () => d.stats().droppedSendFailed >= 1 || undefined);
    assert.equal(d.stats().droppedFull, 1);
  });

  it('an admin who blocked the bot does not stop the others from getting alerts', async () => {
    api.blockChat(ADMIN_A);
    const d = dispatcher();
    d.enqueue(a('critical', 'k', 'still delivered'));
    await api.waitForMessage(ADMIN_B, /still delivered/);
    await api.waitFor('the delivery to be recorded', () => d.stats().sent === 1 || undefined);
    assert.equal(api.messagesTo(ADMIN_A).length, 0);
    assert.ok(lines.some((l) => /must open a chat with the bot/.test(l) && l.includes(String(ADMIN_A))), 'the unreachable admin is named in the log');
    assert.equal(d.stats().telegramDown, false, 'one closed chat is not an outage');
  });

  it('without a Telegram sink alerts are only logged', () => {
    const d = new AlertDispatcher({ log });
    assert.deepEqual(d.enqueue(a('critical', 'k', 'nobody listens')), { status: 'logged-only' });
    assert.equal(d.stats().loggedOnly, 1);
    assert.ok(lines.some((l) => /"level":"error"/.test(l) && /nobody listens/.test(l)), 'a critical alert is an error log line');
  });
});
