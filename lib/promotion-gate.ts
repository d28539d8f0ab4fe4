import type { GateEvaluation, PromotionDecision, PromotionMargin } from './contracts/retrain';

/**
 * The promotion gate, stated once: the challenger replaces the champion when, on the same
 * held-out rows and period,
 *   ensemble AUC >= champion AUC + 0.005                      (it ranks outcomes better), AND
 *   backtest return of the gate strategy >= champion's - 0    (and it does not trade worse),
 * both out of sample for the challenger. No champion (a fresh registry), or a champion that can no
 * longer be served (files gone, feature schema changed): the challenger is promoted, since
 * something servable must trade. A challenger that loses stays in the registry as `challenger`.
 */

export const DEFAULT_PROMOTION_MARGIN: PromotionMargin = { auc: 0.005, returnTolerance: 0 };

/** The gate (see the header). Pure, so it is tested without a server. */
export function promotionDecision(ev: GateEvaluation, margin: PromotionMargin = DEFAULT_PROMOTION_MARGIN): PromotionDecision {
  const c = ev.challenger;
  const fmt = (x: number) => x.toFixed(4);
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`;
  if (!ev.champion) {
    return { promote: true, reason: ev.championProblem ? `${ev.championProblem}; the challenger replaces it` : 'no champion yet: the first servable model is promoted' };
  }
  const ch = ev.champion;
  const aucGain = c.auc - ch.auc;
  const returnGap = c.backtestReturn - ch.backtestReturn;
  // A hair of tolerance for float noise: 0.5 + 0.005 computed differently must still pass.
  const aucOk = aucGain >= margin.auc - 1e-12;
  const returnOk = returnGap >= -margin.returnTolerance - 1e-12;
  const facts = `AUC ${fmt(c.auc)} vs ${fmt(ch.auc)} (${aucGain >= 0 ? '+' : ''}${fmt(aucGain)}, needs +${fmt(margin.auc)}); ${ev.strategy} backtest ${pct(c.backtestReturn)} vs ${pct(ch.backtestReturn)}`;
  if (aucOk && returnOk) return { promote: true, reason: `challenger beats champion ${ch.id} out of sample: ${facts}` };
  const why = [!aucOk && 'AUC gain below the margin', !returnOk && 'backtest return worse than the champion'].filter(Boolean).join(' and ');
  return { promote: false, reason: `kept as challenger (${why}): ${facts}` };
}
