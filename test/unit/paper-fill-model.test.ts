import assert from 'node:assert/strict';
import type { Candle } from '../../lib/candles';
import { immediateFill, matchCandle, slippageBps, slippedPrice, SlippageModel, type FillRules, type WorkingOrder } from '../../lib/exchange/fill-model';
import { keyedUniform } from '../../lib/random';

const tick = { kind: 'step' as const, step: '0.01' };
const rules = (over: Partial<FillRules> = {}): FillRules => ({
  fees: { maker: 0.0002, taker: 0.0007 },
  slippage: SlippageModel.parse({}),
  pricePrecision: tick,
  ...over,
});
const candle = (open: number, high: number, low: number, close: number): Candle => ({ timestamp: 1_600_000_000_000, open, high, low, close, volume: 1 });
const long = { base: '0.5', quote: '1000' };

describe('fill model (paper exchange and backtester share it)', () => {
  it('fills a market order at the reference price moved against the taker, rounded against it', () => {
    const r = rules({ slippage: SlippageModel.parse({ bps: 5 }) });
    const buy = immediateFill({ key: 'a', side: 'buy', type: 'market', qty: 0.1 }, 30000.01, undefined, r);
    assert.equal(buy?.price, 30015.02); // 30000.01 * 1.0005 = 30015.010005 -> up
    assert.equal(buy?.liquidity, 'taker');
    assert.equal(buy?.cost, '3001.502');
    assert.equal(buy?.fee, '2.1010514'); // 0.07 % taker
    const sell = immediateFill({ key: 'b', side: 'sell', type: 'market', qty: 0.1 }, 30000.01, undefined, r);
    assert.equal(sell?.price, 29985.0); // 29985.009995 -> down
  });

  it('fills a crossing limit at once as taker, never beyond its limit, and rests one that does not cross', () => {
    const r = rules({ slippage: SlippageModel.parse({ bps: 50 }) });
    const crossing = immediateFill({ key: 'c', side: 'buy', type: 'limit', qty: 1, price: 100.2 }, 100, undefined, r);
    assert.deepEqual([crossing?.price, crossing?.liquidity], [100.2, 'taker']); // 100.5 with slippage, capped at the limit
    assert.equal(immediateFill({ key: 'd', side: 'buy', type: 'limit', qty: 1, price: 99 }, 100, undefined, r), undefined);
  });

  it('scales slippage with the candle range and draws seeded randomness per order key', () => {
    const m = SlippageModel.parse({ bps: 2, rangeFraction: 0.1 });
    assert.ok(Math.abs(slippageBps(m, 'k', candle(100, 101, 99, 100)) - 22) < 1e-9); // 2 bps + 10 % of a 200 bps range
    assert.ok(Math.abs(slippageBps(m, 'k', candle(100, 110, 90, 100)) - 202) < 1e-9);
    const rnd = SlippageModel.parse({ randomBps: 10, seed: 42 });
    const a = slippageBps(rnd, 'order-1');
    assert.equal(slippageBps(rnd, 'order-1'), a, 'same seed and key, same draw');
    assert.notEqual(slippageBps(rnd, 'order-2'), a);
    assert.notEqual(slippageBps(SlippageModel.parse({ randomBps: 10, seed: 43 }), 'order-1'), a);
    const draws = Array.from({ length: 2000 }, (_, i) => keyedUniform(1, `k${i}`));
    assert.ok(Math.min(...draws) >= 0 && Math.max(...draws) < 1);
    assert.ok(Math.abs(draws.reduce((s, x) => s + x, 0) / draws.length - 0.5) < 0.03, 'roughly uniform');
    assert.equal(slippedPrice('sell', 100, 0, tick), 100);
  });

  it('fills the stop, not the target, when one candle touches both (pessimistic), whatever its colour', () => {
    const stop: WorkingOrder = { key: 'stop', side: 'sell', type: 'stop_market', qty: 0.5, stopPrice: 95 };
    const target: WorkingOrder = { key: 'target', side: 'sell', type: 'limit', qty: 0.5, price: 110 };
    // A red candle: the colour heuristic would say high first (target), the pessimistic rule says the stop.
    for (const c of [candle(100, 112, 93, 96), candle(100, 112, 93, 111)]) {
      const m = matchCandle([target, stop], c, long, rules());
      assert.deepEqual(m.fills.map((f) => [f.key, f.price, f.liquidity]), [['stop', 95, 'taker']]);
      assert.deepEqual(m.unfunded, ['target'], 'the target found no coins left and is canceled');
      assert.equal(m.cash.base, '0');
      assert.equal(m.cash.quote, '1047.46675'); // 1000 + 47.5 - 0.07 % of 47.5
    }
    // The lucky path would have been chosen by the heuristic for the red candle: prove the choice matters.
    const lucky = matchCandle([target], candle(100, 112, 93, 96), long, rules());
    assert.equal(lucky.fills[0].price, 110);
  });

  it('needs the market to trade through a limit by default; "touch" accepts trading at it', () => {
    const bid: WorkingOrder = { key: 'bid', side: 'buy', type: 'limit', qty: 1, price: 99 };
    const c = candle(100, 101, 99, 100);
    assert.equal(matchCandle([bid], c, long, rules()).fills.length, 0);
    const touched = matchCandle([bid], c, long, rules({ limitFill: 'touch' }));
    assert.deepEqual(touched.fills.map((f) => [f.price, f.liquidity, f.fee]), [[99, 'maker', '0.0198']]);
    assert.equal(matchCandle([bid], candle(100, 101, 98.99, 100), long, rules()).fills[0]?.price, 99);
  });

  it('fills a stop gapped through at the open, not at its level; a limit never better than its price', () => {
    const stop: WorkingOrder = { key: 's', side: 'sell', type: 'stop_market', qty: 0.1, stopPrice: 95 };
    const m = matchCandle([stop], candle(90, 92, 88, 91), long, rules({ slippage: SlippageModel.parse({ bps: 10 }) }));
    assert.equal(m.fills[0].price, 89.91); // open 90 less 10 bps
    const bid: WorkingOrder = { key: 'b', side: 'buy', type: 'limit', qty: 1, price: 99 };
    assert.equal(matchCandle([bid], candle(90, 92, 88, 91), long, rules()).fills[0].price, 99);
  });

  it('cancels a touched buy the account can no longer pay for, after an earlier buy in the same candle', () => {
    const a: WorkingOrder = { key: 'a', side: 'buy', type: 'limit', qty: 6, price: 100 };
    const b: WorkingOrder = { key: 'b', side: 'buy', type: 'limit', qty: 6, price: 98 };
    const m = matchCandle([a, b], candle(101, 101, 95, 96), long, rules());
    assert.deepEqual(m.fills.map((f) => f.key), ['a']);
    assert.deepEqual(m.unfunded, ['b']);
  });

  it('leaves untouched orders alone', () => {
    const m = matchCandle([{ key: 'x', side: 'sell', type: 'stop_market', qty: 0.1, stopPrice: 50 }], candle(100, 101, 99, 100), long, rules());
    assert.deepEqual([m.fills, m.unfunded, m.cash], [[], [], long]);
  });
});
