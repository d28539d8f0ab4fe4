import { z } from 'zod';
import type { Candle } from '../candles';
import { FEATURE_SCHEMA } from '../features';
import { FeeSchedule, SlippageModel } from '../exchange/fill-model';
import { RiskConfig, type RiskConfigInput } from '../risk';
import {
  engineConfig,
  initialSymbolState,
  markAccount,
  runCandleStep,
  positionForStrategy,
  sleeveEquity,
  StrategyRef,
  type SignalStrategyIdentity,
  type AccountMarks,
  type ClosedTrade,
  type EngineConfig,
  type EngineContext,
  type OrderRejection,
  type PortfolioView,
  type StepCursor,
  type StepPorts,
  type SymbolState,
} from '../engine';
import { silentLog } from '../log';
import { executeIntentsStep, nextReplayIndex, prepareCandleStep, type SignalFn } from '../trading/candle-io';
import { FeatureCache } from '../features/cache';
import { spotMarket, StaticMarketCatalog } from '../exchange/markets';
import { PaperExchange } from '../exchange/paper-exchange';
import { InMemoryPaperStateStore, type PaperStateStore } from '../exchange/paper-state';
import { ReplayMarketData } from '../exchange/replay-market-data';
import { computeMetrics, type BacktestMetrics, type EquityPoint } from './metrics';
import { backtestStatistics, type BacktestStatistics } from './statistics';
import { symbolWorkflowId } from '../contracts/trading';
import type { StrategyHost } from '../strategy/host';

/**
 * The backtester: for every candle time in order, and every symbol closing then in sorted order,
 * exactly the step the SymbolTraderWorkflow runs (lib/engine runCandleStep: prepareCandleStep ->
 * fills -> decide -> executeIntentsStep), against the same PaperExchange, fed candle by candle with a
 * simulated clock at each candle's close. Orders placed at a close fill on later candles by the
 * paper exchange's own fill model (fees, slippage, stop and target in one candle resolved against
 * us), so a replay through Temporal over the same files gives the same trades.
 *
 * Each symbol trades its own sleeve (INITIAL_CAPITAL / number of symbols) in its own paper account,
 * so no symbol's fills depend on another's. The account-wide entry gates (concurrent positions,
 * total exposure, drawdown, daily loss) are off by default, as in `trader up --replay`, where each
 * symbol workflow replays at its own pace and no consistent account view exists; with
 * `accountGates` they read the account as the sum of the sleeves (lib/engine markAccount), updated
 * after every symbol's step: symbols closing at the same time decide in symbol order, each seeing
 * the entries of those before it, so a limit of N positions is never exceeded. Deterministic, but
 * with no replay counterpart.
 *
 * At the end of the data, open positions stay open and are reported as `openPositions`, marked at
 * the last close: the workflow cannot know that data ended either, and closing them at an
 * invented exit would add trades that a replay does not have.
 */

export const DEFAULT_FEE_BPS = 10; // the paper exchange's default: 0.1 % maker and taker (Binance spot base rate)
export const DEFAULT_SLIPPAGE_BPS = 0; // the paper exchange's default

export class BacktestInputError extends Error {
  override name = 'BacktestInputError';
}

/** One symbol's recorded candles, as the backtester replays them. */
export interface BacktestSeries {
  /** Where the candles come from, for the report: a file path, or `store:<exchange>` (the candle store). */
  source: string;
  exchange: string;
  symbol: string;
  timeframe: string;
  timeframeMs: number;
  /** Ascending, unique open times. */
  candles: Candle[];
}

export const BacktestOptionsSchema = z.object({
  series: z.array(z.object({ source: z.string().min(1), symbol: z.string().min(1), timeframe: z.string().min(1) }).loose()).min(1, 'at least one candle series'),
  strategy: StrategyRef,
  strategyParams: z.record(z.string(), z.unknown()).optional(),
  risk: z.record(z.string(), z.unknown()).optional(),
  initialCapital: z.number().positive().finite(),
  fees: FeeSchedule.optional(),
  slippage: SlippageModel.partial().optional(),
  accountGates: z.boolean().optional(),
});

