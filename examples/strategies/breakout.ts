import { defineStrategy, z } from '../../lib/strategy';

/**
 * `breakout`: a Donchian channel (range) breakout, the turtle traders' entry.
 *
 * What it trades: it buys when a candle closes above the highest high of the `channel` candles
 * before it, i.e. when price leaves the range it has held for that long. Why: a market that breaks
 * out of a long range often keeps going (the range's sellers are used up), and a breakout system
 * makes its money from the few long runs, so it must let them run and cut the rest early.
 *
 * Its hooks:
 * - `indicators()`: two causal columns, vectorized over the candles (`upper`: highest high of the
 *   `channel` candles before each row; `lower`: lowest low of the `exitChannel` candles before it);
 *   a row never reads its own or a later candle's high or low for the channel;
 * - the answer's `stop: { atr: stopAtr }`: the initial protective stop, a multiple of the engine's
 *   ATR(14) below the entry (volatility-scaled, so a wide range gets a wide stop);
 * - `trailing: { atr: trailAtr, activateAtPct }`: an ATR trailing stop that follows the best price
 *   once the trade is `activateAtPct` in profit: the exit that lets a run run;
 * - `target: null`: no take-profit order (a cap would cut off exactly the runs it lives on);
 * - `exit`: a close below the `exitChannel` low (the turtles' shorter exit channel);
 * - `tag`: `donchian-<channel>`, so `trader trades` and the report tell its entries apart;
 * - optional volume confirmation (`minVolumeZ`, on the feature kernel's `volume_z_20`): off by default.
 *
 * Warm-up: the channels are plain windows, not recursive averages, so the answer on a candle
 * depends on exactly the `channel` candles before it: `warmup` is the largest `channel` the
 * schema allows plus the decision candle (201). Not a recursive indicator in sight, so it is exact.
 */

const MAX_CHANNEL = 200;

const Params = z.object({
  /** Candles the entry range spans (48 on 1h: two days). */
  channel: z.number().int().min(5).max(MAX_CHANNEL).default(48),
  /** Candles of the exit range: a close below its lowest low leaves. */
  exitChannel: z.number().int().min(2).max(MAX_CHANNEL).default(24),
  /** Initial stop, in ATR(14) below the entry. */
  stopAtr: z.number().gt(0).max(20).default(2),
  /** Trailing stop, in ATR(14) below the best price since the entry. */
  trailAtr: z.number().gt(0).max(20).default(3),
  /** The trailing stop starts once the best price is this fraction above the entry. */
  trailActivatePct: z.number().min(0).max(1).default(0.01),
  /** Minimum volume z-score of the breakout candle (feature volume_z_20); -10: no volume filter. */
  minVolumeZ: z.number().min(-10).max(10).default(-10),
});
type Params = z.infer<typeof Params>;

/** Highest high (or lowest low) of the `n` candles strictly before each row; NaN until there are `n`. */
function channel(candles: ReadonlyArray<{ high: number; low: number }>, n: number, side: 'high' | 'low'): Float64Array {
  const out = new Float64Array(candles.length).fill(NaN);
  for (let i = n; i < candles.length; i++) {
    let v = side === 'high' ? -Infinity : Infinity;
    for (let j = i - n; j < i; j++) v = side === 'high' ? Math.max(v, candles[j].high) : Math.min(v, candles[j].low);
    out[i] = v;
  }
  return out;
}

export default defineStrategy<Params>({
  name: 'breakout',
  version: '1.0.0',
  description: 'Donchian range breakout: buys a close above the highest high of N candles; ATR stop and ATR trailing exit.',
  warmup: MAX_CHANNEL + 1,
  params: Params,
  search: {
    channel: { type: 'int', low: 20, high: 120, step: 4 },
    exitChannel: { type: 'int', low: 6, high: 60, step: 2, space: 'exit' },
    stopAtr: { type: 'float', low: 1, high: 4, space: 'stop' },
    trailAtr: { type: 'float', low: 1.5, high: 6, space: 'stop' },
    trailActivatePct: { type: 'float', low: 0, high: 0.05, space: 'stop' },
  },
  indicators(candles, p) {
    return { upper: channel(candles, p.channel, 'high'), lower: channel(candles, p.exitChannel, 'low') };
  },
  decide({ candle, indicator, feature, position, params: p }) {
    const upper = indicator('upper');
    const lower = indicator('lower');
    const close = candle.close;
    if (position) {
      // In a position: the stop and the trailing stop rest on the exchange; the channel exit is ours.
      const exit = Number.isFinite(lower) && close < lower;
      return { exit, reason: exit ? `close ${close} below the ${p.exitChannel}-candle low ${lower}` : 'in the trend' };
    }
    if (!Number.isFinite(upper)) return { enter: false, reason: 'channel not formed yet' };
    const volumeZ = feature('volume_z_20');
    const volumeOk = p.minVolumeZ <= -10 || (Number.isFinite(volumeZ) && volumeZ >= p.minVolumeZ);
    const enter = close > upper && volumeOk;
    return {
      enter,
      // How far past the range, in share of the range's top: the UI's number.
      score: Math.max(-1, Math.min(1, (close - upper) / upper / 0.01)),
      reason: enter ? `close ${close} above the ${p.channel}-candle high ${upper}` : close > upper ? `breakout on thin volume (z ${volumeZ.toFixed(2)})` : 'inside the range',
      tag: `donchian-${p.channel}`,
      stop: { atr: p.stopAtr },
      target: null,
      trailing: { atr: p.trailAtr, activateAtPct: p.trailActivatePct },
    };
  },
});
