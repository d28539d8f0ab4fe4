import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { Candle } from '../../lib/candles';
import {
  checkProtectiveExit,
  dailyLoss,
  drawdown,
  effectiveStop,
  entryAllowed,
  EntryVerdict,
  isStopOut,
  killSwitchTripped,
  mayExitProtectively,
  mayOpen,
  mayReduce,
  NO_STOP_OUTS,
  openProtectedPosition,
  protectiveLevels,
  protectOnCandle,
  recordStopOut,
  RiskConfig,
  type RiskConfigInput,
  sizePosition,
  StopOutOrderError,
  stopOutBlock,
  type EntryGateInput,
  type ProtectedPosition,
  type ProtectiveExit,
  type StopOutState,
  type TradingStatus,
  updateTrailingStop,
} from '../../lib/risk';
import { readCandleCsv } from '../../infra/candle-files';
import { Prng } from '../../lib/random';
import { fixtureCandleFile } from '../../testkit/fixtures';

const between = (rng: Prng, lo: number, hi: number) => lo + (hi - lo) * rng.next();
const intBetween = (rng: Prng, lo: number, hi: number) => Math.floor(between(rng, lo, hi + 1));
const pick = <T>(rng: Prng, xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)];
const RUNS = 2000;
// Every assert.ok carries a message: without one, Node rebuilds it from the source, which hung
// for minutes on this tsx-compiled file when a check failed in a long loop.

const cfg = (over: RiskConfigInput = {}) => RiskConfig.parse(over);
const DEFAULT = cfg();
const step = (s: string) => ({ kind: 'step' as const, step: s });
const bar = (open: number, high: number, low: number, close = open): Candle => ({ timestamp: 0, open, high, low, close, volume: 1 });

/** A random candle around `mid`: open and close inside [low, high]. */
function randomCandle(rng: Prng, mid: number, spread: number): Candle {
  const a = mid * (1 + between(rng, -spread, spread));
  const b = mid * (1 + between(rng, -spread, spread));
  const low = Math.min(a, b) * (1 - between(rng, 0, spread / 2));
  const high = Math.max(a, b) * (1 + between(rng, 0, spread / 2));
  return bar(a, high, low, b);
}

describe('risk: config', () => {
  it('defaults to the env defaults and accepts AppConfig.risk as it is', () => {
    assert.equal(DEFAULT.maxPositionSize, 0.05);
    assert.equal(DEFAULT.stopLossPct, 0.02);
    assert.equal(DEFAULT.takeProfitPct, 0.04);
    assert.equal(DEFAULT.maxDrawdown, 0.15);
    assert.equal(DEFAULT.stopMode, 'percent');
    assert.equal(DEFAULT.trailingStopPct, undefined);
    const fromApp = RiskConfig.parse({ initialCapital: 10_000, maxPositionSize: 0.1, stopLossPct: 0.03, takeProfitPct: 0.06, maxDrawdown: 0.2 });
    assert.equal(fromApp.maxPositionSize, 0.1);
    assert.equal(fromApp.maxDrawdown, 0.2);
    assert.ok(!('initialCapital' in fromApp), 'unknown keys are stripped');
  });

  const invalid: [string, RiskConfigInput][] = [
    ['position size 0', { maxPositionSize: 0 }],
    ['position size above equity', { maxPositionSize: 1.5 }],
    ['stop loss of 100 %', { stopLossPct: 1 }],
    ['two trailing modes', { trailingStopPct: 0.01, trailingAtrMult: 2 }],
    ['fractional cooldown', { cooldownBarsAfterStopOut: 1.5 }],
    ['guard of zero stop-outs', { stoplossGuard: { maxStopOuts: 0, windowBars: 10, pauseBars: 5 } }],
    ['regime multiplier above 1', { regimeMultipliers: { bull: 1.5 } }],
    ['leveraged exposure on spot', { maxTotalExposure: 2 }],
  ];
  for (const [name, input] of invalid) {
    it(`rejects ${name}`, () => assert.equal(RiskConfig.safeParse(input).success, false));
  }

  it('a null guard disables it', () => assert.equal(cfg({ stoplossGuard: null }).stoplossGuard, null));
});

