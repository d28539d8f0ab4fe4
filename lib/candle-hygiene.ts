import type { Candle } from './candles';

/**
 * Candle hygiene: what a series of candles must pass before a decision may use it.
 *
 * Only repairs that cannot change a price are made: dropping the still-forming candle,
 * sorting rows that arrived out of order, dropping exact duplicates. Everything else is
 * reported and the candle is marked not tradable: a conflicting duplicate (same open time,
 * different values) has no safe winner, a NaN or an inverted high/low cannot be fixed by
 * guessing, and the first candle after a gap spans an outage that its returns do not show.
 * Gaps are never filled: a synthetic candle is a price nobody traded at.
 *
 * Pure: no clock, no I/O; `nowMs` is passed in (a workflow passes its deterministic time).
 */

export type CandleIssueKind =
  /** Repaired: a candle still forming at `nowMs` (open + timeframe > now) was dropped. */
  | 'unclosed'
  /** Repaired: rows were sorted by open time. */
  | 'out_of_order'
  /** Repaired: an identical row with the same open time was dropped. */
  | 'duplicate'
  /** Not repaired: rows with the same open time and different values; the first is kept, untradable. */
  | 'conflicting_duplicate'
  /** Dropped, not repaired: the open time is not an integer, so the row has no place in the series. */
  | 'bad_timestamp'
  /** Missing candles before this one; this candle is untradable. */
  | 'gap'
  /** The open time is not on the series' timeframe grid (wrong timeframe, or a bad row). */
  | 'off_grid'
  | 'non_finite'
  | 'non_positive_price'
  | 'negative_volume'
  | 'high_below_low'
  /** high < max(open, close). */
  | 'high_below_body'
  /** low > min(open, close). */
  | 'low_above_body'
  /** At `nowMs` the newest closed candle is missing: deciding on this series means deciding on old prices. */
  | 'stale';

export interface CandleIssue {
  kind: CandleIssueKind;
  /** True when the check fixed it (the candle is fine to use); false when it is only reported. */
  repaired: boolean;
  timestamp: number;
  /** Index in the checked series, or -1 when the row was dropped. */
  index: number;
  /** Index in the input array (for the CSV reader: maps to a file line). */
  inputIndex: number;
  message: string;
  /** For 'gap' and 'stale': how many candles are missing. */
  missingCandles?: number;
}

export interface CandleCheck {
  /** Sorted, de-duplicated, closed candles; possibly still containing untradable ones. */
  candles: Candle[];
  issues: CandleIssue[];
  /** Per candle of `candles`: false when it failed a check the decision must not trade through. */
  tradable: boolean[];
  /** Per candle of `candles`: its index in the input array. */
  inputIndex: number[];
}

export interface CheckOptions {
  /** When given, unclosed candles are dropped and a missing newest candle is reported as 'stale'. */
  nowMs?: number;
}

/** The closed candles only: a candle opened at t is final at t + timeframe, not before. */
export function closedCandles(candles: readonly Candle[], nowMs: number, timeframeMs: number): Candle[] {
  return candles.filter((c) => c.timestamp + timeframeMs <= nowMs);
}

/** Open time of the newest candle that is closed at `nowMs` on a grid with the given phase. */
export function lastClosedOpenTime(nowMs: number, timeframeMs: number, phaseMs = 0): number {
  return Math.floor((nowMs - phaseMs) / timeframeMs) * timeframeMs + phaseMs - timeframeMs;
}

