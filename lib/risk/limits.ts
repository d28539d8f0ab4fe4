import { z } from 'zod';
import type { RiskConfig } from './config';

/**
 * Account-wide loss limits. Both compare a ratio with `>=`, so a limit trips at the exact
 * boundary; the ratio is computed by one division of exact inputs, so equity that sits exactly
 * on the limit (e.g. 8500 from a 10000 peak at 0.15) gives exactly the configured double.
 */

/** Fall from the peak as a fraction of the peak; 0 at or above the peak, 1 when everything is gone. */
export function drawdown(peakEquity: number, equity: number): number {
  if (!(peakEquity > 0)) return 0;
  return Math.min(1, Math.max(0, (peakEquity - equity) / peakEquity));
}

/** Today's loss as a fraction of the day's starting equity; 0 on a winning day. */
export function dailyLoss(dayStartEquity: number, dailyPnl: number): number {
  if (!(dayStartEquity > 0)) return 0;
  return Math.max(0, -dailyPnl / dayStartEquity);
}

export const LossLimit = z.enum(['max_drawdown', 'daily_loss_limit']);
export type LossLimit = z.infer<typeof LossLimit>;

export const KillSwitchTrip = z.object({
  limit: LossLimit,
  observed: z.number(),
  threshold: z.number(),
  /**
   * Max drawdown halts trading until an operator resumes it; the daily loss limit pauses new
   * entries until the next UTC day. Protective exits keep working in both.
   */
  status: z.enum(['halted', 'paused']),
});
export type KillSwitchTrip = z.infer<typeof KillSwitchTrip>;

export interface AccountEquity {
  equity: number;
  peakEquity: number;
  dayStartEquity: number;
  /** Realized plus unrealized PnL since the start of the UTC day, in quote currency. */
  dailyPnl: number;
}

/** The most severe limit broken, or null. Non-finite inputs trip the drawdown limit: unknown equity is not safe equity. */
export function killSwitchTripped(account: AccountEquity, cfg: Pick<RiskConfig, 'maxDrawdown' | 'dailyLossLimit'>): KillSwitchTrip | null {
  const { equity, peakEquity, dayStartEquity, dailyPnl } = account;
  if (![equity, peakEquity, dayStartEquity, dailyPnl].every(Number.isFinite)) {
    return { limit: 'max_drawdown', observed: Number.NaN, threshold: cfg.maxDrawdown, status: 'halted' };
  }
  const dd = equity <= 0 ? 1 : drawdown(peakEquity, equity);
  if (dd >= cfg.maxDrawdown) return { limit: 'max_drawdown', observed: dd, threshold: cfg.maxDrawdown, status: 'halted' };
  const loss = dailyLoss(dayStartEquity, dailyPnl);
  if (loss >= cfg.dailyLossLimit) return { limit: 'daily_loss_limit', observed: loss, threshold: cfg.dailyLossLimit, status: 'paused' };
  return null;
}