describe('risk: sizing', () => {
  const base = { equity: 10_000, price: 100, cfg: DEFAULT };
  const cases: [string, Parameters<typeof sizePosition>[0], { qty: number; notional?: number; reason: string }][] = [
    ['full cap', base, { qty: 5, notional: 500, reason: 'max_position_size' }],
    ['strategy asks for less', { ...base, fraction: 0.02 }, { qty: 2, notional: 200, reason: 'requested_fraction' }],
    ['strategy asks for more: capped', { ...base, fraction: 0.5 }, { qty: 5, reason: 'max_position_size' }],
    ['ATR twice the target halves it', { ...base, atr: 4, cfg: cfg({ targetVolatility: 0.02 }) }, { qty: 2.5, reason: 'scaled' }],
    ['ATR below the target does not grow it', { ...base, atr: 1, cfg: cfg({ targetVolatility: 0.02 }) }, { qty: 5, reason: 'max_position_size' }],
    ['realized vol when no ATR', { ...base, realizedVol: 0.08, cfg: cfg({ targetVolatility: 0.02 }) }, { qty: 1.25, reason: 'scaled' }],
    ['no target: volatility ignored', { ...base, atr: 50 }, { qty: 5, reason: 'max_position_size' }],
    ['regime multiplier', { ...base, regime: 'ranging', cfg: cfg({ regimeMultipliers: { ranging: 0.5, bear: 0 } }) }, { qty: 2.5, reason: 'scaled' }],
    ['default: volatile regime halves', { ...base, regime: 'volatile' }, { qty: 2.5, reason: 'scaled' }],
    ['regime that blocks', { ...base, regime: 'bear', cfg: cfg({ regimeMultipliers: { bear: 0 } }) }, { qty: 0, reason: 'zero_scale' }],
    ['unlisted regime keeps size', { ...base, regime: 'constructor', cfg: cfg({ regimeMultipliers: { bear: 0 } }) }, { qty: 5, reason: 'max_position_size' }],
    ['confidence', { ...base, confidence: 0.5 }, { qty: 2.5, reason: 'scaled' }],
    ['confidence above 1 is 1', { ...base, confidence: 3 }, { qty: 5, reason: 'max_position_size' }],
    ['exposure room binds', { ...base, openExposure: 4_800 }, { qty: 2, notional: 200, reason: 'exposure_room' }],
    ['no exposure room', { ...base, openExposure: 5_000 }, { qty: 0, reason: 'no_exposure_room' }],
    ['lot step', { ...base, price: 30_000, market: { amountPrecision: step('0.001') } }, { qty: 0.016, notional: 480, reason: 'max_position_size' }],
    // 10000 * 0.043 / 10 = 42.99999999999999 in binary floats: a naive floor would buy 42.
    ['lot step where floats drift', { ...base, price: 10, fraction: 0.043, market: { amountPrecision: step('1') } }, { qty: 43, notional: 430, reason: 'requested_fraction' }],
    ['market max amount', { ...base, market: { maxAmount: 3 } }, { qty: 3, reason: 'max_amount' }],
    ['max amount 0 means none', { ...base, market: { maxAmount: 0 } }, { qty: 5, reason: 'max_position_size' }],
    ['below min amount', { ...base, market: { minAmount: 10 } }, { qty: 0, reason: 'below_min_amount' }],
    ['rounds to nothing', { ...base, price: 30_000, market: { amountPrecision: step('1') } }, { qty: 0, reason: 'below_min_amount' }],
    ['below min notional', { ...base, equity: 100, market: { minCost: 10 } }, { qty: 0, reason: 'below_min_notional' }],
    ['NaN price', { ...base, price: Number.NaN }, { qty: 0, reason: 'invalid_input' }],
    ['NaN ATR', { ...base, atr: Number.NaN }, { qty: 0, reason: 'invalid_input' }],
    ['zero price', { ...base, price: 0 }, { qty: 0, reason: 'invalid_input' }],
    ['no equity', { ...base, equity: 0 }, { qty: 0, reason: 'no_equity' }],
    ['negative equity', { ...base, equity: -5 }, { qty: 0, reason: 'no_equity' }],
  ];
  for (const [name, input, want] of cases) {
    it(name, () => {
      const got = sizePosition(input);
      assert.equal(got.reason, want.reason);
      assert.ok(Math.abs(got.qty - want.qty) < 1e-12, `qty ${got.qty}, want ${want.qty}`);
      if (want.notional !== undefined) assert.ok(Math.abs(got.notional - want.notional) < 1e-9, `notional ${got.notional}`);
    });
  }

  it('property: never above the cap or the exposure room, never negative, less for more volatility', () => {
    const rng = new Prng(2);
    for (let i = 0; i < RUNS; i++) {
      const c = cfg({
        maxPositionSize: between(rng, 0.001, 1),
        maxTotalExposure: between(rng, 0.01, 1),
        targetVolatility: rng.next() < 0.7 ? between(rng, 0.001, 0.05) : undefined,
        regimeMultipliers: { calm: 1, wild: between(rng, 0, 1) },
      });
      const input = {
        equity: between(rng, 1, 1e7),
        price: between(rng, 1e-4, 1e5),
        fraction: rng.next() < 0.5 ? between(rng, -0.5, 2) : undefined,
        confidence: rng.next() < 0.5 ? between(rng, 0, 1) : undefined,
        regime: pick(rng, ['calm', 'wild', 'unknown', undefined]),
        openExposure: rng.next() < 0.5 ? between(rng, 0, 1e7) : undefined,
        market: rng.next() < 0.5 ? { amountPrecision: step(pick(rng, ['0.00000001', '0.001', '0.1', '1'])) } : undefined,
        cfg: c,
      };
      const atr = input.price * between(rng, 0.0005, 0.1);
      const size = sizePosition({ ...input, atr });
      const where = JSON.stringify({ i, ...input, atr });
      assert.ok(size.qty >= 0 && size.notional >= 0, where);
      assert.ok(size.notional <= input.equity * c.maxPositionSize * (1 + 1e-12), `above the cap: ${where}`);
      if (input.openExposure !== undefined) {
        assert.ok(input.openExposure + size.notional <= c.maxTotalExposure * input.equity * (1 + 1e-12) || size.qty === 0, `above the exposure limit: ${where}`);
      }
      const calmer = sizePosition({ ...input, atr: atr / 2 });
      assert.ok(size.qty <= calmer.qty, `more volatility bought more: ${where}`);
    }
  });
});

