import { z } from 'zod';
import type { ModelSignal, StrategySignal } from '../../engine/types';

/**
 * The model's two voices as the built-in model strategies hear them: the ensemble's P(up) at its
 * own fitted thresholds, and the PPO policy's action.
 */

/** Fallback thresholds, for a model signal that does not carry its own (versions before fitted thresholds). */
export const ThresholdParams = z.object({
  /** Ensemble: enter at or above this probability of a rise... */
  enterProb: z.number().gt(0).lt(1).default(0.55),
  /** ...and leave at or below this one. The gap between them keeps a position from flapping. */
  exitProb: z.number().gt(0).lt(1).default(0.45),
});
export type ThresholdParams = z.infer<typeof ThresholdParams>;

/** The model's own thresholds when its signal carries a usable pair, else the fallback pair. */
export function modelThresholds(m: ModelSignal, fallback: ThresholdParams): { enterProb: number; exitProb: number } {
  const inUnit = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x) && x > 0 && x < 1;
  const enterProb = inUnit(m.enterProb) ? m.enterProb : fallback.enterProb;
  const exitProb = inUnit(m.exitProb) ? m.exitProb : fallback.exitProb;
  return exitProb < enterProb ? { enterProb, exitProb } : { enterProb: fallback.enterProb, exitProb: fallback.exitProb };
}

export type Voice = Pick<StrategySignal, 'enter' | 'exit' | 'score' | 'reason' | 'confidence'>;

export function ensembleVoice(m: ModelSignal, fallback: ThresholdParams): Voice | undefined {
  const p = m.probUp;
  if (p === undefined || !Number.isFinite(p)) return undefined;
  const { enterProb, exitProb } = modelThresholds(m, fallback);
  const f = (x: number) => x.toFixed(3);
  const v: Voice = {
    enter: p >= enterProb,
    exit: p <= exitProb,
    score: p,
    reason: `model P(up) ${f(p)}${p >= enterProb ? ` >= ${f(enterProb)}` : p <= exitProb ? ` <= ${f(exitProb)}` : ''}`,
  };
  if (m.confidence !== undefined) v.confidence = m.confidence;
  return v;
}

export function policyVoice(m: ModelSignal): Voice | undefined {
  if (m.action !== 'long' && m.action !== 'flat') return undefined;
  const v: Voice = { enter: m.action === 'long', exit: m.action === 'flat', score: m.action === 'long' ? 1 : 0, reason: `policy says ${m.action}` };
  if (m.confidence !== undefined) v.confidence = m.confidence;
  return v;
}

/** Why a model strategy has nothing to say on this candle. */
export function silentModel(model: ModelSignal | undefined, strategy: string): string {
  return model === undefined ? 'no model signal' : model.ok ? `model signal unusable for ${strategy}` : `model error: ${model.error ?? 'unknown'}`;
}

export const QUIET: Voice = { enter: false, exit: false, score: 0, reason: '' };
