import { FEATURE_PARAMS as P, FEATURE_SCHEMA } from './schema';

/**
 * The feature maths, once, as an incremental state machine. The live stream and the batch
 * matrix both drive this one kernel, so a backtest and a paper run see bit-identical vectors.
 *
 * Why not technicalindicators' own `nextValue`: measured at 6-8 us per candle for just the
 * indicators on this machine (generator per indicator, an object per tick), above the 5 us
 * budget for the whole vector; it also yields NaN on flat candles (ADX's 0/0, Bollinger %B's
 * 0/0) and rounds RSI to 2 decimals. The definitions follow technicalindicators exactly
 * (SMA-seeded EMAs, Wilder averages seeded by their first mean, ADX on Wilder sums,
 * population standard deviation) and the tests use the package as the reference.
 *
 * Rounding: none. technicalindicators' RSI always rounds to 2 decimals (`toFixed(2)`, not
 * governed by its `precision` setting); a model wants the unrounded value, and rounding would
 * make tiny input changes jump a whole step. Every other indicator is unrounded there too
 * while the `precision` config is unset.
 *
 * Degenerate markets (flat candles, zero volume) give defined numbers, never NaN/Infinity:
 * RSI 50 with no movement at all, %B 0.5 on a flat window, DI/DX 0 with zero range, volume
 * z 0 on a constant window. Windowed sums are recomputed from their ring each bar instead
 * of being updated by add/subtract, so they carry no drift and a flat window is exactly flat.
 */

const RING = 32; // >= every short window + 1 (returns 24, vol 24, Bollinger 20, volume 20)
const MASK = RING - 1;
const EMA_RING = 16; // >= slope lookback + 1
const EMA_MASK = EMA_RING - 1;
const PCT_RING = 512; // >= percentile lookback
const PCT_MASK = PCT_RING - 1;
// A window whose spread is below this fraction of its level is flat (float noise, not a move).
const FLAT_RELATIVE = 1e-12;

if (Math.max(...P.returnWindows, ...P.realizedVolWindows, P.bollinger.period, P.volumeZPeriod) >= RING) throw new Error('feature kernel: RING too small');
if (P.emaSlopeLookback >= EMA_RING || P.volPercentile.lookback > PCT_RING) throw new Error('feature kernel: ring too small');

const N_EMA = P.emaPeriods.length;

export class FeatureKernel {
  /** Candles seen so far. */
  n = 0;
  private readonly close = new Float64Array(RING);
  private readonly logRet = new Float64Array(RING); // logRet[t] = ln(c_t / c_{t-1}), t >= 1
  private readonly volume = new Float64Array(RING);
  private readonly rvolHist = new Float64Array(PCT_RING); // rvol over volPercentile.window, by bar
  // The same last `lookback` rvol values kept sorted: ranking by binary search instead of a
  // 480-value scan per bar (the scan was a third of the whole vector's cost).
  private readonly rvolSorted = new Float64Array(P.volPercentile.lookback);
  private rvolCount = 0;
  private prevHigh = 0;
  private prevLow = 0;
  private prevClose = 0;

  // RSI (Wilder), seeded with the mean of the first `period` moves.
  private gainSum = 0;
  private lossSum = 0;
  private avgGain = 0;
  private avgLoss = 0;

  // EMAs of close, seeded with their SMA; history kept for slopes.
  private readonly emaSeed = new Float64Array(N_EMA);
  private readonly ema = new Float64Array(N_EMA);
  private readonly emaHist = new Float64Array(N_EMA * EMA_RING);

  // MACD: its own fast/slow EMAs and a signal EMA over the MACD line.
  private fastSeed = 0;
  private fastEma = 0;
  private slowSeed = 0;
  private slowEma = 0;
  private signalSeed = 0;
  private signalEma = 0;

  // ATR (Wilder average of true range) and ADX (Wilder sums of TR, +DM, -DM; Wilder average of DX).
  private atrSeed = 0;
  private atr = 0;
  private sTr = 0;
  private sPdm = 0;
  private sMdm = 0;
  private dxSeed = 0;
  private adx = 0;
  private pdi = 0;
  private mdi = 0;