describe('risk: protective levels', () => {
  const cases: [string, Parameters<typeof protectiveLevels>[0], { stopPrice: number; takeProfitPrice: number; basis: string }][] = [
    ['percent, long', { entryPrice: 100, cfg: DEFAULT }, { stopPrice: 98, takeProfitPrice: 104, basis: 'percent' }],
    ['percent, short', { entryPrice: 100, side: 'short', cfg: DEFAULT }, { stopPrice: 102, takeProfitPrice: 96, basis: 'percent' }],
    ['ATR, long', { entryPrice: 100, atr: 1.5, cfg: cfg({ stopMode: 'atr' }) }, { stopPrice: 97, takeProfitPrice: 106, basis: 'atr' }],
    ['ATR, short', { entryPrice: 100, side: 'short', atr: 1.5, cfg: cfg({ stopMode: 'atr' }) }, { stopPrice: 103, takeProfitPrice: 94, basis: 'atr' }],
    ['ATR mode during warm-up falls back to percent', { entryPrice: 100, cfg: cfg({ stopMode: 'atr' }) }, { stopPrice: 98, takeProfitPrice: 104, basis: 'percent' }],
    ['ATR beyond the price keeps the stop above zero', { entryPrice: 100, atr: 80, cfg: cfg({ stopMode: 'atr' }) }, { stopPrice: 1, takeProfitPrice: 420, basis: 'atr' }],
    ['percent mode ignores the ATR', { entryPrice: 100, atr: 10, cfg: DEFAULT }, { stopPrice: 98, takeProfitPrice: 104, basis: 'percent' }],
    ['ticks round towards the entry', { entryPrice: 100.03, pricePrecision: step('0.01'), cfg: DEFAULT }, { stopPrice: 98.03, takeProfitPrice: 104.03, basis: 'percent' }],
    ['short: ticks round towards the entry', { entryPrice: 100.03, side: 'short', pricePrecision: step('0.01'), cfg: DEFAULT }, { stopPrice: 102.03, takeProfitPrice: 96.03, basis: 'percent' }],
    ['a tick coarser than the stop rounds away', { entryPrice: 100, pricePrecision: step('5'), cfg: DEFAULT }, { stopPrice: 95, takeProfitPrice: 105, basis: 'percent' }],
  ];
  for (const [name, input, want] of cases) {
    it(name, () => {
      const got = protectiveLevels(input);
      assert.equal(got.basis, want.basis);
      assert.ok(Math.abs(got.stopPrice - want.stopPrice) < 1e-9, `stop ${got.stopPrice}`);
      assert.ok(Math.abs(got.takeProfitPrice - want.takeProfitPrice) < 1e-9, `target ${got.takeProfitPrice}`);
    });
  }
});

