import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import type { Logger } from '../../infra/logger';
import type { Ledger } from '../../ledger';
import type { Candle } from '../../lib/candles';
import type { ModelSignal } from '../../lib/engine';
import type { FeatureCache } from '../../lib/features/cache';
import type { TradeRecorder } from '../../lib/trading/candle-io';
import type { TradingMetrics } from '../metrics/trading';
import { MeteredTradeRecorder } from './metered-recorder';
import type { LedgerTradeRecorder } from './recorder';
import type { Venue } from './venue';
import type { StrategyHosts } from './strategies';
import type { ModelPart } from '../../lib/strategy/types';

export type SignalSource = (symbol: string, features: number[], candle: Candle, opts: { version?: string | null; reload?: boolean }) => Promise<ModelSignal>;

/** What the trading activities of one process work with (built by workers/trading-deps.ts). */
export interface TradingDeps {
  log: Logger;
  ledger: Ledger;
  venue: Venue;
  features: FeatureCache;
  /** The recorder that writes orders and fills to the ledger for one workflow. */
  recorder(workflowId: string): LedgerTradeRecorder;
  signal?: SignalSource;
  /** The model signal serving these parts (a strategy's `model`); absent: no models here. */
  modelSignal?: (parts: readonly ModelPart[]) => SignalSource | undefined;
  /** The strategies the candle reads run (workflows from before strategies were files ask for none: the engine runs their built-in itself). */
  strategies: StrategyHosts;
  initialCapital: number;
  /** The Temporal client the portfolio's supervision activities use (the worker's own, by default). */
  client?: Client;
  /** Metrics to InfluxDB (absent or off: nothing is measured). */
  metrics?: TradingMetrics;
}

/** The enabled metrics, or undefined when they are absent or off. */
export function enabledMetrics(deps: TradingDeps): TradingMetrics | undefined {
  return deps.metrics?.enabled ? deps.metrics : undefined;
}

/** The ledger recorder, metered when metrics are on; `clock` stamps what has no time of its own. */
export function recorderFor(deps: TradingDeps, workflowId: string, clock: () => number): TradeRecorder & { tradesClosed?: number } {
  const metrics = enabledMetrics(deps);
  return metrics ? new MeteredTradeRecorder(deps.recorder(workflowId), metrics, clock) : deps.recorder(workflowId);
}

/** The activity's logger, bound to its workflow, run and activity type. */
export function activityLog(deps: TradingDeps, extra: Record<string, unknown>): Logger {
  const info = Context.current().info;
  return deps.log.child({ workflowId: info.workflowExecution?.workflowId, runId: info.workflowExecution?.runId, activity: info.activityType, ...extra });
}