  /**
   * Feeds one closed candle (values already validated: finite, prices > 0, volume >= 0).
   * Writes the vector into `out` at `offset` and returns true once warm; returns false before.
   */
  update(high: number, low: number, close: number, volume: number, out: Float64Array, offset: number): boolean {
    const t = this.n++;
    const i = t & MASK;
    this.close[i] = close;
    this.volume[i] = volume;

    if (t > 0) {
      const prevClose = this.prevClose;
      const r = Math.log(close / prevClose);
      this.logRet[i] = r;
      this.updateRsi(t, close - prevClose);
      // True range and directional movement need the previous candle.
      const tr = Math.max(high - low, Math.abs(high - prevClose), Math.abs(low - prevClose));
      const up = high - this.prevHigh;
      const down = this.prevLow - low;
      this.updateAtr(t, tr);
      this.updateAdx(t, tr, up > down && up > 0 ? up : 0, down > up && down > 0 ? down : 0);
    }
    this.updateEmas(t, close);
    this.updateMacd(t, close);

    const volWindow = P.volPercentile.window;
    if (t >= volWindow) {
      const rv = this.realizedVol(t, volWindow);
      this.rvolHist[t & PCT_MASK] = rv;
      this.trackRvol(rv, t);
    }

    this.prevHigh = high;
    this.prevLow = low;
    this.prevClose = close;
    if (t < FEATURE_SCHEMA.warmup) return false;
    this.write(t, close, volume, out, offset);
    return true;
  }

  private updateRsi(t: number, change: number): void {
    const p = P.rsiPeriod;
    const gain = change > 0 ? change : 0;
    const loss = change < 0 ? -change : 0;
    if (t < p) {
      this.gainSum += gain;
      this.lossSum += loss;
    } else if (t === p) {
      this.avgGain = (this.gainSum + gain) / p;
      this.avgLoss = (this.lossSum + loss) / p;
    } else {
      this.avgGain = (this.avgGain * (p - 1) + gain) / p;
      this.avgLoss = (this.avgLoss * (p - 1) + loss) / p;
    }
  }

  private updateEmas(t: number, close: number): void {
    const h = t & EMA_MASK;
    for (let k = 0; k < N_EMA; k++) {
      const p = P.emaPeriods[k];
      if (t < p - 1) this.emaSeed[k] += close;
      else if (t === p - 1) this.ema[k] = (this.emaSeed[k] + close) / p;
      else this.ema[k] = (close - this.ema[k]) * (2 / (p + 1)) + this.ema[k];
      this.emaHist[k * EMA_RING + h] = this.ema[k];
    }
  }

  private updateMacd(t: number, close: number): void {
    const { fast, slow, signal } = P.macd;
    if (t < fast - 1) this.fastSeed += close;
    else if (t === fast - 1) this.fastEma = (this.fastSeed + close) / fast;
    else this.fastEma = (close - this.fastEma) * (2 / (fast + 1)) + this.fastEma;
    if (t < slow - 1) {
      this.slowSeed += close;
      return;
    }
    if (t === slow - 1) this.slowEma = (this.slowSeed + close) / slow;
    else this.slowEma = (close - this.slowEma) * (2 / (slow + 1)) + this.slowEma;
    const line = this.fastEma - this.slowEma;
    const s = t - (slow - 1); // index of this MACD value
    if (s < signal - 1) this.signalSeed += line;
    else if (s === signal - 1) this.signalEma = (this.signalSeed + line) / signal;
    else this.signalEma = (line - this.signalEma) * (2 / (signal + 1)) + this.signalEma;
  }

  private updateAtr(t: number, tr: number): void {
    const p = P.atrPeriod;
    if (t < p) this.atrSeed += tr;
    else if (t === p) this.atr = (this.atrSeed + tr) / p;
    else this.atr = (tr - this.atr) * (1 / p) + this.atr;
  }

  private updateAdx(t: number, tr: number, pdm: number, mdm: number): void {
    const p = P.adxPeriod;
    if (t <= p) {
      this.sTr += tr;
      this.sPdm += pdm;
      this.sMdm += mdm;
      if (t < p) return;
    } else {
      this.sTr = this.sTr - this.sTr / p + tr;
      this.sPdm = this.sPdm - this.sPdm / p + pdm;
      this.sMdm = this.sMdm - this.sMdm / p + mdm;
    }
    // Zero range over the whole window (a dead market): no direction, not 0/0.
    this.pdi = this.sTr > 0 ? (this.sPdm * 100) / this.sTr : 0;
    this.mdi = this.sTr > 0 ? (this.sMdm * 100) / this.sTr : 0;
    const diSum = this.pdi + this.mdi;
    const dx = diSum > 0 ? (Math.abs(this.pdi - this.mdi) / diSum) * 100 : 0;
    const d = t - p; // index of this DX value
    if (d < p - 1) this.dxSeed += dx;
    else if (d === p - 1) this.adx = (this.dxSeed + dx) / p;
    else this.adx = (dx - this.adx) * (1 / p) + this.adx;
  }

