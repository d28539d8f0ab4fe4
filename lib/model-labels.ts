/**
 * What a model's prediction means, stated once: training labels its rows with it
 * (models/dataset.ts) and the live hit rate scores the served predictions against it
 * (activities/metrics/model-outcomes.ts), so "right" means the same thing in both places.
 *
 * Label: 1 when a long entered at the decision candle's close and exited `horizon` candles later
 * would have made money after a round trip of fees: ln(close[t+H] / close[t]) > -ln(1 - cost).
 */

export interface LabelOptions {
  /** Candles between entry and exit. */
  horizon: number;
  /** Round-trip cost as a fraction of notional (2 x taker fee, plus slippage if wanted). */
  roundTripCost: number;
}

export const DEFAULT_LABELS: LabelOptions = { horizon: 4, roundTripCost: 0.002 };

/** The log return a round trip must beat: ln(1 / (1 - cost)). */
export function costLogReturn(roundTripCost: number): number {
  return -Math.log(1 - roundTripCost);
}

/** The realized label of a decision at `closeAtDecision` once the candle `horizon` later closed at `closeAtHorizon`. */
export function forwardLabel(closeAtDecision: number, closeAtHorizon: number, roundTripCost: number): { logReturn: number; up: boolean } {
  const logReturn = Math.log(closeAtHorizon / closeAtDecision);
  return { logReturn, up: logReturn > costLogReturn(roundTripCost) };
}
