import assert from 'node:assert/strict';
import { humanDuration, type Alert } from '../../lib/alerts';
import type { SymbolStateView } from '../../lib/contracts/trading';
import { TradingWatchdog, type QueueObservation } from '../../lib/watchdog';

/** lib/watchdog.ts without a server: when trading counts as stopped, and when it is back. */

const T0 = Date.UTC(2025, 0, 1, 12);
const S = 1000;
const MIN = 60 * S;
const HOUR = 60 * MIN;
const judge = (now = T0) => new TradingWatchdog({ noPollerAfterMs: 120 * S, replayStallMinMs: 30 * S }, '127.0.0.1:7233', now);
const polled = (lastPollAt: number | null, pollers = 1): QueueObservation => ({ taskQueue: 'trading', lastPollAt, pollers });
const keys = (as: Alert[]) => as.map((a) => `${a.severity} ${a.key}`);

function view(o: Partial<SymbolStateView> & { symbol: string }): SymbolStateView {
  return {
    workflowId: `trader/binance/${o.symbol}`,
    exchange: 'binance',
    mode: 'paper',
    strategy: 'rules',
    tradingStatus: 'active',
    position: null,
    lastDecision: null,
    decisions: 1,
    realizedPnl: 0,
    tradesClosed: 0,
    lastCandleTime: null,
    done: false,
    timeframeMs: HOUR,
    replaySpeed: null,
    nextCandleDueAt: null,
    ...o,
  };
}