export interface SimulateOptions {
  series: BacktestSeries[];
  /** The strategy's reference (a built-in's name, a strategy file's name or path), for the engine config and the report. */
  strategy: string;
  /** Its parameters, as the engine config carries them. */
  strategyParams?: Record<string, unknown>;
  /**
   * The strategy, loaded (infra/strategies.ts prepareStrategy): run on every candle as the
   * candle-read activity runs it. Absent: the engine runs the built-in named by `strategy` itself
   * (the model evaluation's backtests), with no identity on the trades.
   */
  strategyHost?: StrategyHost;
  risk?: RiskConfigInput;
  initialCapital: number;
  /** Fractions (0.001 = 10 bps). Default DEFAULT_FEE_BPS both sides. */
  fees?: FeeSchedule;
  slippage?: Partial<SlippageModel>;
  /** Model signal for ensemble/ppo/hybrid (the models issue provides it). */
  signal?: SignalFn;
  /** Also apply the account-wide entry gates (see above). Default false, for parity with a replay. */
  accountGates?: boolean;
  /** Where the paper accounts live. Default: in memory. */
  paperStore?: PaperStateStore;
}

export interface OpenPositionReport {
  symbol: string;
  side: 'long';
  qty: number;
  entryTime: number;
  entryPrice: number;
  markTime: number | null;
  markPrice: number | null;
  /** At the mark, after the entry fee (no exit fee). */
  unrealizedPnl: number | null;
  stopPrice: number | null;
  targetPrice: number | null;
}

export interface SymbolSummary {
  symbol: string;
  exchange: string;
  timeframe: string;
  file: string;
  candles: number;
  decisions: number;
  untradableCandles: number;
  firstDecisionTime: number | null;
  lastCandleTime: number | null;
  trades: number;
  realizedPnl: number;
  feesPaid: number;
  buyAndHoldReturn: number | null;
}

export interface BacktestResult {
  config: {
    files: string[];
    symbols: string[];
    strategy: string;
    /** Who answered: name, version, source and parameter hashes (absent without a strategy host). */
    strategyIdentity?: SignalStrategyIdentity;
    strategyParams?: Record<string, unknown>;
    initialCapital: number;
    sleeveCapital: number;
    fees: FeeSchedule;
    slippage: SlippageModel;
    risk: RiskConfig;
    accountGates: boolean;
    featureSchema: { version: number; hash: string };
  };
  trades: ClosedTrade[];
  openPositions: OpenPositionReport[];
  metrics: BacktestMetrics;
  /** freqtrade's figures: CAGR, streaks, durations, best/worst trade and day, monthly returns, per-symbol and per-exit-reason tables. */
  statistics: BacktestStatistics;
  equityCurve: EquityPoint[];
  symbols: SymbolSummary[];
  rejected: Array<OrderRejection & { symbol: string; time: number }>;
  /** Equity from the paper accounts' own balances at the end; equals metrics.finalEquity up to float rounding. */
  exchangeEquity: number;
}

interface Runner {
  file: BacktestSeries;
  cfg: EngineConfig;
  /** The engine context of the symbol's steps (its workflow id), made once. */
  ctx: EngineContext;
  state: SymbolState;
  cursor: StepCursor;
  ports: StepPorts;
  exchange: PaperExchange;
  quote: string;
  base: string;
  done: boolean;
  /** Close time of the candle the next step will decide on (when not done). */
  nextClose: number;
  mark: number | null;
  markTime: number | null;
  firstDecision: Candle | null;
  decisions: number;
  untradable: number;
}

/**
 * The backtest over candles in memory (the backtester application, backtester/, loads them from
 * files or the candle store).
 */