describe('risk: protective exits', () => {
  const long: ProtectedPosition = { side: 'long', entryPrice: 100, stopPrice: 98, takeProfitPrice: 104, bestPrice: 100 };
  const short: ProtectedPosition = { side: 'short', entryPrice: 100, stopPrice: 102, takeProfitPrice: 96, bestPrice: 100 };
  const trailed: ProtectedPosition = { ...long, trailingStopPrice: 101, bestPrice: 103 };
  const cases: [string, ProtectedPosition, Candle, ProtectiveExit | null][] = [
    ['quiet candle', long, bar(100, 103, 99), null],
    ['low exactly on the stop', long, bar(100, 101, 98), { reason: 'stop_loss', price: 98 }],
    ['low a cent above the stop', long, bar(100, 101, 98.01), null],
    ['high exactly on the target: a resting limit may not fill', long, bar(100, 104, 99), null],
    ['high through the target', long, bar(100, 104.01, 99), { reason: 'take_profit', price: 104 }],
    ['gap down through the stop fills at the open', long, bar(95, 96, 94), { reason: 'stop_loss', price: 95 }],
    ['open exactly on the stop', long, bar(98, 99, 97), { reason: 'stop_loss', price: 98 }],
    ['both touched: the stop wins', long, bar(100, 105, 97), { reason: 'stop_loss', price: 98 }],
    ['opened above the target: the target was first, filled at the target', long, bar(105, 106, 97), { reason: 'take_profit', price: 104 }],
    ['trailing stop above the initial one', trailed, bar(102, 103, 100.5), { reason: 'trailing_stop', price: 101 }],
    ['gap through the trailing stop', trailed, bar(99, 100, 97), { reason: 'trailing_stop', price: 99 }],
    ['no target: only the stop', { ...long, takeProfitPrice: undefined }, bar(100, 500, 99), null],
    ['short: high on the stop', short, bar(100, 102, 99), { reason: 'stop_loss', price: 102 }],
    ['short: gap up through the stop', short, bar(105, 106, 104), { reason: 'stop_loss', price: 105 }],
    ['short: both touched, the stop wins', short, bar(100, 103, 95), { reason: 'stop_loss', price: 102 }],
    ['short: low on the target', short, bar(100, 101, 96), null],
    ['short: low through the target', short, bar(100, 101, 95.9), { reason: 'take_profit', price: 96 }],
    ['short: opened below the target', short, bar(95, 103, 94), { reason: 'take_profit', price: 96 }],
  ];
  for (const [name, position, candle, want] of cases) {
    it(name, () => assert.deepEqual(checkProtectiveExit(position, candle), want));
  }

  it('property: long exits are pessimistic; stops fill inside the candle, targets at the target', () => {
    const rng = new Prng(3);
    for (let i = 0; i < RUNS * 5; i++) {
      const entry = between(rng, 1, 1000);
      const position: ProtectedPosition = {
        side: 'long',
        entryPrice: entry,
        stopPrice: entry * (1 - between(rng, 0.001, 0.1)),
        takeProfitPrice: rng.next() < 0.8 ? entry * (1 + between(rng, 0.001, 0.2)) : undefined,
        trailingStopPrice: rng.next() < 0.3 ? entry * between(rng, 0.95, 1.05) : undefined,
        bestPrice: entry,
      };
      const candle = randomCandle(rng, entry * between(rng, 0.85, 1.15), 0.05);
      const exit = checkProtectiveExit(position, candle);
      const stop = effectiveStop(position).price;
      const target = position.takeProfitPrice ?? Infinity;
      const where = JSON.stringify({ i, position, candle, exit });
      const stopTouched = candle.low <= stop;
      const targetTouched = candle.high > target;
      if (!stopTouched && !targetTouched) {
        assert.equal(exit, null, where);
        continue;
      }
      assert.ok(exit, where);
      if (exit.reason === 'take_profit') {
        assert.equal(exit.price, target, where);
        assert.ok(!stopTouched || candle.open > target, `target chosen while the stop was touched: ${where}`);
      } else {
        assert.ok(exit.price >= candle.low && exit.price <= candle.high, `stop exit outside the candle: ${where}`);
        assert.ok(exit.price <= stop, `stop filled better than the stop: ${where}`);
        assert.equal(exit.price, Math.min(stop, candle.open), `gap not filled at the open: ${where}`);
        assert.equal(exit.reason, position.trailingStopPrice !== undefined && position.trailingStopPrice > position.stopPrice ? 'trailing_stop' : 'stop_loss');
      }
    }
  });

  it('property: short is the mirror image of long (prices inverted)', () => {
    const rng = new Prng(4);
    const inv = (p: number) => 1 / p;
    for (let i = 0; i < RUNS * 2; i++) {
      const entry = between(rng, 1, 1000);
      const longPos: ProtectedPosition = {
        side: 'long',
        entryPrice: entry,
        stopPrice: entry * (1 - between(rng, 0.001, 0.1)),
        takeProfitPrice: entry * (1 + between(rng, 0.001, 0.2)),
        bestPrice: entry,
      };
      const c = randomCandle(rng, entry * between(rng, 0.85, 1.15), 0.05);
      const shortPos: ProtectedPosition = {
        side: 'short',
        entryPrice: inv(entry),
        stopPrice: inv(longPos.stopPrice),
        takeProfitPrice: inv(longPos.takeProfitPrice!),
        bestPrice: inv(entry),
      };
      const a = checkProtectiveExit(longPos, c);
      const b = checkProtectiveExit(shortPos, bar(inv(c.open), inv(c.low), inv(c.high)));
      const where = JSON.stringify({ i, longPos, c, a, b });
      assert.equal(a?.reason, b?.reason, where);
      if (a && b) assert.ok(Math.abs(inv(b.price) - a.price) / a.price < 1e-12, where);
    }
  });

  it('isStopOut: every stop loss, a trailing stop only at a loss, never a target', () => {
    const pos = { side: 'long' as const, entryPrice: 100 };
    assert.equal(isStopOut(pos, { reason: 'stop_loss', price: 98 }), true);
    assert.equal(isStopOut(pos, { reason: 'trailing_stop', price: 99 }), true);
    assert.equal(isStopOut(pos, { reason: 'trailing_stop', price: 101 }), false);
    assert.equal(isStopOut(pos, { reason: 'take_profit', price: 104 }), false);
    assert.equal(isStopOut({ side: 'short', entryPrice: 100 }, { reason: 'trailing_stop', price: 101 }), true);
  });
});

