import type { Candle } from '../candles';
import type { StrategySignal } from '../engine/types';
import { computeIndicators, errorSignal, indicatorRow, modelPartsOf, runStrategy, strategyIdentity, strategyParams, type LoadedStrategy, type RunOptions, type StrategyInputs } from './run';
import type { ModelPart, StrategyIdentity } from './types';

/**
 * One strategy with its parameters, ready to answer candle after candle for any number of symbols
 * (the candle-read activity keeps one per strategy and parameters; the backtester one per run).
 *
 * Its own indicators are computed the way the data allows: over the whole recorded series once
 * (replay, backtest: cached per series, so row i equals what a live window would give only if the
 * strategy has no look-ahead and enough warm-up, which `trader strategy check` tests), or over the
 * live window of the last `warmup` closed candles.
 */
export class StrategyHost {
  readonly params: Record<string, unknown>;
  private readonly series = new Map<string, { candles: readonly Candle[]; cols: Record<string, ArrayLike<number>> | Error }>();

  /** Throws StrategyParamsError for parameters the strategy's schema refuses. */
  constructor(
    readonly loaded: LoadedStrategy,
    rawParams: unknown,
    /** Hash of the validated parameters (infra/strategies.ts paramsHash). */
    hashParams: (params: Record<string, unknown>) => string,
    private readonly opts: RunOptions = {},
  ) {
    this.params = strategyParams(loaded.strategy, rawParams);
    this.paramsHash = hashParams(this.params);
  }

  readonly paramsHash: string;

  get warmup(): number {
    return this.loaded.strategy.warmup;
  }

  /** Name, version, source and parameters hash: what its signals carry. */
  get identity(): StrategyIdentity {
    return strategyIdentity(this.loaded, this.paramsHash);
  }

  get modelParts(): readonly ModelPart[] {
    return modelPartsOf(this.loaded.strategy);
  }

  /**
   * The answer on `inputs.candle`. `recorded`: the whole recorded series and the candle's index in
   * it (replay, backtest); else the live window in `inputs.window`.
   */
  answer(inputs: Omit<StrategyInputs, 'indicators'>, recorded?: { key: string; candles: readonly Candle[]; index: number }): StrategySignal {
    let indicators: Record<string, number> | undefined;
    if (this.loaded.strategy.indicators) {
      try {
        if (recorded) {
          let e = this.series.get(recorded.key);
          if (!e || e.candles !== recorded.candles) {
            let cols: Record<string, ArrayLike<number>> | Error;
            try {
              cols = computeIndicators(this.loaded.strategy, recorded.candles, this.params);
            } catch (err) {
              cols = err instanceof Error ? err : new Error(String(err));
            }
            e = { candles: recorded.candles, cols };
            this.series.set(recorded.key, e);
          }
          if (e.cols instanceof Error) throw e.cols;
          indicators = indicatorRow(e.cols, recorded.index);
        } else {
          const cols = computeIndicators(this.loaded.strategy, inputs.window, this.params);
          indicators = indicatorRow(cols, inputs.window.length - 1);
        }
      } catch (err) {
        const error = `indicators() failed: ${err instanceof Error ? err.message : String(err)}`;
        return errorSignal(`strategy ${this.loaded.identity.name} failed: ${error}`, error, this.identity);
      }
    }
    return runStrategy(this.loaded, this.params, this.paramsHash, indicators ? { ...inputs, indicators } : inputs, this.opts);
  }
}
