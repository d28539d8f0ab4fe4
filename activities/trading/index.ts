import { createCandleReadActivities } from './candle-read';
import { createAccountValuation, createEquityActivities } from './equity';
import { createOrderActivities } from './orders';
import { createReconcileActivities } from './reconcile';
import { createSymbolCommandActivities } from './symbol-commands';
import { createStrategyActivities } from './strategies';
import type { TradingDeps } from './deps';
import type { TradingActivities } from '../../lib/contracts/activities';

export type { SignalSource, TradingDeps } from './deps';
export type { Venue } from './venue';
export type { ExecuteArgs, PortfolioSnapshot, PrepareArgs, PrepareResult, TradingActivities } from '../../lib/contracts/activities';
export { symbolTraderStartOptions } from './symbol-commands';

/**
 * The trading activities, one file per concern: the candle read (candle-read.ts), the orders
 * (orders.ts), the account's value and equity checks (equity.ts), reconciliation with the
 * exchange (reconcile.ts) and the portfolio's commands to its symbols (symbol-commands.ts).
 * Everything here is idempotent: a retry after a crash sees the same exchange and ledger state
 * and does nothing twice. The workflows call them through the TradingActivities interface
 * (lib/contracts/activities.ts).
 */
export function createTradingActivities(deps: TradingDeps): TradingActivities {
  // One valuation per process: the candle reads, the orders and the portfolio share its in-flight read and peak.
  const valuation = createAccountValuation(deps);
  return {
    ...createCandleReadActivities(deps, valuation),
    ...createOrderActivities(deps, valuation),
    ...createEquityActivities(deps, valuation),
    ...createSymbolCommandActivities(deps),
    ...createReconcileActivities(deps),
    ...createStrategyActivities(deps),
  };
}

export const TRADING_ACTIVITY_NAMES = ['prepareCandle', 'executeIntents', 'portfolioSnapshot', 'recordEquitySnapshot', 'startSymbolWorkflows', 'signalSymbols', 'emergencyCloseSymbols', 'reconcileAccount', 'checkStrategy', 'recordStrategySwitch'] as const satisfies readonly (keyof TradingActivities)[];
