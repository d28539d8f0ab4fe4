import { alignEnd, defineStrategy, ti, z } from '../../lib/strategy';

/**
 * `model-trend`: the model ensemble's signal, taken only in the direction of the trend.
 *
 * What it trades: it buys when the ensemble's probability of a rise (`ctx.model.probUp`) reaches
 * the model's entry threshold AND price is above its own EMA(`trendPeriod`) with that EMA rising
 * over the last `slopeLookback` candles. Why: a classifier's edge is small and noisy; most of its
 * false "up" calls in a falling market are the ones a trend filter removes, and a trend follower
 * gains from a second, independent opinion on timing.
 *
 * How it leaves: when the model's probability falls to its exit threshold, or when the trend
 * breaks (close below the EMA and the EMA falling). Without a usable model signal (no model, or
 * `ok: false`) it makes no entries and keeps the trend exit: leaving is never the risky side.
 *
 * Its hooks: `model: ['ensemble']` (the engine runs the ensemble for it: a backtest needs
 * `--models DIR` from `trader train`), `indicators()` (the EMA, with technicalindicators),
 * `confidence` (the model's own confidence in [0, 1]: the engine scales the position size with it
 * as the risk config's sizing does), `tag`. Stops and targets: the risk config's.
 *
 * Thresholds: the model's own fitted pair (`model.enterProb` / `model.exitProb`, from its
 * validation data) when its signal carries one and `useModelThresholds` is on; else the
 * `enterProb` / `exitProb` parameters.
 *
 * Warm-up: an EMA is recursive. ti's EMA starts from the SMA of its first `period` candles, and
 * that seed's weight after n more candles is (1 - 2/(period+1))^n: below 1e-6 after
 * ln(1e-6) / ln(1 - 2/(period+1)) candles, about 7 times the period (691 for the largest period
 * allowed, 100). The slope compares with the EMA `slopeLookback` (at most 24) candles earlier, which
 * must be settled too: `warmup` = 100 + 691 + 24 = 815.
 */

const MAX_TREND = 100;
const MAX_SLOPE = 24;
const SETTLED = 1e-6;
/** Candles an EMA of `period` needs: its SMA seed, then until the seed weighs less than SETTLED. */
const emaWarmup = (period: number): number => period + Math.ceil(Math.log(SETTLED) / Math.log(1 - 2 / (period + 1)));

const Params = z.object({
  /** The trend line: EMA of the close over this many candles. */
  trendPeriod: z.number().int().min(5).max(MAX_TREND).default(50),
  /** The EMA is rising when it is above its value this many candles ago. */
  slopeLookback: z.number().int().min(1).max(MAX_SLOPE).default(10),
  /** Use the thresholds the model carries (fitted on its validation data) when it has them. */
  useModelThresholds: z.boolean().default(true),
  /** Fallback: enter at or above this probability of a rise... */
  enterProb: z.number().gt(0).lt(1).default(0.55),
  /** ...and leave at or below this one. */
  exitProb: z.number().gt(0).lt(1).default(0.45),
  /** No entry when the model's confidence is below this (0: any). */
  minConfidence: z.number().min(0).max(1).default(0),
});
type Params = z.infer<typeof Params>;


/** A probability strictly inside (0, 1), or undefined. */
const prob = (x: number | undefined): number | undefined => (x !== undefined && Number.isFinite(x) && x > 0 && x < 1 ? x : undefined);

export default defineStrategy<Params>({
  name: 'model-trend',
  version: '1.0.0',
  description: "The model ensemble's P(up) at its thresholds, only above a rising EMA; the model's confidence sizes the entry.",
  warmup: emaWarmup(MAX_TREND) + MAX_SLOPE, // 815
  params: Params,
  model: ['ensemble'],
  search: {
    trendPeriod: { type: 'int', low: 20, high: 100, step: 5 },
    slopeLookback: { type: 'int', low: 3, high: 24 },
    enterProb: { type: 'float', low: 0.5, high: 0.7 },
    exitProb: { type: 'float', low: 0.3, high: 0.5, space: 'exit' },
    minConfidence: { type: 'float', low: 0, high: 0.5 },
  },
  indicators(candles, p) {
    const ema = alignEnd(ti.EMA.calculate({ period: p.trendPeriod, values: candles.map((c) => c.close) }), candles.length);
    // The EMA slopeLookback candles before each row (NaN where there is none): still causal.
    const emaBefore = new Float64Array(candles.length).fill(NaN);
    for (let i = p.slopeLookback; i < candles.length; i++) emaBefore[i] = ema[i - p.slopeLookback];
    return { ema, emaBefore };
  },
  decide({ candle, indicator, model, position, params: p }) {
    const ema = indicator('ema');
    const emaBefore = indicator('emaBefore');
    const trendReady = Number.isFinite(ema) && Number.isFinite(emaBefore);
    const uptrend = trendReady && candle.close > ema && ema > emaBefore;
    const trendBroken = trendReady && candle.close < ema && ema < emaBefore;

    const probUp = model?.ok === true ? prob(model.probUp) : undefined;
    let enterAt = p.enterProb;
    let exitAt = p.exitProb;
    const own = { enter: prob(model?.enterProb), exit: prob(model?.exitProb) };
    if (p.useModelThresholds && own.enter !== undefined && own.exit !== undefined && own.exit < own.enter) {
      enterAt = own.enter;
      exitAt = own.exit;
    }
    const f = (x: number) => x.toFixed(3);

    if (position) {
      if (probUp !== undefined && probUp <= exitAt) return { exit: true, score: probUp, reason: `model P(up) ${f(probUp)} <= ${f(exitAt)}` };
      if (trendBroken) return { exit: true, score: probUp ?? 0, reason: `trend broke: close under a falling EMA(${p.trendPeriod})` };
      return { exit: false, score: probUp ?? 0, reason: probUp === undefined ? 'holding; no usable model signal' : `holding; model P(up) ${f(probUp)}` };
    }
    if (probUp === undefined) return { enter: false, score: 0, reason: model === undefined ? 'no model signal' : model.ok ? 'model signal without a probability' : `model error: ${model.error ?? 'unknown'}` };
    const confidence = model?.confidence !== undefined && Number.isFinite(model.confidence) ? Math.max(0, Math.min(1, model.confidence)) : undefined;
    const modelLong = probUp >= enterAt;
    const confident = confidence === undefined ? p.minConfidence === 0 : confidence >= p.minConfidence;
    const enter = modelLong && uptrend && confident;
    const reason = enter
      ? `model P(up) ${f(probUp)} >= ${f(enterAt)} above a rising EMA(${p.trendPeriod})`
      : !modelLong
        ? `model P(up) ${f(probUp)} < ${f(enterAt)}`
        : !trendReady
          ? 'trend not formed yet'
          : !uptrend
            ? `model long but no uptrend (EMA(${p.trendPeriod}))`
            : `model confidence ${confidence ?? 'none'} < ${p.minConfidence}`;
    return { enter, score: probUp, reason, tag: 'model-trend', ...(confidence !== undefined ? { confidence } : {}) };
  },
});
