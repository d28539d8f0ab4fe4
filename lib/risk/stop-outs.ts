import { z } from 'zod';
import type { RiskConfig } from './config';

/**
 * Per-symbol memory of stop-outs, for the cooldown and the stoploss guard. Bars are integer
 * indices of closed candles on the trading timeframe (e.g. floor(openTime / timeframeMs)), so
 * the state survives continue-as-new and reads the same in a backtest. A stop-out that happens
 * inside candle b is recorded at bar b; the decision made on the close of b is the first one
 * it can block. "Until" bars are exclusive: entries are allowed again when currentBar >= until.
 */
export const StopOutState = z.object({
  /** Stop-outs still inside the guard window, ascending. */
  recentStopOutBars: z.array(z.number().int().nonnegative()),
  cooldownUntilBar: z.number().int().nonnegative(),
  guardPausedUntilBar: z.number().int().nonnegative(),
});
export type StopOutState = z.infer<typeof StopOutState>;

export const NO_STOP_OUTS: StopOutState = Object.freeze({ recentStopOutBars: Object.freeze([]) as unknown as number[], cooldownUntilBar: 0, guardPausedUntilBar: 0 });

export class StopOutOrderError extends RangeError {
  override name = 'StopOutOrderError';
}

/**
 * Records a stop-out at `bar`. The cooldown blocks bars bar .. bar+cooldown-1. When the guard
 * trips it blocks bar .. bar+pauseBars-1 and forgets the stop-outs that tripped it, so the
 * count starts afresh after the pause instead of re-tripping on the same losses.
 */
export function recordStopOut(state: StopOutState, bar: number, cfg: Pick<RiskConfig, 'cooldownBarsAfterStopOut' | 'stoplossGuard'>): StopOutState {
  const last = state.recentStopOutBars[state.recentStopOutBars.length - 1];
  if (!Number.isInteger(bar) || bar < 0) throw new StopOutOrderError(`a stop-out bar is a non-negative integer, got ${bar}`);
  if (last !== undefined && bar < last) throw new StopOutOrderError(`stop-out at bar ${bar} recorded after one at bar ${last}`);
  const cooldownUntilBar = Math.max(state.cooldownUntilBar, bar + cfg.cooldownBarsAfterStopOut);
  const guard = cfg.stoplossGuard;
  if (guard === null) return { recentStopOutBars: [], cooldownUntilBar, guardPausedUntilBar: state.guardPausedUntilBar };
  const recent = [...state.recentStopOutBars.filter((b) => b > bar - guard.windowBars), bar];
  if (recent.length < guard.maxStopOuts) return { recentStopOutBars: recent, cooldownUntilBar, guardPausedUntilBar: state.guardPausedUntilBar };
  return { recentStopOutBars: [], cooldownUntilBar, guardPausedUntilBar: Math.max(state.guardPausedUntilBar, bar + guard.pauseBars) };
}

export const StopOutBlock = z.enum(['stoploss_guard', 'cooldown']);
export type StopOutBlock = z.infer<typeof StopOutBlock>;

/** What, if anything, stops an entry on `currentBar`; the guard is named first as the graver of the two. */
export function stopOutBlock(state: StopOutState, currentBar: number): StopOutBlock | null {
  if (currentBar < state.guardPausedUntilBar) return 'stoploss_guard';
  if (currentBar < state.cooldownUntilBar) return 'cooldown';
  return null;
}
