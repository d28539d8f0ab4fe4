import type { Candle } from '../../lib/candles';
import type { DecisionReport } from '../../lib/contracts/trading';
import type { ModelSignal } from '../../lib/engine/types';
import type { Regime } from '../../lib/regime';
import {
  decisionPoint,
  equityPoint,
  modelOutcomePoint,
  modelSignalPoint,
  orderPoint,
  positionPoint,
  regimePoint,
  tradePoint,
  type AccountValuation,
  type ClosedTradeFacts,
  type OrderEvent,
  type TradingTags,
} from '../../lib/metrics';
import { ModelOutcomeTracker } from './model-outcomes';
import { METRICS_OFF, type MetricsWriter } from './writer';

/**
 * The trading activities' metrics, in the domain's words, for one process (one account, one
 * strategy). Off (INFLUXDB_URL unset), every method returns before building anything.
 */
export class TradingMetrics {
  readonly outcomes: ModelOutcomeTracker;

  constructor(
    readonly writer: MetricsWriter,
    readonly tags: TradingTags,
    outcomes?: ModelOutcomeTracker,
  ) {
    this.outcomes = outcomes ?? new ModelOutcomeTracker();
  }

  get enabled(): boolean {
    return this.writer.enabled;
  }

  trade(t: ClosedTradeFacts): void {
    if (this.enabled) this.writer.write(tradePoint(this.tags, t));
  }

  order(o: { symbol: string; side: string; orderType: string; intent: string; status: OrderEvent; qty: number | string; price?: number | string | null; clientOrderId: string }, time: number): void {
    if (this.enabled) this.writer.write(orderPoint(this.tags, o, time));
  }

  position(p: { symbol: string; open: boolean; qty: number | string; avgEntryPrice: number | string; realizedPnl: number | string }, time: number): void {
    if (this.enabled) this.writer.write(positionPoint(this.tags, p, time));
  }

  equity(v: AccountValuation, time: number): void {
    if (this.enabled) this.writer.write(equityPoint(this.tags, v, time));
  }

  decision(symbol: string, d: DecisionReport): void {
    if (this.enabled) this.writer.write(decisionPoint(this.tags, symbol, d));
  }

  /**
   * What the candle read saw on a decided candle: the regime, the model's signal, and the
   * predictions of earlier candles that this candle's close settles.
   */
  async candle(key: string, symbol: string, candle: Candle, timeframeMs: number, regime: Regime, model?: ModelSignal): Promise<void> {
    if (!this.enabled) return;
    const close = candle.timestamp + timeframeMs;
    this.writer.write(regimePoint(this.tags, symbol, regime, close));
    if (model) this.writer.write(modelSignalPoint(this.tags, symbol, model, close));
    for (const o of await this.outcomes.observe(key, symbol, candle, timeframeMs, model)) this.writer.write(modelOutcomePoint(this.tags, o));
  }
}

export function tradingMetricsOff(tags: TradingTags): TradingMetrics {
  return new TradingMetrics(METRICS_OFF, tags);
}