describe('risk: trailing stop', () => {
  const trail1pct = cfg({ trailingStopPct: 0.01 });
  const open100 = (c: RiskConfig) => openProtectedPosition({ entryPrice: 100, cfg: c });

  it('follows the high and holds when price falls back', () => {
    let p = open100(trail1pct);
    p = updateTrailingStop(p, bar(100, 110, 99.5), trail1pct);
    assert.equal(p.bestPrice, 110);
    assert.ok(Math.abs(p.trailingStopPrice! - 108.9) < 1e-9, `trail ${p.trailingStopPrice}`);
    p = updateTrailingStop(p, bar(109, 109.5, 105), trail1pct);
    assert.ok(Math.abs(p.trailingStopPrice! - 108.9) < 1e-9, 'loosened on a lower high');
    assert.equal(effectiveStop(p).reason, 'trailing_stop');
  });

  it('waits for the activation profit', () => {
    const c = cfg({ trailingStopPct: 0.01, trailingActivationPct: 0.05 });
    let p = updateTrailingStop(open100(c), bar(100, 104.9, 100), c);
    assert.equal(p.trailingStopPrice, undefined);
    p = updateTrailingStop(p, bar(104, 105, 103), c);
    assert.ok(Math.abs(p.trailingStopPrice! - 103.95) < 1e-9, `trail ${p.trailingStopPrice}`);
  });

  it('without trailing configured only the best price moves', () => {
    const p = updateTrailingStop(open100(DEFAULT), bar(100, 120, 99), DEFAULT, 3);
    assert.equal(p.trailingStopPrice, undefined);
    assert.equal(p.bestPrice, 120);
  });

  it('checks the candle against the old stop before trailing (no intra-candle look-ahead)', () => {
    // High 110 then low 99 in one candle: trailing first would invent an exit at 108.9.
    const c = cfg({ trailingStopPct: 0.01, takeProfitPct: 0.5 });
    const first = protectOnCandle(open100(c), bar(100, 110, 99), c);
    assert.equal(first.exit, null);
    const second = protectOnCandle(first.position, bar(109, 109.5, 108), c);
    assert.ok(second.exit && second.exit.reason === 'trailing_stop' && Math.abs(second.exit.price - 108.9) < 1e-9, JSON.stringify(second.exit));
  });

  it('property: never loosens, stays below the best price (long) and above it (short), under changing ATR', () => {
    const rng = new Prng(5);
    for (let run = 0; run < 200; run++) {
      const c = rng.next() < 0.5 ? cfg({ trailingStopPct: between(rng, 0.002, 0.1) }) : cfg({ trailingAtrMult: between(rng, 0.5, 5) });
      for (const side of ['long', 'short'] as const) {
        let p = openProtectedPosition({ entryPrice: 100, side, cfg: c });
        let mid = 100;
        for (let k = 0; k < 100; k++) {
          mid *= 1 + between(rng, -0.02, 0.02);
          const before = p.trailingStopPrice;
          p = updateTrailingStop(p, randomCandle(rng, mid, 0.01), c, mid * between(rng, 0.001, 0.05));
          if (before !== undefined) {
            assert.ok(side === 'long' ? p.trailingStopPrice! >= before : p.trailingStopPrice! <= before, `${side} trail loosened at run ${run} step ${k}`);
          }
          if (p.trailingStopPrice !== undefined) assert.ok(side === 'long' ? p.trailingStopPrice < p.bestPrice : p.trailingStopPrice > p.bestPrice, `${side} trail beyond the best price at run ${run} step ${k}`);
        }
      }
    }
  });
});

