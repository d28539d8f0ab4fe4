import { YEAR_MS } from './metrics';

/**
 * Compound annual growth rate over calendar time, as freqtrade reports it:
 * (final / initial) ^ (1 / years) - 1, years = (to - from) / 365 days. `metrics.annualizedReturn`
 * compounds per bar instead; the two agree when the curve has no gaps. Null when it cannot be
 * computed (no time elapsed, no capital, a negative final equity).
 */
export function cagr(initial: number, final: number, fromMs: number, toMs: number): number | null {
  const years = (toMs - fromMs) / YEAR_MS;
  if (!(initial > 0) || !(final >= 0) || !(years > 0)) return null;
  return (final / initial) ** (1 / years) - 1;
}
