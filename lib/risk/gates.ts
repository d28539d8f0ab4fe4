import { z } from 'zod';
import type { RiskConfig } from './config';
import { killSwitchTripped, type AccountEquity } from './limits';
import { stopOutBlock, type StopOutState } from './stop-outs';

/**
 * - active: everything allowed.
 * - paused: no new entries; strategy exits and protective exits continue (operator `stop`,
 *   daily loss limit).
 * - reduce-only: like paused, named separately so an operator sees that only reducing orders go out
 *   (e.g. while an exchange is degraded or before a planned shutdown).
 * - halted: the strategy sends nothing; protective exits still fire for any position still
 *   open, because a halt must never leave a position without its stop (max drawdown).
 */
export const TradingStatus = z.enum(['active', 'paused', 'reduce-only', 'halted']);
export type TradingStatus = z.infer<typeof TradingStatus>;

export function mayOpen(status: TradingStatus): boolean {
  return status === 'active';
}

/** Strategy-driven exits and reductions. */
export function mayReduce(status: TradingStatus): boolean {
  return status !== 'halted';
}

/** Stop loss, take profit, trailing stop: allowed in every status (the `_status` is there so callers say so explicitly). */
export function mayExitProtectively(_status: TradingStatus): boolean {
  return true;
}

/** Closed set, in the order they are checked: the first that applies is reported. */
export const EntryRefusal = z.enum([
  'trading_halted',
  'trading_paused',
  'reduce_only',
  'invalid_equity',
  'max_drawdown',
  'daily_loss_limit',
  'max_concurrent_positions',
  'max_total_exposure',
  'stoploss_guard',
  'cooldown',
]);
export type EntryRefusal = z.infer<typeof EntryRefusal>;

export const EntryVerdict = z.discriminatedUnion('allowed', [
  z.object({ allowed: z.literal(true) }),
  z.object({ allowed: z.literal(false), reason: EntryRefusal }),
]);
export type EntryVerdict = z.infer<typeof EntryVerdict>;

export interface EntryGateInput extends AccountEquity {
  status: TradingStatus;
  /** Positions open across the account (the portfolio's count, not the symbol's). */
  openPositions: number;
  /** Sum of open position notionals at mark, quote currency. */
  totalExposure: number;
  /** This symbol's stop-out memory (NO_STOP_OUTS when it has none) and the bar the decision is made on. */
  stopOuts: StopOutState;
  currentBar: number;
  cfg: RiskConfig;
}

const STATUS_REFUSAL: Record<Exclude<TradingStatus, 'active'>, EntryRefusal> = {
  halted: 'trading_halted',
  paused: 'trading_paused',
  'reduce-only': 'reduce_only',
};

/** May a new position be opened now? Pure gate; sizing (sizePosition) decides how large. */
export function entryAllowed(input: EntryGateInput): EntryVerdict {
  const { status, cfg } = input;
  const refuse = (reason: EntryRefusal): EntryVerdict => ({ allowed: false, reason });
  if (status !== 'active') return refuse(STATUS_REFUSAL[status]);
  if (!Number.isFinite(input.equity) || input.equity <= 0 || !Number.isFinite(input.totalExposure)) return refuse('invalid_equity');
  const trip = killSwitchTripped(input, cfg);
  if (trip) return refuse(trip.limit);
  if (input.openPositions >= cfg.maxConcurrentPositions) return refuse('max_concurrent_positions');
  if (input.totalExposure / input.equity >= cfg.maxTotalExposure) return refuse('max_total_exposure');
  const block = stopOutBlock(input.stopOuts, input.currentBar);
  return block ? refuse(block) : { allowed: true };
}