describe('risk: loss limits', () => {
  it('drawdown and daily loss', () => {
    assert.equal(drawdown(10_000, 8_500), 0.15);
    assert.equal(drawdown(10_000, 12_000), 0);
    assert.equal(drawdown(10_000, -100), 1);
    assert.equal(drawdown(0, 0), 0);
    assert.equal(dailyLoss(10_000, -500), 0.05);
    assert.equal(dailyLoss(10_000, 300), 0);
  });

  const account = { equity: 10_000, peakEquity: 10_000, dayStartEquity: 10_000, dailyPnl: 0 };
  const cases: [string, typeof account, string | null, string?][] = [
    ['calm', account, null],
    ['drawdown exactly at 15 %', { ...account, equity: 8_500, dayStartEquity: 8_500 }, 'max_drawdown', 'halted'],
    ['drawdown a cent short of 15 %', { ...account, equity: 8_500.01, dayStartEquity: 8_500.01 }, null],
    ['daily loss exactly at 5 %', { ...account, equity: 9_500, dailyPnl: -500 }, 'daily_loss_limit', 'paused'],
    ['daily loss a cent short of 5 %', { ...account, equity: 9_500.01, dailyPnl: -499.99 }, null],
    ['both: drawdown wins', { ...account, equity: 8_000, dailyPnl: -2_000 }, 'max_drawdown', 'halted'],
    ['no equity left', { ...account, equity: 0, peakEquity: 0 }, 'max_drawdown', 'halted'],
    ['unknown equity', { ...account, equity: Number.NaN }, 'max_drawdown', 'halted'],
  ];
  for (const [name, acc, limit, status] of cases) {
    it(name, () => {
      const trip = killSwitchTripped(acc, DEFAULT);
      assert.equal(trip?.limit ?? null, limit);
      if (status) assert.equal(trip?.status, status);
    });
  }

  it('property: both limits trip at the exact boundary and not a cent before', () => {
    const rng = new Prng(6);
    for (let i = 0; i < RUNS; i++) {
      const k = intBetween(rng, 1, 99);
      const c = cfg({ maxDrawdown: k / 100, dailyLossLimit: k / 100 });
      const peak = intBetween(rng, 1, 100_000) * 100; // a multiple of 100, so peak * k / 100 is an exact integer
      const atLimit = peak - (peak * k) / 100;
      assert.equal(killSwitchTripped({ equity: atLimit, peakEquity: peak, dayStartEquity: atLimit, dailyPnl: 0 }, c)?.limit, 'max_drawdown', `${peak} ${k}`);
      assert.equal(killSwitchTripped({ equity: atLimit + 0.01, peakEquity: peak, dayStartEquity: atLimit, dailyPnl: 0 }, c), null, `${peak} ${k}`);
      const dayLoss = -(peak * k) / 100;
      const day = { equity: peak + dayLoss, peakEquity: 2 * peak, dayStartEquity: peak, dailyPnl: dayLoss };
      const lenient = { ...c, maxDrawdown: 1 };
      assert.equal(killSwitchTripped(day, lenient)?.limit, 'daily_loss_limit', `${peak} ${k}`);
      assert.equal(killSwitchTripped({ ...day, equity: day.equity + 0.01, dailyPnl: dayLoss + 0.01 }, lenient), null, `${peak} ${k}`);
    }
  });
});

