import { z } from 'zod';
import type { Candle } from '../candles';
import { Side, type RiskConfig } from './config';
import { applyPrecision, type PrecisionRule } from '../precision';

/**
 * Stop loss, take profit and trailing stop, evaluated on closed candles. One candle says only
 * where price went, not in which order, so every ambiguity resolves against us:
 * - a candle that opens through the stop fills at the open (the worse price), not at the stop;
 * - a stop triggers when price touches it; a target only when price trades through it, as a
 *   resting limit order at the back of the queue would (lib/fill-model's default, 'through');
 * - a take profit fills at the target, never better, even when the candle opened beyond it;
 * - a candle that reaches both stop and target is a stop-out, unless it opened beyond the
 *   target (then the target was certainly first);
 * - the trailing stop moves only after the candle has been checked against the old stop, so a
 *   candle's high cannot tighten a stop that its own low then hits.
 */

/** Distances towards zero are capped at 99 % of the entry (STOP_LOSS_PCT's own bound), so an ATR spike cannot put a level at or below zero. */
export const MAX_STOP_FRACTION = 0.99;

export const ProtectedPosition = z.object({
  side: Side,
  entryPrice: z.number().positive(),
  /** The initial stop loss; it does not move. */
  stopPrice: z.number().positive(),
  takeProfitPrice: z.number().positive().optional(),
  /** Set once trailing is active; only ever tightens. */
  trailingStopPrice: z.number().positive().optional(),
  /** Highest high (long) or lowest low (short) seen since entry. */
  bestPrice: z.number().positive(),
});
export type ProtectedPosition = z.infer<typeof ProtectedPosition>;

export const ProtectiveExitReason = z.enum(['stop_loss', 'take_profit', 'trailing_stop']);
export type ProtectiveExitReason = z.infer<typeof ProtectiveExitReason>;

export const ProtectiveExit = z.object({ reason: ProtectiveExitReason, price: z.number().positive() });
export type ProtectiveExit = z.infer<typeof ProtectiveExit>;

type Bar = Pick<Candle, 'open' | 'high' | 'low'>;

export function atrStopDistance(atr: number, multiple: number): number {
  return atr * multiple;
}

export interface ProtectiveLevels {
  stopPrice: number;
  takeProfitPrice: number;
  /** 'percent' also when ATR mode was asked for but no ATR was available (indicator warm-up). */
  basis: 'percent' | 'atr';
}

export interface LevelsInput {
  entryPrice: number;
  side?: Side;
  atr?: number;
  /** The market's price precision (lib/precision), when the levels become exchange orders. */
  pricePrecision?: PrecisionRule;
  cfg: RiskConfig;
}

export function protectiveLevels(args: LevelsInput): ProtectiveLevels {
  const { entryPrice, side = 'long', atr, pricePrecision, cfg } = args;
  const useAtr = cfg.stopMode === 'atr' && atr !== undefined && Number.isFinite(atr) && atr > 0;
  const stopDistance = useAtr ? atrStopDistance(atr, cfg.atrStopMult) : entryPrice * cfg.stopLossPct;
  const targetDistance = useAtr ? atrStopDistance(atr, cfg.atrTargetMult) : entryPrice * cfg.takeProfitPct;
  const sign = side === 'long' ? 1 : -1;
  // Only the distance that moves towards zero is capped: a long's stop, a short's target.
  const cap = (d: number) => Math.min(d, entryPrice * MAX_STOP_FRACTION);
  let stopPrice = entryPrice - sign * (side === 'long' ? cap(stopDistance) : stopDistance);
  let takeProfitPrice = entryPrice + sign * (side === 'long' ? targetDistance : cap(targetDistance));
  if (pricePrecision !== undefined) {
    // Towards the entry: the rounded stop risks no more than asked, the rounded target is reached
    // no later. A tick coarser than the distance would put the level on the entry: then away.
    const stopInward = side === 'long' ? 'up' : 'down';
    const targetInward = side === 'long' ? 'down' : 'up';
    const stopIn = applyPrecision(stopPrice, pricePrecision, stopInward);
    stopPrice = sign * (entryPrice - stopIn) > 0 ? stopIn : applyPrecision(stopPrice, pricePrecision, targetInward);
    const targetIn = applyPrecision(takeProfitPrice, pricePrecision, targetInward);
    takeProfitPrice = sign * (targetIn - entryPrice) > 0 ? targetIn : applyPrecision(takeProfitPrice, pricePrecision, stopInward);
  }
  return { stopPrice, takeProfitPrice, basis: useAtr ? 'atr' : 'percent' };
}

