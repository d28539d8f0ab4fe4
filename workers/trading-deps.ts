import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { Sql } from 'postgres';
import type { AppConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import { CandleStore, Ledger } from '../ledger';
import type { AlertDispatcher } from '../activities/alerts';
import { PostgresPaperStateStore } from '../activities/exchange/paper-state-pg';
import { candleStoreSink } from '../activities/market-data';
import { METRICS_OFF, type MetricsWriter } from '../activities/metrics/writer';
import { TradingMetrics } from '../activities/metrics/trading';
import { ModelOutcomeTracker } from '../activities/metrics/model-outcomes';
import type { TradingDeps } from '../activities/trading/deps';
import { LedgerTradeRecorder } from '../activities/trading/recorder';
import { exchangeVenue, replayVenue, type ReplaySeries, type Venue } from '../activities/trading/venue';
import { modelFallbackAlert } from '../lib/alerts';
import { isBuiltinStrategy } from '../lib/strategy/builtins';
import { StrategyHosts } from '../activities/trading/strategies';
import { loadStrategy } from '../infra/strategies';
import type { MarketDataSource } from '../lib/exchange/types';
import type { PaperStateStore } from '../lib/exchange/paper-state';
import { FeatureCache } from '../lib/features/cache';
import type { LabelOptions } from '../lib/model-labels';
import type { SymbolTraderInput } from '../lib/contracts/workflows';
import { createModelSignalSource, registryResolver, STRATEGY_PARTS, strategyServing, BOOTSTRAP_MODEL_DIR, type ModelResolver } from '../models/signal';
import { modelsDir, readManifest } from '../models/registry';

/** Where a trading worker's orders go and its candles come from. */
export type TradingMarket =
  /** A replay of candle files or candle-store series, on the paper exchange's simulated clock (`trader up --replay`). */
  | { replay: { files?: string[]; series?: ReplaySeries[] } }
  /** The configured exchange in paper (DRY_RUN) or live mode, on the wall clock; every closed candle read goes to the candle store. */
  | { exchange: AppConfig }
  /** A venue of the caller's own (a test's or a bench's market, a stand-in exchange) on the builder's paper store, and the market data its features stream from. */
  | { venue: (store: PaperStateStore) => Venue; featureSource: MarketDataSource; symbols: string[]; timeframe: string };

export interface TradingDepsOptions {
  /** The ledger's database (the paper exchange's state lives there too). */
  sql: Sql;
  log: Logger;
  market: TradingMarket;
  /** The account the paper exchange keeps its balances under, and the metrics' tag. */
  account: string;
  /** The exchange label of the metrics' tags (`replay`, or the configured exchange id). */
  exchangeLabel: string;
  initialCapital: number;
  /**
   * The configured strategy (a built-in, a strategy file's name or path). A strategy with model
   * parts reads a model signal from the registry's champion (or the version a reload names), else
   * the committed bootstrap model; needs `home`.
   */
  strategy: string;
  /** STRATEGY_BUDGET_MS (default 1000). */
  strategyBudgetMs?: number;
  /** TRADER_HOME: the model registry's files are under it. */
  home?: string;
  /** The Temporal client of the portfolio's supervision activities; default: the worker's own. */
  client?: Client;
  /** Where a model problem's alert goes (default: logged only). */
  alerts?: AlertDispatcher;
  /** Metrics to InfluxDB; default off. */
  metrics?: MetricsWriter;
  /** The paper exchange's state; default: in the ledger's database (PostgresPaperStateStore). */
  paperStore?: PaperStateStore;
}

export interface TradingDepsBuilt {
  deps: TradingDeps;
  venue: Venue;
  ledger: Ledger;
  paperStore: PaperStateStore;
  mode: SymbolTraderInput['mode'];
  symbols: string[];
  timeframe: string;
}

/**
 * The one place the trading activities' dependencies are built: `trader up` and `trader worker`
 * (through workers/trading.ts), the test kit (testkit/trading.ts) and every benchmark. Tests and
 * benches choose the market (a replay, a synthetic or stand-in venue), the database and the
 * capital; the ledger, the recorder, the feature cache, the paper store, the models and the
 * metrics are wired here, as the real worker wires them.
 */
export function buildTradingDeps(opts: TradingDepsOptions): TradingDepsBuilt {
  const { sql, log, market, account } = opts;
  const ledger = new Ledger(sql, { actor: 'trader', log });
  const paperStore = opts.paperStore ?? new PostgresPaperStateStore(sql);
  let venue: Venue;
  let features: FeatureCache;
  let symbols: string[];
  let timeframe: string;
  if ('replay' in market) {
    const rv = replayVenue({ files: market.replay.files, series: market.replay.series, store: paperStore, account, initialCapital: opts.initialCapital, log });
    venue = rv;
    symbols = [...new Set(rv.series.map((s) => s.symbol))].sort();
    timeframe = rv.series[0].timeframe;
    // Streams from the first recorded candle (up to the asked one), as the backtester's batch does.
    features = new FeatureCache({ source: rv.data.at(Number.MAX_SAFE_INTEGER), history: 'all' });
  } else if ('exchange' in market) {
    const cfg = market.exchange;
    venue = exchangeVenue(cfg, paperStore, account, log, candleStoreSink(new CandleStore(sql), cfg.exchange.id, log));
    symbols = cfg.symbols;
    timeframe = cfg.timeframe;
    features = new FeatureCache({ source: venue.adapter(null) });
  } else {
    venue = market.venue(paperStore);
    symbols = [...new Set(market.symbols)].sort();
    timeframe = market.timeframe;
    features = new FeatureCache({ source: market.featureSource });
  }
  const mode: SymbolTraderInput['mode'] = venue.mode;
  const resolver = registryResolver(sql);
  const deps: TradingDeps = {
    log,
    ledger,
    venue,
    features,
    recorder: (workflowId: string) => new LedgerTradeRecorder(ledger, { workflowId, mode, exchange: venue.exchangeId }),
    initialCapital: opts.initialCapital,
    strategies: new StrategyHosts({ budgetMs: opts.strategyBudgetMs ?? 1000 }),
    client: opts.client,
    metrics: new TradingMetrics(
      opts.metrics ?? METRICS_OFF,
      { account, exchange: opts.exchangeLabel, mode, strategy: opts.strategy.length > 60 ? `${opts.strategy.slice(0, 57)}...` : opts.strategy },
      opts.home === undefined ? undefined : new ModelOutcomeTracker(modelLabels(resolver, modelsDir(opts.home))),
    ),
  };
  // A strategy file is type-checked once per process (seconds of compiler): here, before the worker
  // polls, rather than in the first candle read, which would hold up every symbol of the worker.
  if (!isBuiltinStrategy(opts.strategy)) {
    try {
      loadStrategy(opts.strategy);
    } catch (err) {
      log.warn({ strategy: opts.strategy, error: (err as Error).message }, 'the configured strategy cannot be loaded: its symbols make no entries until it can');
    }
  }
  const home = opts.home;
  if (home !== undefined) {
    // One source per set of model parts (a symbol may be switched to another strategy), made on
    // first use. A missing or broken model never throws into trading: the signal says ok:false
    // (no new entries, protective exits continue) and an alert goes out.
    const sources = new Map<string, ReturnType<typeof createModelSignalSource>>();
    deps.modelSignal = (parts) => {
      const key = strategyServing(parts);
      if (key === undefined) return undefined;
      let src = sources.get(key);
      if (!src) {
        src = createModelSignalSource({
          strategy: key,
          resolver,
          modelsRoot: modelsDir(home),
          fallbackDir: BOOTSTRAP_MODEL_DIR,
          onProblem: (p) => {
            log.warn({ problem: p }, 'model problem: no new entries on the affected symbols');
            opts.alerts?.enqueue(modelFallbackAlert({ symbol: p.symbol, version: p.version, error: p.error, problem: p.key }));
          },
        });
        sources.set(key, src);
      }
      return src;
    };
  }
  // Workflows from before strategies were files ask for no strategy: the model of the configured built-in serves them, as then.
  const parts = isBuiltinStrategy(opts.strategy) ? STRATEGY_PARTS[opts.strategy] : [];
  if (parts.length > 0) {
    if (!deps.modelSignal) throw new Error(`strategy ${opts.strategy} reads its models from TRADER_HOME: give buildTradingDeps a home`);
    deps.signal = deps.modelSignal(parts);
  }
  return { deps, venue, ledger, paperStore, mode, symbols, timeframe };
}

/** The labels a model version was trained with (its manifest), to score its live predictions the same way. */
function modelLabels(resolver: ModelResolver, modelsRoot: string): (version: string) => Promise<LabelOptions> {
  return async (version) => {
    const known = await resolver.find(version);
    const bootstrap = readManifest(BOOTSTRAP_MODEL_DIR);
    const dir = known ?? (bootstrap.id === version ? BOOTSTRAP_MODEL_DIR : path.join(modelsRoot, version));
    const { horizon, roundTripCost } = (dir === BOOTSTRAP_MODEL_DIR ? bootstrap : readManifest(dir)).labels;
    return { horizon, roundTripCost };
  };
}
