import { alignEnd, defineStrategy, ti, z } from '../../lib/strategy';

/**
 * `mean-reversion`: buys an oversold dip and sells it back to the mean.
 *
 * What it trades: a close below the lower Bollinger band (`bbPeriod` candles, `bbStdDev` standard
 * deviations) while RSI(`rsiPeriod`) is below `rsiOversold`, and only when the market regime is not
 * one of `blockedRegimes` (default: `bear`). Why: in a range or an uptrend, a sharp drop to the
 * bottom of the recent distribution tends to be partly undone within hours, as sellers run out;
 * in a bear regime the same drop is more often the start of the next leg down, so it stands aside.
 *
 * How it leaves:
 * - the reversion: a close back at or above the middle band (the `bbPeriod` SMA), its whole point;
 * - time: a dip that has not reverted within `maxHoldCandles` candles is not the trade it bought,
 *   so it leaves with the reason "held N candles" (read from `ctx.position.ageCandles`);
 * - the protective stop `stop: { atr: stopAtr }` on the exchange for a dip that keeps falling.
 *   `target: null`: the mean is the target, and it moves, so a fixed take-profit order is not set.
 *
 * Its hooks: `indicators()` with technicalindicators (Bollinger bands, RSI), `size` (a share of
 * the engine's maximum position: dips are bought smaller than trends), `stop`, `target`, `tag`.
 *
 * Warm-up: the Bollinger bands are a plain window (`bbPeriod` candles, at most 50). RSI is a Wilder
 * average, recursive: its seed's weight after n more candles is (1 - 1/period)^n, below 1e-6 after
 * ln(1e-6) / ln(1 - 1/period) candles: 284 for the largest period allowed (21), after the 22 candles
 * of its seed (21 changes): `warmup` is 306, so the answer does not depend on the history before it.
 */

const MAX_BB = 50;
const MAX_RSI = 21;
const SETTLED = 1e-6;
/** Candles a Wilder RSI of `period` needs: its seed (period changes), then until the seed weighs less than SETTLED. */
const wilderWarmup = (period: number): number => period + 1 + Math.ceil(Math.log(SETTLED) / Math.log(1 - 1 / period));

const Params = z.object({
  bbPeriod: z.number().int().min(5).max(MAX_BB).default(20),
  bbStdDev: z.number().gt(0).max(5).default(2),
  rsiPeriod: z.number().int().min(2).max(MAX_RSI).default(14),
  /** Enter only when RSI is below this. */
  rsiOversold: z.number().min(0).max(100).default(30),
  /** Leave a position that has not reverted after this many candles. */
  maxHoldCandles: z.number().int().min(1).max(10_000).default(48),
  /** Share of the engine's maximum position size, (0, 1]. */
  size: z.number().gt(0).max(1).default(0.5),
  /** Protective stop in ATR(14) below the entry. */
  stopAtr: z.number().gt(0).max(20).default(3),
  /** No entries in these regimes (lib/regime labels). */
  blockedRegimes: z.array(z.enum(['bull', 'bear', 'volatile', 'sideways'])).default(['bear']),
});
type Params = z.infer<typeof Params>;


export default defineStrategy<Params>({
  name: 'mean-reversion',
  version: '1.0.0',
  description: 'Buys a close under the lower Bollinger band with RSI oversold outside bear regimes; sells at the mean or after maxHoldCandles.',
  warmup: Math.max(MAX_BB, wilderWarmup(MAX_RSI)), // 306
  params: Params,
  search: {
    bbPeriod: { type: 'int', low: 10, high: 40 },
    bbStdDev: { type: 'float', low: 1.5, high: 3 },
    rsiPeriod: { type: 'int', low: 7, high: 21 },
    rsiOversold: { type: 'float', low: 15, high: 40 },
    maxHoldCandles: { type: 'int', low: 6, high: 96, space: 'exit' },
    stopAtr: { type: 'float', low: 1.5, high: 5, space: 'stop' },
  },
  indicators(candles, p) {
    const closes = candles.map((c) => c.close);
    const bands = ti.BollingerBands.calculate({ period: p.bbPeriod, stdDev: p.bbStdDev, values: closes });
    return {
      lower: alignEnd(bands.map((b) => b.lower), candles.length),
      middle: alignEnd(bands.map((b) => b.middle), candles.length),
      rsi: alignEnd(ti.RSI.calculate({ period: p.rsiPeriod, values: closes }), candles.length),
    };
  },
  decide({ candle, indicator, regime, position, params: p }) {
    const close = candle.close;
    const lower = indicator('lower');
    const middle = indicator('middle');
    const rsi = indicator('rsi');
    if (position) {
      if (Number.isFinite(middle) && close >= middle) return { exit: true, reason: `reverted: close ${close} at or above the mean ${middle.toFixed(2)}` };
      if (position.ageCandles > p.maxHoldCandles) return { exit: true, reason: `held ${position.ageCandles} candles without reverting (maxHoldCandles ${p.maxHoldCandles})` };
      return { exit: false, reason: `waiting for the mean (${position.ageCandles} candles held)` };
    }
    // A NaN (not enough candles yet) compares false: no signal.
    if (!(Number.isFinite(lower) && Number.isFinite(rsi))) return { enter: false, reason: 'indicators not ready' };
    const blocked = p.blockedRegimes.includes(regime.label);
    const dip = close < lower && rsi < p.rsiOversold;
    const enter = dip && !blocked;
    return {
      enter,
      // Depth of the dip in band widths below the lower band: the UI's number.
      score: Number.isFinite(middle) && middle > lower ? Math.max(-1, Math.min(1, (lower - close) / (middle - lower))) : 0,
      reason: enter ? `dip: close ${close} under the lower band ${lower.toFixed(2)}, RSI ${rsi}` : dip ? `dip in a ${regime.label} regime: standing aside` : 'no dip',
      tag: 'bb-rsi-dip',
      size: p.size,
      stop: { atr: p.stopAtr },
      target: null,
    };
  },
});
