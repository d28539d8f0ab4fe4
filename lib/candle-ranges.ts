/**
 * Spans of candle open times, for the candle store's coverage: what was downloaded, what is
 * missing, where the gaps are. A span is [from, to) in epoch ms of candle OPEN times, so the
 * span of one candle opened at t on timeframe tf is [t, t + tf).
 *
 * The grid of a timeframe is the multiples of its length since the epoch: true of every
 * timeframe from 1m to 1d on the exchanges we know (daily candles open at 00:00 UTC), not of
 * weekly ones (Binance opens them on Mondays; the epoch was a Thursday), which the store refuses.
 */

export interface TimeRange {
  from: number;
  to: number;
}

/** Sorted, with overlapping and touching spans joined; empty spans dropped. */
export function mergeRanges(ranges: readonly TimeRange[]): TimeRange[] {
  const sorted = ranges.filter((r) => r.to > r.from).sort((a, b) => a.from - b.from || a.to - b.to);
  const out: TimeRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.from <= last.to) last.to = Math.max(last.to, r.to);
    else out.push({ from: r.from, to: r.to });
  }
  return out;
}

/** The parts of `from` that no span of `minus` covers. */
export function subtractRanges(from: readonly TimeRange[], minus: readonly TimeRange[]): TimeRange[] {
  const cut = mergeRanges(minus);
  const out: TimeRange[] = [];
  for (const r of mergeRanges(from)) {
    let start = r.from;
    for (const m of cut) {
      if (m.to <= start) continue;
      if (m.from >= r.to) break;
      if (m.from > start) out.push({ from: start, to: m.from });
      start = Math.max(start, m.to);
      if (start >= r.to) break;
    }
    if (start < r.to) out.push({ from: start, to: r.to });
  }
  return out;
}

/** The parts of `a` that `b` also covers. */
export function intersectRanges(a: readonly TimeRange[], b: readonly TimeRange[]): TimeRange[] {
  return subtractRanges(a, subtractRanges(a, b));
}

/** The first grid time at or after `ms`. */
export function alignUp(ms: number, timeframeMs: number): number {
  return Math.ceil(ms / timeframeMs) * timeframeMs;
}

/** The last grid time at or before `ms`. */
export function alignDown(ms: number, timeframeMs: number): number {
  return Math.floor(ms / timeframeMs) * timeframeMs;
}

/** How many candles of the grid open inside the span. */
export function candleSlots(range: TimeRange, timeframeMs: number): number {
  const first = alignUp(range.from, timeframeMs);
  return first >= range.to ? 0 : Math.ceil((range.to - first) / timeframeMs);
}

/** Runs of consecutive candles (no missing grid time between them) as spans. Input sorted ascending. */
export function runsOf(openTimes: readonly number[], timeframeMs: number): TimeRange[] {
  const out: TimeRange[] = [];
  for (const t of openTimes) {
    const last = out[out.length - 1];
    if (last && t === last.to) last.to = t + timeframeMs;
    else if (!last || t > last.to) out.push({ from: t, to: t + timeframeMs });
  }
  return out;
}