/** The most common spacing between consecutive open times (the timeframe the data really has). */
export function inferTimeframeMs(candles: readonly Candle[]): number | undefined {
  const counts = new Map<number, number>();
  for (let i = 1; i < candles.length; i++) {
    const d = candles[i].timestamp - candles[i - 1].timestamp;
    if (d > 0) counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  let best: number | undefined;
  let bestCount = 0;
  for (const [d, n] of counts) if (n > bestCount || (n === bestCount && d < (best ?? Infinity))) [best, bestCount] = [d, n];
  return best;
}

export function checkCandles(input: readonly Candle[], timeframeMs: number, opts: CheckOptions = {}): CandleCheck {
  if (!(Number.isSafeInteger(timeframeMs) && timeframeMs > 0)) throw new RangeError(`timeframeMs must be a positive integer, got ${timeframeMs}`);
  const issues: CandleIssue[] = [];
  const iso = (ts: number) => (Number.isFinite(ts) ? new Date(ts).toISOString() : String(ts));

  // 1. Rows that cannot be placed, and the still-forming candle.
  let order: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const ts = input[i].timestamp;
    if (!Number.isSafeInteger(ts)) {
      issues.push({ kind: 'bad_timestamp', repaired: false, timestamp: ts, index: -1, inputIndex: i, message: `open time ${ts} is not an integer of epoch ms; row dropped` });
    } else if (opts.nowMs !== undefined && ts + timeframeMs > opts.nowMs) {
      issues.push({ kind: 'unclosed', repaired: true, timestamp: ts, index: -1, inputIndex: i, message: `candle ${iso(ts)} is still forming at ${iso(opts.nowMs)}; dropped` });
    } else {
      order.push(i);
    }
  }

  // 2. Order: a stable sort keeps same-time rows in arrival order, so "first" below means first received.
  let runningMax = -Infinity;
  const late: number[] = [];
  for (const i of order) {
    const ts = input[i].timestamp;
    if (ts < runningMax) late.push(i);
    else runningMax = ts;
  }
  if (late.length > 0) {
    for (const i of late) {
      const ts = input[i].timestamp;
      issues.push({ kind: 'out_of_order', repaired: true, timestamp: ts, index: -1, inputIndex: i, message: `candle ${iso(ts)} arrived after a later one; sorted` });
    }
    order = [...order].sort((a, b) => input[a].timestamp - input[b].timestamp || a - b);
  }

  // 3. Duplicates.
  const kept: number[] = [];
  const conflicted = new Set<number>();
  for (const i of order) {
    const prev = kept.length > 0 ? kept[kept.length - 1] : -1;
    if (prev >= 0 && input[prev].timestamp === input[i].timestamp) {
      const ts = input[i].timestamp;
      if (sameValues(input[prev], input[i])) {
        issues.push({ kind: 'duplicate', repaired: true, timestamp: ts, index: -1, inputIndex: i, message: `candle ${iso(ts)} repeated with identical values; dropped` });
      } else {
        conflicted.add(kept.length - 1);
        issues.push({
          kind: 'conflicting_duplicate', repaired: false, timestamp: ts, index: kept.length - 1, inputIndex: i,
          message: `candle ${iso(ts)} appears twice with different values (${describe(input[prev])} vs ${describe(input[i])}); kept the first, untradable`,
        });
      }
      continue;
    }
    kept.push(i);
  }

  const candles = kept.map((i) => input[i]);
  const tradable = new Array<boolean>(candles.length).fill(true);
  for (const k of conflicted) tradable[k] = false;
  const flag = (k: number, kind: CandleIssueKind, message: string, missingCandles?: number) => {
    tradable[k] = false;
    const issue: CandleIssue = { kind, repaired: false, timestamp: candles[k].timestamp, index: k, inputIndex: kept[k], message };
    if (missingCandles !== undefined) issue.missingCandles = missingCandles;
    issues.push(issue);
  };

  // 4. Values.
  for (let k = 0; k < candles.length; k++) {
    const c = candles[k];
    // The message's date only when there is a problem: every decision checks its candle, and
    // formatting a date per candle was a measurable part of a backtest (bench/backtest.ts).
    const at = () => `candle ${iso(c.timestamp)}`;
    if (!(Number.isFinite(c.open) && Number.isFinite(c.high) && Number.isFinite(c.low) && Number.isFinite(c.close) && Number.isFinite(c.volume))) {
      flag(k, 'non_finite', `${at()} has a non-finite value (${describe(c)})`);
      continue;
    }
    if (c.open <= 0 || c.high <= 0 || c.low <= 0 || c.close <= 0) flag(k, 'non_positive_price', `${at()} has a price <= 0 (${describe(c)})`);
    if (c.volume < 0) flag(k, 'negative_volume', `${at()} has negative volume ${c.volume}`);
    if (c.high < c.low) flag(k, 'high_below_low', `${at()} has high ${c.high} < low ${c.low}`);
    if (c.high < Math.max(c.open, c.close)) flag(k, 'high_below_body', `${at()} has high ${c.high} below max(open ${c.open}, close ${c.close})`);
    if (c.low > Math.min(c.open, c.close)) flag(k, 'low_above_body', `${at()} has low ${c.low} above min(open ${c.open}, close ${c.close})`);
  }

  // 5. Spacing. The grid's phase is the most common open time modulo the timeframe, so weekly
  // candles that open on Mondays (epoch 0 was a Thursday) are on grid.
  const phase = gridPhase(candles, timeframeMs);
  let prevOnGrid = -1;
  for (let k = 0; k < candles.length; k++) {
    const ts = candles[k].timestamp;
    if (mod(ts - phase, timeframeMs) !== 0) {
      flag(k, 'off_grid', `candle ${iso(ts)} is off the ${timeframeMs / 1000}s grid (offset ${mod(ts - phase, timeframeMs)} ms)`);
      continue;
    }
    if (prevOnGrid >= 0) {
      const missing = (ts - candles[prevOnGrid].timestamp) / timeframeMs - 1;
      if (missing > 0) flag(k, 'gap', `${missing} candle(s) missing before ${iso(ts)} (after ${iso(candles[prevOnGrid].timestamp)})`, missing);
    }
    prevOnGrid = k;
  }

  // 6. Freshness.
  if (opts.nowMs !== undefined && candles.length > 0) {
    const last = candles.length - 1;
    const expected = lastClosedOpenTime(opts.nowMs, timeframeMs, phase);
    if (candles[last].timestamp < expected) {
      const missing = Math.floor((expected - candles[last].timestamp) / timeframeMs);
      flag(last, 'stale', `newest candle opened ${iso(candles[last].timestamp)}, but ${iso(expected)} has closed by ${iso(opts.nowMs)}: ${missing} newest candle(s) missing`, missing);
    }
  }

  // Sorted rows keep their place in the series; point their issues at it.
  const position = new Map(kept.map((i, k) => [i, k]));
  for (const issue of issues) if (issue.kind === 'out_of_order') issue.index = position.get(issue.inputIndex) ?? -1;
  const key = (ts: number) => (Number.isFinite(ts) ? ts : -Infinity);
  issues.sort((a, b) => key(a.timestamp) - key(b.timestamp) || 0);
  return { candles, issues, tradable, inputIndex: kept };
}

