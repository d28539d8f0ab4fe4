import type { Candle } from '../../lib/candles';
import type { ModelSignal } from '../../lib/engine/types';
import type { ModelOutcome } from '../../lib/metrics';
import { DEFAULT_LABELS, forwardLabel, type LabelOptions } from '../../lib/model-labels';

/**
 * The realized hit rate of the served models, as it happens: each prediction (probUp >= 0.5 says
 * "up"; a PPO policy without probUp says "up" when it wants to be long) is kept until the candle
 * `horizon` candles later closes, then scored against the label the model was trained on
 * (lib/model-labels.ts, with the version's own horizon and cost). Mean(hit) per model version is
 * the dashboard's hit rate.
 *
 * Kept in this process's memory, per symbol workflow: predictions waiting for their horizon are
 * not durable, so a worker restart loses at most `horizon` candles of predictions per symbol
 * (they are never scored, not scored wrong). A prediction whose horizon candle is not seen (the
 * worker skipped candles while behind) is dropped, as training drops rows with a gap.
 */

interface Pending {
  candleTime: number;
  close: number;
  version: string;
  predictedUp: boolean;
  probUp?: number;
  labels: LabelOptions;
}

export type LabelsOf = (version: string) => LabelOptions | Promise<LabelOptions>;

export class ModelOutcomeTracker {
  private readonly pending = new Map<string, Pending[]>();

  constructor(
    private readonly labelsOf: LabelsOf = () => DEFAULT_LABELS,
    /** Predictions kept per symbol at most (a long horizon on a fast timeframe). */
    private readonly maxPending = 512,
  ) {}

  /** Scores what `candle` settles, then remembers this candle's prediction. Repeating a candle changes nothing. */
  async observe(key: string, symbol: string, candle: Candle, timeframeMs: number, model?: ModelSignal): Promise<ModelOutcome[]> {
    const list = this.pending.get(key) ?? [];
    const outcomes: ModelOutcome[] = [];
    const kept: Pending[] = [];
    for (const p of list) {
      const due = p.candleTime + p.labels.horizon * timeframeMs;
      if (due > candle.timestamp) kept.push(p);
      else if (due === candle.timestamp) {
        const label = forwardLabel(p.close, candle.close, p.labels.roundTripCost);
        outcomes.push({
          symbol,
          version: p.version,
          predictedUp: p.predictedUp,
          labelUp: label.up,
          probUp: p.probUp,
          forwardReturn: label.logReturn,
          horizon: p.labels.horizon,
          time: candle.timestamp + timeframeMs,
        });
      }
      // due < candle: its horizon candle was never seen; dropped unscored.
    }
    const predictedUp = model?.ok ? (model.probUp !== undefined ? model.probUp >= 0.5 : model.action !== undefined ? model.action === 'long' : undefined) : undefined;
    if (predictedUp !== undefined && model?.version && !kept.some((p) => p.candleTime === candle.timestamp)) {
      const labels = await this.labelsFor(model.version);
      kept.push({ candleTime: candle.timestamp, close: candle.close, version: model.version, predictedUp, probUp: model.probUp, labels });
    }
    this.pending.set(key, kept.slice(-this.maxPending));
    return outcomes;
  }

  private readonly labelCache = new Map<string, LabelOptions>();
  private async labelsFor(version: string): Promise<LabelOptions> {
    let l = this.labelCache.get(version);
    if (!l) {
      try {
        l = await this.labelsOf(version);
      } catch {
        // An unreadable manifest must not cost a decision: score with the project's default labels.
        l = DEFAULT_LABELS;
      }
      this.labelCache.set(version, l);
    }
    return l;
  }
}