describe('risk: cooldown and stoploss guard', () => {
  const guard = { maxStopOuts: 3, windowBars: 24, pauseBars: 12 };
  const c = cfg({ cooldownBarsAfterStopOut: 2, stoplossGuard: guard });
  const record = (bars: number[], conf = c) => bars.reduce<StopOutState>((s, b) => recordStopOut(s, b, conf), NO_STOP_OUTS);

  it('cooldown of 2 blocks the stop-out bar and the next, exactly', () => {
    const s = record([10]);
    assert.deepEqual([10, 11, 12].map((b) => stopOutBlock(s, b)), ['cooldown', 'cooldown', null]);
  });

  it('cooldown of 0 blocks nothing', () => {
    const s = record([10], cfg({ cooldownBarsAfterStopOut: 0, stoplossGuard: null }));
    assert.equal(stopOutBlock(s, 10), null);
  });

  it('three stop-outs inside 24 bars pause for exactly 12 bars', () => {
    const s = record([0, 10, 23]);
    assert.equal(s.guardPausedUntilBar, 35);
    assert.deepEqual(s.recentStopOutBars, []);
    assert.deepEqual([23, 34, 35].map((b) => stopOutBlock(s, b)), ['stoploss_guard', 'stoploss_guard', null]);
  });

  it('a stop-out 24 bars old has left the window', () => {
    const s = record([0, 10, 24]);
    assert.equal(s.guardPausedUntilBar, 0);
    assert.deepEqual(s.recentStopOutBars, [10, 24]);
  });

  it('the count starts afresh after a pause', () => {
    const s = record([0, 1, 2, 20, 21]);
    assert.equal(s.guardPausedUntilBar, 14);
    assert.deepEqual(s.recentStopOutBars, [20, 21]);
  });

  it('no guard: stop-outs only cool down', () => {
    const s = record([0, 1, 2, 3, 4], cfg({ stoplossGuard: null }));
    assert.equal(s.guardPausedUntilBar, 0);
    assert.equal(stopOutBlock(s, 6), null);
  });

  it('refuses stop-outs out of bar order', () => {
    assert.throws(() => record([10, 9]), StopOutOrderError);
    assert.throws(() => record([-1]), StopOutOrderError);
  });

  it('property: the cooldown blocks bar b exactly when a stop-out happened in the last N bars', () => {
    const rng = new Prng(7);
    for (let run = 0; run < 300; run++) {
      const n = intBetween(rng, 0, 6);
      const conf = cfg({ cooldownBarsAfterStopOut: n, stoplossGuard: null });
      // Time moves forward: each bar records its stop-out (if any), then asks whether it may enter.
      const bars: number[] = [];
      let s = NO_STOP_OUTS;
      for (let b = 0; b < 70; b++) {
        if (b < 60 && rng.next() < 0.1) {
          bars.push(b);
          s = recordStopOut(s, b, conf);
        }
        const expected = bars.some((x) => x <= b && b < x + n);
        assert.equal(stopOutBlock(s, b) === 'cooldown', expected, `N=${n} stop-outs=${bars} bar=${b}`);
      }
    }
  });
});

describe('risk: status and entry gate', () => {
  const statuses: [TradingStatus, boolean, boolean][] = [
    ['active', true, true],
    ['paused', false, true],
    ['reduce-only', false, true],
    ['halted', false, false],
  ];
  for (const [status, open, reduce] of statuses) {
    it(`${status}: open ${open}, reduce ${reduce}, protective exits always`, () => {
      assert.equal(mayOpen(status), open);
      assert.equal(mayReduce(status), reduce);
      assert.equal(mayExitProtectively(status), true);
    });
  }

  const ok: EntryGateInput = {
    status: 'active',
    openPositions: 0,
    totalExposure: 0,
    equity: 10_000,
    peakEquity: 10_000,
    dayStartEquity: 10_000,
    dailyPnl: 0,
    stopOuts: NO_STOP_OUTS,
    currentBar: 100,
    cfg: DEFAULT,
  };
  const cooling: StopOutState = { recentStopOutBars: [99], cooldownUntilBar: 101, guardPausedUntilBar: 0 };
  const cases: [string, Partial<EntryGateInput>, string | null][] = [
    ['all clear', {}, null],
    ['halted beats everything', { status: 'halted', equity: 1, openPositions: 99 }, 'trading_halted'],
    ['paused', { status: 'paused' }, 'trading_paused'],
    ['reduce-only', { status: 'reduce-only' }, 'reduce_only'],
    ['no equity', { equity: 0 }, 'invalid_equity'],
    ['NaN exposure', { totalExposure: Number.NaN }, 'invalid_equity'],
    ['drawdown at the limit', { equity: 8_500, dayStartEquity: 8_500 }, 'max_drawdown'],
    ['daily loss at the limit', { equity: 9_500, dailyPnl: -500 }, 'daily_loss_limit'],
    ['one position below the limit', { openPositions: 2 }, null],
    ['at the position limit', { openPositions: 3 }, 'max_concurrent_positions'],
    ['exposure just under the limit', { totalExposure: 4_999.99 }, null],
    ['exposure at the limit', { totalExposure: 5_000 }, 'max_total_exposure'],
    ['cooling down', { stopOuts: cooling }, 'cooldown'],
    ['cooldown over', { stopOuts: cooling, currentBar: 101 }, null],
    ['guard pause beats cooldown', { stopOuts: { ...cooling, guardPausedUntilBar: 110 } }, 'stoploss_guard'],
  ];
  for (const [name, over, reason] of cases) {
    it(name, () => {
      const verdict = entryAllowed({ ...ok, ...over });
      assert.deepEqual(EntryVerdict.parse(verdict), verdict);
      assert.deepEqual(verdict, reason === null ? { allowed: true } : { allowed: false, reason });
    });
  }
});