/**
 * True when `checkCandles(previous ? [previous, candle] : [candle], timeframeMs, { nowMs })` would
 * report no issue at all: both closed, in order one timeframe apart on the same grid, sane values,
 * and `candle` the newest closed one. Every decision checks its candle against the one before, and
 * building the general check's report (arrays, a map, closures) for a clean pair was ~7 % of a
 * backtest (bench/backtest.ts); prepareCandle asks this first and runs the full check only when it
 * says no. Equivalence with checkCandles is tested on random pairs (test/candle-hygiene.test.ts).
 */
export function isCleanCandle(candle: Candle, previous: Candle | undefined, timeframeMs: number, nowMs: number): boolean {
  if (!(Number.isSafeInteger(timeframeMs) && timeframeMs > 0)) return false;
  const ts = candle.timestamp;
  if (!Number.isSafeInteger(ts) || ts + timeframeMs > nowMs || !saneValues(candle)) return false;
  const phase = mod(ts, timeframeMs);
  if (previous !== undefined) {
    const pts = previous.timestamp;
    if (!Number.isSafeInteger(pts) || ts - pts !== timeframeMs || !saneValues(previous)) return false;
  }
  return ts >= lastClosedOpenTime(nowMs, timeframeMs, phase);
}

function saneValues(c: Candle): boolean {
  const { open, high, low, close, volume } = c;
  return (
    Number.isFinite(open) && Number.isFinite(high) && Number.isFinite(low) && Number.isFinite(close) && Number.isFinite(volume) &&
    open > 0 && high > 0 && low > 0 && close > 0 && volume >= 0 &&
    high >= low && high >= Math.max(open, close) && low <= Math.min(open, close)
  );
}

