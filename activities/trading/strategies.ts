import type { StrategyCheckArgs, StrategyCheckResult, StrategyRequest, StrategySwitchRecord, TradingActivities } from '../../lib/contracts/activities';
import type { StrategyHost } from '../../lib/strategy/host';
import { canonicalJson, StrategyParamsError } from '../../lib/strategy/run';
import { prepareStrategy, strategyHost, StrategyLoadError } from '../../infra/strategies';
import type { TradingDeps } from './deps';

/**
 * The strategies a trading worker runs, loaded once per (reference, parameters, revision): a
 * `trader strategy set` bumps the revision, so the file is read afresh then (a new version on
 * disk takes effect at a switch or a worker restart, never behind the operator's back). A
 * strategy that cannot be loaded (missing, does not type-check, exports no strategy, parameters
 * refused) is remembered as the reason, so the candle read says it without retrying the compiler
 * every candle.
 */
export class StrategyHosts {
  private readonly hosts = new Map<string, StrategyHost | { error: string }>();

  constructor(private readonly opts: { budgetMs?: number; cwd?: string } = {}) {}

  get(req: Pick<StrategyRequest, 'ref' | 'params' | 'revision'>): StrategyHost | { error: string } {
    const key = `${req.ref}|${req.revision}|${canonicalJson(req.params ?? {})}`;
    let h = this.hosts.get(key);
    if (!h) {
      try {
        h = strategyHost(req.ref, req.params, { budgetMs: this.opts.budgetMs, cwd: this.opts.cwd, fresh: req.revision > 0 });
      } catch (err) {
        h = { error: err instanceof Error ? err.message : String(err) };
      }
      this.hosts.set(key, h);
    }
    return h;
  }
}

/** The strategy-switch check of the portfolio (checkStrategy), on a trading worker: where the strategy will run. */
export function createStrategyActivities(deps: TradingDeps): Pick<TradingActivities, 'checkStrategy' | 'recordStrategySwitch'> {
  return {
    async checkStrategy(args: StrategyCheckArgs): Promise<StrategyCheckResult> {
      let prepared;
      try {
        prepared = prepareStrategy(args.ref, args.params, { timeframe: args.timeframe, fresh: true });
      } catch (err) {
        if (err instanceof StrategyLoadError || err instanceof StrategyParamsError) {
          await deps.ledger.audit('strategy.refused', { symbol: args.symbol, ref: args.ref, params: args.params ?? null, by: args.by, reason: args.reason ?? null, error: err.message });
          return { ok: false, error: err.message };
        }
        throw err;
      }
      return { ok: true, ref: prepared.ref, params: prepared.host.params, identity: prepared.host.identity };
    },
    async recordStrategySwitch(args: StrategySwitchRecord): Promise<void> {
      await deps.ledger.audit('strategy.set', { ...args, reason: args.reason ?? null });
    },
  };
}