describe('risk: over recorded candles', () => {
  const file = fixtureCandleFile('binanceusdm_BTC-USDT_1h.csv');

  it('BTC/USDT 1h: stops fill inside their candle and never better than the stop, targets never above the high, trails never loosen', function () {
    const { candles } = readCandleCsv(file);
    const c = cfg({ stopMode: 'atr', atrStopMult: 2, atrTargetMult: 6, trailingAtrMult: 3, cooldownBarsAfterStopOut: 3 });
    const period = 14;
    let atr: number | undefined;
    let position: ProtectedPosition | undefined;
    let stopOuts = NO_STOP_OUTS;
    const exits: Record<string, number> = { stop_loss: 0, take_profit: 0, trailing_stop: 0, gap: 0 };
    let blocked = 0;
    for (let i = 1; i < candles.length; i++) {
      const k = candles[i];
      if (position) {
        const stop = effectiveStop(position);
        const trailBefore = position.trailingStopPrice;
        const step = protectOnCandle(position, k, c, atr);
        if (step.exit) {
          const e = step.exit;
          exits[e.reason]++;
          assert.ok(e.price < k.high || (e.reason !== 'take_profit' && e.price === k.high), `exit above candle ${k.timestamp}`);
          if (e.reason !== 'take_profit') {
            assert.ok(e.price >= k.low, `stop filled below the candle ${k.timestamp}`);
            assert.ok(e.price <= stop.price, `stop filled better than the stop at ${k.timestamp}`);
            if (e.price < stop.price) exits.gap++;
          }
          if (isStopOut(position, e)) stopOuts = recordStopOut(stopOuts, i, c);
          position = undefined;
        } else {
          position = step.position;
          if (trailBefore !== undefined) assert.ok(position.trailingStopPrice! >= trailBefore, `trail loosened at ${k.timestamp}`);
        }
      }
      // Wilder ATR over closed candles only: the entry below uses bar i's values to enter at bar i+1's open.
      const tr = Math.max(k.high - k.low, Math.abs(k.high - candles[i - 1].close), Math.abs(k.low - candles[i - 1].close));
      atr = i < period ? undefined : atr === undefined ? tr : (atr * (period - 1) + tr) / period;
      if (!position && atr !== undefined && i + 1 < candles.length) {
        if (stopOutBlock(stopOuts, i)) blocked++;
        else position = openProtectedPosition({ entryPrice: candles[i + 1].open, atr, cfg: c });
      }
    }
    const total = exits.stop_loss + exits.take_profit + exits.trailing_stop;
    assert.ok(total > 50, `only ${total} exits over ${candles.length} candles`);
    assert.ok(exits.stop_loss > 0 && exits.trailing_stop > 0 && blocked > 0, JSON.stringify({ exits, blocked }));
  });
});

describe('risk: purity', () => {
  const dir = path.join(__dirname, '..', '..', 'lib', 'risk');

  it('imports only zod and sibling pure modules; no clock, randomness or process', () => {
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
      const src = fs.readFileSync(path.join(dir, f), 'utf8');
      const imports = [...src.matchAll(/from '([^']+)'/g)].map((m) => m[1]);
      for (const spec of imports) assert.ok(spec === 'zod' || spec.startsWith('./') || ['../candles', '../precision'].includes(spec), `${f} imports ${spec}`);
      assert.doesNotMatch(src, /\b(Date|Math\.random|process|require|setTimeout|performance)\b/, f);
    }
  });

  it('bundles for the Temporal workflow sandbox (which refuses Node built-ins)', async function () {
    this.timeout(60_000); // bundles the workflow code with webpack: seconds, more while other test processes run
    const quiet = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };
    const bundle = await bundleWorkflowCode({ workflowsPath: path.join(dir, 'index.ts'), logger: quiet });
    assert.ok(bundle.code.includes('checkProtectiveExit'), 'the bundle lacks the risk module');
  });
});
