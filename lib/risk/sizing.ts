import { z } from 'zod';
import type { RiskConfig } from './config';
import { roundAmount, type MarketRules } from '../precision';

/**
 * Why a position has the size it has. The first five are sizes > 0 and name the constraint that
 * bound; the others are qty 0 and name why nothing can be bought.
 */
export const SizeReason = z.enum([
  'max_position_size', // the cap bound
  'requested_fraction', // the strategy asked for less than the cap
  'scaled', // volatility, regime or confidence scaled it down
  'exposure_room', // the remaining total-exposure budget bound
  'max_amount', // the market's largest order bound
  'invalid_input',
  'no_equity',
  'zero_scale',
  'no_exposure_room',
  'below_min_amount',
  'below_min_notional',
]);
export type SizeReason = z.infer<typeof SizeReason>;

export interface SizingInput {
  equity: number;
  price: number;
  /** The strategy's wish, as a fraction of equity; capped at maxPositionSize. Default: the cap. */
  fraction?: number;
  atr?: number;
  /** Per-bar realized volatility, used when no ATR is given. Same units as cfg.targetVolatility. */
  realizedVol?: number;
  regime?: string;
  /** Model confidence in [0, 1], used as a multiplier. */
  confidence?: number;
  /** Notional already held in open positions, so the total-exposure limit holds after this entry. */
  openExposure?: number;
  /** The market's lot step and limits (lib/precision); quantities are truncated to the lot step. */
  market?: Pick<MarketRules, 'amountPrecision' | 'minAmount' | 'maxAmount' | 'minCost'>;
  cfg: RiskConfig;
}

export interface SizeFactors {
  volatility: number;
  regime: number;
  confidence: number;
}

export interface PositionSize {
  qty: number;
  notional: number;
  reason: SizeReason;
  /** Fraction of equity after cap and scaling, before exposure room and market rounding. */
  fraction: number;
  factors: SizeFactors;
}

/** ATR as a fraction of price when known, otherwise the realized volatility; undefined if neither is usable. */
export function barVolatility(price: number, atr?: number, realizedVol?: number): number | undefined {
  if (atr !== undefined && Number.isFinite(atr) && atr > 0 && price > 0) return atr / price;
  if (realizedVol !== undefined && Number.isFinite(realizedVol) && realizedVol > 0) return realizedVol;
  return undefined;
}

/** target / volatility, never above 1: calm markets do not buy more than the cap. 1 when either is unknown. */
export function volatilityScale(volatility: number | undefined, target: number | undefined): number {
  if (target === undefined || volatility === undefined) return 1;
  return Math.min(1, target / volatility);
}

export function regimeMultiplier(regime: string | undefined, multipliers: Record<string, number>): number {
  // hasOwn, not `in` or indexing: a regime named 'constructor' must not pick up Object.prototype.
  return regime !== undefined && Object.hasOwn(multipliers, regime) ? multipliers[regime] : 1;
}

const isFiniteOrUnset = (v: number | undefined) => v === undefined || Number.isFinite(v);

export function sizePosition(input: SizingInput): PositionSize {
  const { equity, price, cfg, market = {} } = input;
  const factors: SizeFactors = { volatility: 1, regime: 1, confidence: 1 };
  const none = (reason: SizeReason, fraction = 0): PositionSize => ({ qty: 0, notional: 0, reason, fraction, factors });

  // A NaN here would otherwise flow into an order quantity; refuse instead.
  const numbers = [input.fraction, input.atr, input.realizedVol, input.confidence, input.openExposure];
  if (!Number.isFinite(equity) || !Number.isFinite(price) || price <= 0 || !numbers.every(isFiniteOrUnset)) return none('invalid_input');
  if (equity <= 0) return none('no_equity');

  const cap = cfg.maxPositionSize;
  const requested = Math.min(Math.max(input.fraction ?? cap, 0), cap);
  factors.volatility = volatilityScale(barVolatility(price, input.atr, input.realizedVol), cfg.targetVolatility);
  factors.regime = regimeMultiplier(input.regime, cfg.regimeMultipliers);
  factors.confidence = input.confidence === undefined ? 1 : Math.min(Math.max(input.confidence, 0), 1);
  const fraction = requested * factors.volatility * factors.regime * factors.confidence;
  if (!(fraction > 0)) return none('zero_scale');

  let reason: SizeReason = fraction < requested ? 'scaled' : requested < cap ? 'requested_fraction' : 'max_position_size';
  let notional = equity * fraction;
  if (input.openExposure !== undefined) {
    const room = cfg.maxTotalExposure * equity - input.openExposure;
    if (room <= 0) return none('no_exposure_room', fraction);
    if (room < notional) [notional, reason] = [room, 'exposure_room'];
  }
  let qty = notional / price;
  // ccxt reports 0 for "no maximum" on some venues.
  if (market.maxAmount !== undefined && market.maxAmount > 0 && qty > market.maxAmount) [qty, reason] = [market.maxAmount, 'max_amount'];
  qty = roundAmount(qty, market);
  if (qty <= 0 || (market.minAmount !== undefined && qty < market.minAmount)) return none('below_min_amount', fraction);
  notional = qty * price;
  if (market.minCost !== undefined && notional < market.minCost) return none('below_min_notional', fraction);
  return { qty, notional, reason, fraction, factors };
}