/** The protective state of a position just filled at `entryPrice`. */
export function openProtectedPosition(args: LevelsInput): ProtectedPosition {
  const { stopPrice, takeProfitPrice } = protectiveLevels(args);
  return { side: args.side ?? 'long', entryPrice: args.entryPrice, stopPrice, takeProfitPrice, bestPrice: args.entryPrice };
}

/** The stop that is live now: the tighter of the initial and the trailing stop. */
export function effectiveStop(position: ProtectedPosition): { price: number; reason: 'stop_loss' | 'trailing_stop' } {
  const { stopPrice, trailingStopPrice: trail } = position;
  const trailIsTighter = trail !== undefined && (position.side === 'long' ? trail > stopPrice : trail < stopPrice);
  return trailIsTighter ? { price: trail, reason: 'trailing_stop' } : { price: stopPrice, reason: 'stop_loss' };
}

export function checkProtectiveExit(position: ProtectedPosition, candle: Bar): ProtectiveExit | null {
  const stop = effectiveStop(position);
  const target = position.takeProfitPrice;
  if (position.side === 'long') {
    if (candle.open <= stop.price) return { reason: stop.reason, price: candle.open };
    if (target !== undefined && candle.open > target) return { reason: 'take_profit', price: target };
    if (candle.low <= stop.price) return { reason: stop.reason, price: stop.price };
    if (target !== undefined && candle.high > target) return { reason: 'take_profit', price: target };
    return null;
  }
  if (candle.open >= stop.price) return { reason: stop.reason, price: candle.open };
  if (target !== undefined && candle.open < target) return { reason: 'take_profit', price: target };
  if (candle.high >= stop.price) return { reason: stop.reason, price: stop.price };
  if (target !== undefined && candle.low < target) return { reason: 'take_profit', price: target };
  return null;
}

/**
 * Carries the best price forward and, when trailing is configured and activated, ratchets the
 * trailing stop towards it. `atr` is the current ATR, needed for trailingAtrMult. Never loosens.
 */
export function updateTrailingStop(position: ProtectedPosition, candle: Bar, cfg: RiskConfig, atr?: number): ProtectedPosition {
  const long = position.side === 'long';
  const bestPrice = long ? Math.max(position.bestPrice, candle.high) : Math.min(position.bestPrice, candle.low);
  const next = { ...position, bestPrice };
  const distance =
    cfg.trailingStopPct !== undefined
      ? bestPrice * cfg.trailingStopPct
      : cfg.trailingAtrMult !== undefined && atr !== undefined && Number.isFinite(atr) && atr > 0
        ? atrStopDistance(atr, cfg.trailingAtrMult)
        : undefined;
  if (distance === undefined) return next;
  const activated = long
    ? bestPrice >= position.entryPrice * (1 + cfg.trailingActivationPct)
    : bestPrice <= position.entryPrice * (1 - cfg.trailingActivationPct);
  if (!activated) return next;
  const candidate = long ? bestPrice - distance : bestPrice + distance;
  if (!(candidate > 0)) return next;
  const previous = position.trailingStopPrice;
  next.trailingStopPrice = previous === undefined ? candidate : long ? Math.max(previous, candidate) : Math.min(previous, candidate);
  return next;
}

/**
 * One closed candle for an open position, in the only safe order: check the exit against the
 * stops as they stood when the candle opened, then, if still open, trail for the next candle.
 */
export function protectOnCandle(
  position: ProtectedPosition,
  candle: Bar,
  cfg: RiskConfig,
  atr?: number,
): { exit: ProtectiveExit | null; position: ProtectedPosition } {
  const exit = checkProtectiveExit(position, candle);
  return exit ? { exit, position } : { exit: null, position: updateTrailingStop(position, candle, cfg, atr) };
}

/**
 * Whether an exit counts for the cooldown and the stoploss guard: every stop loss, and a
 * trailing stop only when it lost money (a trailing stop locking in profit is a good exit).
 */
export function isStopOut(position: Pick<ProtectedPosition, 'side' | 'entryPrice'>, exit: ProtectiveExit): boolean {
  if (exit.reason === 'stop_loss') return true;
  if (exit.reason !== 'trailing_stop') return false;
  return position.side === 'long' ? exit.price < position.entryPrice : exit.price > position.entryPrice;
}