  private realizedVol(t: number, bars: number): number {
    let sumSq = 0;
    for (let j = 0; j < bars; j++) {
      const r = this.logRet[(t - j) & MASK];
      sumSq += r * r;
    }
    return Math.sqrt(sumSq / bars);
  }

  private write(t: number, close: number, volume: number, out: Float64Array, o: number): void {
    const c = this.close;
    for (const w of P.returnWindows) out[o++] = Math.log(close / c[(t - w) & MASK]);
    for (const w of P.realizedVolWindows) out[o++] = this.realizedVol(t, w);
    out[o++] = this.volPercentile(t);

    const { avgGain, avgLoss } = this;
    out[o++] = avgLoss === 0 ? (avgGain === 0 ? 50 : 100) : 100 - 100 / (1 + avgGain / avgLoss);

    const line = this.fastEma - this.slowEma;
    out[o++] = line / close;
    out[o++] = this.signalEma / close;
    out[o++] = (line - this.signalEma) / close;

    const bbP = P.bollinger.period;
    let sum = 0;
    for (let j = 0; j < bbP; j++) sum += c[(t - j) & MASK];
    const mid = sum / bbP;
    let sq = 0;
    for (let j = 0; j < bbP; j++) {
      const d = c[(t - j) & MASK] - mid;
      sq += d * d;
    }
    const sd = Math.sqrt(sq / bbP);
    const upper = mid + sd * P.bollinger.stdDev;
    const lower = mid - sd * P.bollinger.stdDev;
    out[o++] = sd > FLAT_RELATIVE * mid ? (close - lower) / (upper - lower) : 0.5;
    out[o++] = (upper - lower) / mid;

    out[o++] = this.atr;
    out[o++] = this.atr / close;

    const back = (t - P.emaSlopeLookback) & EMA_MASK;
    for (let k = 0; k < N_EMA; k++) out[o++] = close / this.ema[k] - 1;
    for (let k = 0; k < N_EMA; k++) out[o++] = Math.log(this.ema[k] / this.emaHist[k * EMA_RING + back]) / P.emaSlopeLookback;

    out[o++] = this.adx;
    out[o++] = this.pdi;
    out[o++] = this.mdi;

    const vP = P.volumeZPeriod;
    const v = this.volume;
    let vSum = 0;
    for (let j = 0; j < vP; j++) vSum += v[(t - j) & MASK];
    const vMean = vSum / vP;
    let vSq = 0;
    for (let j = 0; j < vP; j++) {
      const d = v[(t - j) & MASK] - vMean;
      vSq += d * d;
    }
    const vSd = Math.sqrt(vSq / vP);
    out[o] = vSd > FLAT_RELATIVE * vMean && vSd > 0 ? (volume - vMean) / vSd : 0;
  }

  private trackRvol(rv: number, t: number): void {
    const sorted = this.rvolSorted;
    const n = sorted.length;
    let size = this.rvolCount;
    if (size === n) {
      // Drop the value leaving the window (any copy of an equal value is the same multiset).
      const leaving = this.rvolHist[(t - n) & PCT_MASK];
      const at = lowerBound(sorted, size, leaving);
      sorted.copyWithin(at, at + 1, size);
      size--;
    }
    const at = lowerBound(sorted, size, rv);
    sorted.copyWithin(at + 1, at, size);
    sorted[at] = rv;
    this.rvolCount = size + 1;
  }

  /** Mid-rank of the newest realized vol among the last `lookback` ones: 0 lowest, 1 highest, 0.5 all equal. */
  private volPercentile(t: number): number {
    const n = this.rvolCount;
    const cur = this.rvolHist[t & PCT_MASK];
    const less = lowerBound(this.rvolSorted, n, cur);
    const equal = upperBound(this.rvolSorted, n, cur) - less;
    return (less + 0.5 * (equal - 1)) / (n - 1);
  }
}

/** First index in sorted[0..size) whose value is >= x. */
function lowerBound(sorted: Float64Array, size: number, x: number): number {
  let lo = 0;
  let hi = size;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index in sorted[0..size) whose value is > x. */
function upperBound(sorted: Float64Array, size: number, x: number): number {
  let lo = 0;
  let hi = size;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