/** Count of issues per kind, for logs and summaries. */
export function countIssues(issues: readonly CandleIssue[]): Partial<Record<CandleIssueKind, number>> {
  const out: Partial<Record<CandleIssueKind, number>> = {};
  for (const i of issues) out[i.kind] = (out[i.kind] ?? 0) + 1;
  return out;
}

function sameValues(a: Candle, b: Candle): boolean {
  return Object.is(a.open, b.open) && Object.is(a.high, b.high) && Object.is(a.low, b.low) && Object.is(a.close, b.close) && Object.is(a.volume, b.volume);
}

function describe(c: Candle): string {
  return `o=${c.open} h=${c.high} l=${c.low} c=${c.close} v=${c.volume}`;
}

function mod(a: number, m: number): number {
  return ((a % m) + m) % m;
}

function gridPhase(candles: readonly Candle[], timeframeMs: number): number {
  const counts = new Map<number, number>();
  let best = 0;
  let bestCount = 0;
  for (const c of candles) {
    const p = mod(c.timestamp, timeframeMs);
    const n = (counts.get(p) ?? 0) + 1;
    counts.set(p, n);
    if (n > bestCount) [best, bestCount] = [p, n];
  }
  return best;
}

/**
 * Issue kinds that keep a candle out of the candle store: its values cannot be trusted, or its
 * place in the series is unknown. A gap or a stale series says something about the series, not
 * about the candle, and does not.
 */
const KEEPS_OUT_OF_STORE: ReadonlySet<CandleIssueKind> = new Set([
  'conflicting_duplicate',
  'bad_timestamp',
  'off_grid',
  'non_finite',
  'non_positive_price',
  'negative_volume',
  'high_below_low',
  'high_below_body',
  'low_above_body',
]);

/**
 * The candles of a page fetched from an exchange that may be stored, and for each of the
 * others the (first) issue that kept it out. Closed at `nowMs` only; open times on the epoch grid of the timeframe (what
 * the store requires: lib/candle-ranges.ts). Both rows of a conflicting duplicate stay out:
 * neither is known to be right.
 */
export function storableCandles(input: readonly Candle[], timeframeMs: number, nowMs: number): { candles: Candle[]; rejected: CandleIssue[] } {
  const check = checkCandles(input, timeframeMs, { nowMs });
  const out = new Set<number>();
  const rejected: CandleIssue[] = [];
  for (const issue of check.issues) {
    // One issue per candle kept out (a broken candle often fails several checks).
    if (!KEEPS_OUT_OF_STORE.has(issue.kind) || (issue.index >= 0 && out.has(issue.index))) continue;
    rejected.push(issue);
    if (issue.index >= 0) out.add(issue.index);
  }
  check.candles.forEach((c, k) => {
    if (out.has(k) || mod(c.timestamp, timeframeMs) === 0) return;
    out.add(k);
    rejected.push({ kind: 'off_grid', repaired: false, timestamp: c.timestamp, index: k, inputIndex: check.inputIndex[k], message: `candle ${new Date(c.timestamp).toISOString()} does not open on the ${timeframeMs / 1000}s grid of the epoch` });
  });
  return { candles: check.candles.filter((_, k) => !out.has(k)), rejected };
}