describe('watchdog judgement (lib/watchdog.ts)', () => {
  it('leaves a worker alone whose long poll is a minute old (an idle queue), and alerts once past the threshold', () => {
    const w = judge();
    assert.deepEqual(w.queue(polled(T0 - 50 * S), T0 + 10 * S), [], 'a poll 60 s old is an idle worker waiting');
    assert.deepEqual(w.queue(polled(T0), T0 + 120 * S), [], 'at the threshold, not past it');
    const down = w.queue(polled(T0), T0 + 121 * S);
    assert.deepEqual(keys(down), ['critical watchdog/no-worker/trading/1']);
    assert.match(down[0].text, /no worker polls task queue "trading": the last poll was 2 min 1 s ago \(2025-01-01 12:00:00 UTC\)/);
    assert.equal(w.noWorker, true);
    assert.deepEqual(w.queue(polled(T0), T0 + 10 * MIN), [], 'raised once per outage, not every check');
  });

  it('says the worker is back on a poll newer than the outage, and a second outage is a new incident the dedup window cannot swallow', () => {
    const w = judge();
    w.queue(polled(T0), T0 + 3 * MIN);
    const back = w.queue(polled(T0 + 4 * MIN, 2), T0 + 4 * MIN);
    assert.deepEqual(keys(back), ['info watchdog/no-worker/trading/1/back']);
    assert.match(back[0].text, /has 2 pollers again, after 4 min without one/, 'counted from the last poll, not from the alert');
    assert.equal(w.noWorker, false);
    const again = w.queue(polled(T0 + 4 * MIN), T0 + 7 * MIN);
    assert.deepEqual(keys(again), ['critical watchdog/no-worker/trading/2']);
  });

  it('counts from its own start when no poller was ever listed', () => {
    const w = judge();
    assert.deepEqual(w.queue(polled(null, 0), T0 + 100 * S), []);
    const down = w.queue(polled(null, 0), T0 + 130 * S);
    assert.match(down[0].text, /no worker has polled it since the watchdog started/);
  });

  it('alerts when Temporal cannot be reached for the threshold, and when it answers again', () => {
    const w = judge();
    const err = { taskQueue: 'trading', lastPollAt: null, pollers: 0, error: 'connect ECONNREFUSED' };
    assert.deepEqual(w.queue(err, T0 + 10 * S), []);
    assert.deepEqual(w.queue(err, T0 + 100 * S), []);
    const down = w.queue(err, T0 + 131 * S);
    assert.deepEqual(keys(down), ['critical watchdog/temporal/1']);
    assert.match(down[0].text, /Temporal unreachable at 127\.0\.0\.1:7233 for 2 min 1 s \(connect ECONNREFUSED\)/);
    const back = w.queue(polled(T0 + 140 * S), T0 + 140 * S);
    assert.deepEqual(keys(back), ['info watchdog/temporal/1/back']);
  });

  it('live: a symbol whose next candle is more than one timeframe late stalls; a newer candle clears it', () => {
    const w = judge();
    const last = T0 - HOUR; // the 11:00 candle was read; the 12:00 one closes at 13:00
    const due = last + 2 * HOUR + 5 * S;
    const v = view({ symbol: 'BTC/USDT', lastCandleTime: last, nextCandleDueAt: due });
    assert.deepEqual(w.symbolsSeen([{ symbol: 'BTC/USDT', view: v }], due + HOUR), [], 'one timeframe late is still within grace');
    const stalled = w.symbolsSeen([{ symbol: 'BTC/USDT', unreachable: 'query timed out' }], due + HOUR + 1);
    assert.deepEqual(keys(stalled), ['critical watchdog/stalled/BTC/USDT/1'], 'judged on what it said last when it does not answer');
    assert.match(stalled[0].text, /BTC\/USDT stalled: its candle due 2025-01-01 13:00:05 UTC is 1 h late \(more than one 1 h timeframe\); last candle 2025-01-01 11:00:00 UTC/);
    assert.deepEqual(w.stalledSymbols(), ['BTC/USDT']);
    assert.deepEqual(w.symbolsSeen([{ symbol: 'BTC/USDT', view: v }], due + 2 * HOUR), [], 'once per stall');
    const back = w.symbolsSeen([{ symbol: 'BTC/USDT', view: { ...v, lastCandleTime: last + HOUR, nextCandleDueAt: due + HOUR } }], due + 2 * HOUR + MIN);
    assert.deepEqual(keys(back), ['info watchdog/stalled/BTC/USDT/1/back']);
    assert.match(back[0].text, /trading again: candle 2025-01-01 12:00:00 UTC read, after 1 h 1 min stalled/);
  });

  it('does not judge halted symbols (they wait for an operator), finished replays, or workers too old to report a timeframe', () => {
    const w = judge();
    const late = T0 + 10 * HOUR;
    assert.deepEqual(
      w.symbolsSeen(
        [
          { symbol: 'A/USDT', view: view({ symbol: 'A/USDT', tradingStatus: 'halted', lastCandleTime: T0, nextCandleDueAt: T0 + 2 * HOUR }) },
          { symbol: 'B/USDT', view: view({ symbol: 'B/USDT', mode: 'replay', replaySpeed: 60, done: true }) },
          { symbol: 'C/USDT', view: view({ symbol: 'C/USDT', timeframeMs: undefined, lastCandleTime: T0, nextCandleDueAt: T0 + 2 * HOUR }) },
        ],
        late,
      ),
      [],
    );
  });

  it('paused and reduce-only symbols still step every candle, so they are judged', () => {
    const w = judge();
    const v = view({ symbol: 'ETH/USDT', tradingStatus: 'paused', lastCandleTime: T0, nextCandleDueAt: T0 + 2 * HOUR });
    assert.equal(w.symbolsSeen([{ symbol: 'ETH/USDT', view: v }], T0 + 4 * HOUR).length, 1);
  });

  it('replay: stalled when the candle has not moved for two timeframes at its speed, never sooner than the floor', () => {
    const w = judge();
    const at = (t: number, lastCandleTime: number) => w.symbolsSeen([{ symbol: 'X/USDT', view: view({ symbol: 'X/USDT', mode: 'replay', replaySpeed: 'max', timeframeMs: MIN, lastCandleTime }) }], t);
    assert.deepEqual(at(T0, 1), []);
    assert.deepEqual(at(T0 + 20 * S, 2), [], 'moving');
    assert.deepEqual(at(T0 + 49 * S, 2), [], 'still within the 30 s floor of the last move');
    const stalled = at(T0 + 51 * S, 2);
    assert.deepEqual(keys(stalled), ['critical watchdog/stalled/X/USDT/1']);
    assert.match(stalled[0].text, /no new candle for 31 s \(a replay at speed max\)/);
    // At speed 1 a 1m candle takes a minute: two minutes of quiet are normal there.
    const slow = judge();
    const seen = (t: number) => slow.symbolsSeen([{ symbol: 'Y/USDT', view: view({ symbol: 'Y/USDT', mode: 'replay', replaySpeed: 1, timeframeMs: MIN, lastCandleTime: 5 }) }], t);
    assert.deepEqual(seen(T0), []);
    assert.deepEqual(seen(T0 + 119 * S), []);
    assert.equal(seen(T0 + 121 * S).length, 1);
  });

  it('forgets symbols that are no longer running', () => {
    const w = judge();
    w.symbolsSeen([{ symbol: 'A/USDT', view: view({ symbol: 'A/USDT', lastCandleTime: T0, nextCandleDueAt: T0 + 2 * HOUR }) }], T0 + 5 * HOUR);
    assert.deepEqual(w.stalledSymbols(), ['A/USDT']);
    w.symbolsSeen([], T0 + 6 * HOUR);
    assert.deepEqual(w.stalledSymbols(), []);
  });

  it('writes durations for people', () => {
    assert.deepEqual([250, 45_000, 192_000, 7_500_000, 3 * 86_400_000 + 2 * HOUR].map(humanDuration), ['250 ms', '45 s', '3 min 12 s', '2 h 5 min', '3 d 2 h']);
  });
});
