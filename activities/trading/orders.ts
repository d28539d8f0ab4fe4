import type { ExecutionReport } from '../../lib/engine';
import type { ExecuteArgs, TradingActivities } from '../../lib/contracts/activities';
import { executeIntentsStep } from '../../lib/trading/candle-io';
import { activityLog, recorderFor, type TradingDeps } from './deps';
import type { AccountValuation } from './equity';

/**
 * The symbol workflow's orders: the decided intents sent to the venue (each looked up by its
 * client order id before it is sent) and recorded in the ledger, through lib/trading/candle-io.ts.
 */
export function createOrderActivities(deps: TradingDeps, valuation: AccountValuation): Pick<TradingActivities, 'executeIntents'> {
  return {
    async executeIntents(args: ExecuteArgs): Promise<ExecutionReport> {
      const log = activityLog(deps, { symbol: args.symbol });
      const asOf = args.asOf;
      const exchange = deps.venue.adapter(asOf === null ? null : () => asOf, args.symbol);
      const recorder = recorderFor(deps, args.workflowId, asOf === null ? Date.now : () => asOf);
      const engine = args.engine ? { ...args.engine, ctx: { workflowId: args.workflowId } } : undefined;
      const res = await executeIntentsStep({ exchange, recorder }, { symbol: args.symbol, intents: args.intents, engine });
      log.info({ intents: args.intents.map((i) => `${i.tag}:${i.side}:${i.qty}`), fills: res.fills.length, rejected: res.rejected.length }, 'orders executed');
      if (recorder.tradesClosed) await valuation.measureAfterTrade(log);
      return res;
    },
  };
}
