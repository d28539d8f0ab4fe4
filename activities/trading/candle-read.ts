import type { Logger } from '../../infra/logger';
import type { PortfolioView, PreparedCandle } from '../../lib/engine';
import type { PrepareArgs, PrepareResult, TradingActivities } from '../../lib/contracts/activities';
import { timeframeToMs, type Candle } from '../../lib/candles';
import type { ExchangeAdapter } from '../../lib/exchange/types';
import { ExchangeError } from '../../lib/exchange/errors';
import { prepareCandleStep, type ReplayFeed } from '../../lib/trading/candle-io';
import { activityLog, enabledMetrics, recorderFor, type TradingDeps } from './deps';
import { errorSignal } from '../../lib/strategy/run';
import type { AccountValuation } from './equity';

/** A model strategy on a worker without models: the signal says why (no entries, protective exits go on). */
const NO_MODEL: NonNullable<TradingDeps['signal']> = async () => ({ ok: false, error: 'no model is available on this worker (it was built without TRADER_HOME)' });

/**
 * The symbol workflow's candle read (a local activity): the closed candle, its features, the
 * regime, the model's signal and the fills of resting orders, through lib/trading/candle-io.ts
 * (the code the backtester runs too), plus the account view for the entry gates.
 */
export function createCandleReadActivities(deps: TradingDeps, valuation: AccountValuation): Pick<TradingActivities, 'prepareCandle'> {
  const metrics = enabledMetrics(deps);
  return {
    async prepareCandle(args: PrepareArgs): Promise<PrepareResult> {
      // Built when something is logged: a child logger (bindings, redaction paths) every candle
      // was a measurable part of the read's CPU, and most candles log nothing.
      let childLog: Logger | undefined;
      const log = (): Logger => (childLog ??= activityLog(deps, { symbol: args.symbol }));
      if (args.decided) metrics?.decision(args.symbol, args.decided);
      let exchange: ExchangeAdapter;
      let replay: ReplayFeed | undefined;
      let clock: () => number = Date.now;
      if (deps.venue.mode === 'replay') {
        let now = 0;
        exchange = deps.venue.adapter(() => now, args.symbol);
        replay = { candles: (s, tf) => deps.venue.replayCandles!(s, tf), setNow: (ms) => void (now = Math.max(now, ms)) };
        clock = () => now;
      } else {
        exchange = deps.venue.adapter(null, args.symbol);
      }
      // The strategy the workflow asks for (workflows from before strategies were files ask for
      // none: the model runs as it did then and the engine runs its built-in).
      const hosted = args.strategy ? deps.strategies.get(args.strategy) : undefined;
      const host = hosted && !('error' in hosted) ? hosted : undefined;
      const unavailable = hosted && 'error' in hosted ? hosted.error : undefined;
      const signal = args.strategy ? (host && host.modelParts.length > 0 ? (deps.modelSignal?.(host.modelParts) ?? NO_MODEL) : undefined) : deps.signal;
      const recorder = recorderFor(deps, args.workflowId, clock);
      const breakerView = (): PrepareResult['breaker'] => {
        const b = exchange.breakerState?.();
        return b ? { state: b.state, since: b.since, consecutiveFailures: b.consecutiveFailures, lastFailure: b.lastFailure } : null;
      };
      let res: PreparedCandle;
      try {
        res = await prepareCandleStep(
          {
            exchange,
            features: deps.features,
            replay,
            recorder,
            signal: signal ? (symbol: string, features: number[], candle: Candle) => signal(symbol, features, candle, { version: args.reloadModel ? (args.requestedModelVersion ?? null) : args.modelVersion, reload: args.reloadModel }) : undefined,
            strategy: host,
          },
          { workflowId: args.workflowId, symbol: args.symbol, timeframe: args.timeframe, after: args.after, fillsSince: args.fillsSince, position: args.strategy?.position ?? null },
        );
        if (unavailable !== undefined && args.strategy && res.input && res.input.features.length > 0) {
          res.input.signal = errorSignal(`strategy ${args.strategy.ref} unavailable: ${unavailable}`, unavailable);
        }
      } catch (err) {
        // Live: the exchange is unreachable (its retries spent, or our breaker open). Nothing is
        // read, so nothing is decided; the workflow sees the breaker and asks again a few seconds
        // later, as for a candle not yet published. (Failing the activity instead would hide the
        // breaker from the workflow, its alert and `trader status`, behind activity retries.)
        if (deps.venue.mode === 'replay' || !(err instanceof ExchangeError) || !err.retryable) throw err;
        const problem = `exchange unavailable, nothing decided: ${err.name}: ${err.message}`.slice(0, 500);
        log().warn({ error: problem }, 'candle read failed: the exchange is unavailable');
        return { done: false, fills: [], fillsSince: args.fillsSince, problems: [problem], breaker: breakerView(), modelVersion: args.modelVersion };
      }
      if (res.problems.length > 0) log().warn({ problems: res.problems }, 'candle problems: not trading on the affected candles');
      const breaker = breakerView();
      if (metrics && res.input) {
        await metrics.candle(args.workflowId, args.symbol, res.input.candle, timeframeToMs(args.timeframe), res.input.regime, res.input.model).catch((err: unknown) => log().warn({ err }, 'candle metrics failed'));
      }
      if (recorder.tradesClosed) await valuation.measureAfterTrade(log());
      // When the decision's inputs are ready: it is taken at once, in the workflow, from this result.
      const latency = (): number | undefined => {
        if (!res.input) return undefined;
        const from = deps.venue.mode === 'replay' ? args.dueAt : res.input.candle.timestamp + timeframeToMs(args.timeframe);
        return from === undefined ? undefined : Math.max(0, Date.now() - from);
      };
      if (!res.input || deps.venue.mode === 'replay') {
        // Replay: the account view comes from the sleeves alone (as in the backtester), not from a
        // ledger that other symbols, replayed at their own pace, are writing ahead or behind.
        return { ...res, breaker, modelVersion: res.input?.model?.version ?? args.modelVersion, latencyMs: latency(), readAt: Date.now() };
      }
      const snap = await valuation.shared();
      const portfolio: PortfolioView = { ...snap, peakEquity: Math.max(snap.equity, deps.initialCapital) };
      return { ...res, breaker, portfolio, modelVersion: res.input.model?.version ?? args.modelVersion, latencyMs: latency(), readAt: Date.now() };
    },
  };
}