export async function simulateBacktest(options: SimulateOptions): Promise<BacktestResult> {
  const parsed = BacktestOptionsSchema.safeParse(options);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new BacktestInputError(`backtest options: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  const riskParsed = RiskConfig.safeParse(options.risk ?? {});
  if (!riskParsed.success) {
    const i = riskParsed.error.issues[0];
    throw new BacktestInputError(`risk config: ${i.path.join('.')}: ${i.message}`);
  }
  const risk = riskParsed.data;
  const fees = FeeSchedule.parse(options.fees ?? { maker: DEFAULT_FEE_BPS / 10_000, taker: DEFAULT_FEE_BPS / 10_000 });
  const slippage = SlippageModel.parse({ bps: DEFAULT_SLIPPAGE_BPS, ...options.slippage });
  const files = [...options.series];
  const seen = new Map<string, string>();
  for (const f of files) {
    const prev = seen.get(f.symbol);
    if (prev) throw new BacktestInputError(`${f.symbol} is given twice (${prev} and ${f.source}); one series per symbol`);
    seen.set(f.symbol, f.source);
  }
  files.sort((a, b) => (a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0));

  const sleeveCapital = options.initialCapital / files.length;
  const store = options.paperStore ?? new InMemoryPaperStateStore();
  const log = silentLog;
  // The account view the entry gates read (accountGates), updated by the loop.
  const gate: { view: PortfolioView | undefined } = { view: undefined };

  const runners: Runner[] = files.map((file) => {
    const { symbol, timeframe, timeframeMs, candles } = file;
    let now = 0;
    let data: ReplayMarketData;
    try {
      data = new ReplayMarketData({ now: () => now }).addCandles(symbol, timeframe, candles);
    } catch (err) {
      throw new BacktestInputError(`${file.source}: ${(err as Error).message}`);
    }
    const market = spotMarket(symbol);
    const exchange = new PaperExchange({
      account: `backtest/${symbol}`,
      store,
      marketData: data,
      markets: new StaticMarketCatalog([market]),
      timeframe,
      initialBalances: { [market.quote]: sleeveCapital },
      fees,
      slippage,
      now: () => now,
      log,
    });
    const features = new FeatureCache({ source: data, history: 'all' });
    const workflowId = symbolWorkflowId(file.exchange, symbol);
    const cfg = engineConfig({ symbol, strategy: options.strategy, ...(options.strategyParams ? { strategyParams: options.strategyParams } : {}), risk, timeframeMs, sleeveCapital, feeRate: fees.taker });
    const replay = { candles: () => candles, setNow: (ms: number) => void (now = Math.max(now, ms)) };
    const prepareDeps = { exchange, features, signal: options.signal, replay, strategy: options.strategyHost };
    const ports: StepPorts = {
      prepare: (cursor, state) => prepareCandleStep(prepareDeps, { workflowId, symbol, timeframe, after: cursor.after, fillsSince: cursor.fillsSince, position: positionForStrategy(state) }),
      // As the workflow sends them: follow-ups (an entry's stop and target) in the same call.
      execute: (intents, _why, state) => executeIntentsStep({ exchange }, { symbol, intents, engine: { state, cfg, ctx: { workflowId } } }),
      portfolio: () => (options.accountGates ? gate.view : undefined),
    };
    return {
      file, cfg, ports, exchange,
      ctx: { workflowId },
      state: initialSymbolState(cfg),
      cursor: { after: null, fillsSince: 0 },
      quote: market.quote, base: market.base,
      done: false, nextClose: Infinity, mark: null, markTime: null, firstDecision: null, decisions: 0, untradable: 0,
    };
  });
  // The sleeves the account is marked from, one per runner (same order), updated after each step:
  // not rebuilt at every candle time.
  const sleeves = runners.map(sleeveOf);

  const loop: LoopState = {
    runners,
    sleeves,
    accountGates: options.accountGates === true,
    trades: [],
    rejected: [],
    equityCurve: [],
    minTf: Math.min(...runners.map((r) => r.file.timeframeMs)),
    marks: null,
    gate,
    exposed: 0,
    started: 0,
  };
  // One candle time per call: the loop body is its own function, optimized like any other after
  // a few calls, instead of the whole backtest being compiled on-stack (OSR) again in every run.
  while (await stepCandleTime(loop));
  const { trades, rejected, equityCurve, minTf, exposed, started } = loop;

  const bh = runners.filter((r) => r.firstDecision && r.mark !== null).map((r) => (r.mark as number) / (r.firstDecision as Candle).close - 1);
  const metrics = computeMetrics({
    equity: equityCurve.length > 0 ? equityCurve : [{ time: 0, equity: options.initialCapital }],
    trades,
    timeframeMs: minTf,
    exposure: started > 0 ? exposed / started : 0,
    buyAndHoldReturn: bh.length > 0 ? bh.reduce((a, b) => a + b, 0) / bh.length : null,
  });

  const symbolChanges = runners.map((r) => (r.firstDecision && r.mark !== null ? r.mark / r.firstDecision.close - 1 : null));
  const statistics = backtestStatistics({ trades, equity: equityCurve, symbolChanges });

  let exchangeEquity = 0;
  for (const r of runners) {
    const bal = await r.exchange.fetchBalance();
    exchangeEquity += (bal[r.quote]?.total ?? 0) + (bal[r.base]?.total ?? 0) * (r.mark ?? 0);
  }

  return {
    config: {
      files: files.map((f) => f.source),
      symbols: files.map((f) => f.symbol),
      strategy: options.strategy,
      ...(options.strategyHost ? { strategyIdentity: options.strategyHost.identity } : {}),
      ...(options.strategyHost ? { strategyParams: options.strategyHost.params } : options.strategyParams ? { strategyParams: options.strategyParams } : {}),
      initialCapital: options.initialCapital,
      sleeveCapital,
      fees,
      slippage,
      risk,
      accountGates: options.accountGates === true,
      featureSchema: { version: FEATURE_SCHEMA.version, hash: FEATURE_SCHEMA.hash },
    },
    trades,
    openPositions: runners.filter((r) => r.state.position).map(openPositionOf),
    metrics,
    statistics,
    equityCurve,
    symbols: runners.map((r, i) => ({
      symbol: r.file.symbol,
      exchange: r.file.exchange,
      timeframe: r.file.timeframe,
      file: r.file.source,
      candles: r.file.candles.length,
      decisions: r.decisions,
      untradableCandles: r.untradable,
      firstDecisionTime: r.firstDecision?.timestamp ?? null,
      lastCandleTime: r.markTime,
      trades: r.state.tradesClosed,
      realizedPnl: r.state.realizedPnl,
      feesPaid: r.state.feesPaid,
      buyAndHoldReturn: symbolChanges[i],
    })),
    rejected,
    exchangeEquity,
  };
}

/** The backtest loop's state between candle times (stepCandleTime). */
interface LoopState {
  runners: Runner[];
  /** The sleeves the account is marked from, one per runner (same order), updated after each step. */
  sleeves: Array<ReturnType<typeof sleeveOf>>;
  accountGates: boolean;
  trades: ClosedTrade[];
  rejected: BacktestResult['rejected'];
  equityCurve: EquityPoint[];
  minTf: number;
  marks: AccountMarks | null;
  /** The account view the entry gates read (accountGates). */
  gate: { view: PortfolioView | undefined };
  exposed: number;
  started: number;
}

/**
 * Steps every symbol closing at the next candle time, in symbol order, and marks the account
 * then. False when every symbol is done.
 */
async function stepCandleTime(loop: LoopState): Promise<boolean> {
  const { runners, sleeves } = loop;
  // The next close time of each symbol, as prepareCandleStep will pick it.
  let t = Infinity;
  for (const r of runners) {
    if (r.done) continue;
    const next = nextCandle(r);
    if (!next) {
      r.done = true;
      continue;
    }
    r.nextClose = next.timestamp + r.file.timeframeMs;
    t = Math.min(t, r.nextClose);
  }
  if (t === Infinity) return false;
  if (loop.equityCurve.length === 0) {
    const first = markAccount(sleeves, t - loop.minTf, null);
    loop.marks = first.marks;
    loop.gate.view = first.view;
    loop.equityCurve.push({ time: t - loop.minTf, equity: first.view.equity });
  }
  for (let k = 0; k < runners.length; k++) {
    const r = runners[k];
    // Due now: not done when the close times were taken above, and closing at t (a runner
    // stepped earlier in this loop cannot become due again: its next close is after t).
    if (r.done || r.nextClose !== t) continue;
    const out = await runCandleStep(r.state, r.cursor, r.ports, r.cfg, r.ctx);
    r.state = out.state;
    r.cursor = out.cursor;
    sleeves[k] = sleeveOf(r);
    for (const c of out.closed) loop.trades.push(c);
    for (const rej of out.rejected) loop.rejected.push({ ...rej, symbol: r.file.symbol, time: t });
    if (out.done) r.done = true;
    if (out.candle) {
      r.mark = out.candle.close;
      sleeves[k] = sleeveOf(r);
      if (loop.accountGates) loop.gate.view = markAccount(sleeves, t, loop.marks).view;
      r.markTime = out.candle.timestamp;
      r.firstDecision ??= out.candle;
      r.decisions++;
      if (out.tradable === false) r.untradable++;
    }
  }
  const m = markAccount(sleeves, t, loop.marks);
  loop.marks = m.marks;
  loop.gate.view = m.view;
  loop.equityCurve.push({ time: t, equity: m.view.equity });
  for (const r of runners) {
    if (r.firstDecision === null) continue;
    loop.started++;
    if (r.state.position) loop.exposed++;
  }
  return true;
}

function sleeveOf(r: Runner) {
  return { state: r.state, sleeveCapital: r.cfg.sleeveCapital, mark: r.mark };
}

/** The candle prepareCandleStep will pick next. */
function nextCandle(r: Runner): Candle | undefined {
  return r.file.candles[nextReplayIndex(r.file.candles, r.cursor.after)];
}

function openPositionOf(r: Runner): OpenPositionReport {
  const p = r.state.position as NonNullable<SymbolState['position']>;
  return {
    symbol: r.file.symbol,
    side: 'long',
    qty: p.qty,
    entryTime: p.entryTime,
    entryPrice: p.entryPrice,
    markTime: r.markTime,
    markPrice: r.mark,
    unrealizedPnl: r.mark === null ? null : sleeveEquity(r.state, r.cfg, r.mark) - sleeveEquity(r.state, r.cfg),
    stopPrice: p.stopPrice,
    targetPrice: p.targetPrice,
  };
}
