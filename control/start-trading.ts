import type { Client } from '@temporalio/client';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import type { AppConfig } from '../infra/config';
import { timeframeToMs } from '../lib/candles';
import { RiskConfig, riskInputFromEnv } from '../lib/risk';
import { engineConfig, type EngineConfig } from '../lib/engine';
import { DEFAULT_FEE_BPS } from '../lib/backtest';
import { portfolioWorkflowId } from '../lib/contracts/trading';
import type { PortfolioInput, SymbolTraderInput } from '../lib/contracts/workflows';

/**
 * How trading is started, in one place: `trader up`, the benchmarks and the tests build the
 * workflows' inputs here and start the PortfolioWorkflow, which starts one SymbolTraderWorkflow
 * per symbol (activities/trading startSymbolWorkflows).
 */

/** One engine configuration per symbol, from the environment's risk settings. */
export function engineConfigs(cfg: Pick<AppConfig, 'risk'>, symbols: string[], timeframe: string, strategy: string, strategyParams?: Record<string, unknown>): EngineConfig[] {
  const risk = RiskConfig.parse(riskInputFromEnv(cfg.risk));
  return symbols.map((symbol) =>
    engineConfig({
      symbol,
      strategy,
      ...(strategyParams ? { strategyParams } : {}),
      risk,
      timeframeMs: timeframeToMs(timeframe),
      sleeveCapital: cfg.risk.initialCapital / symbols.length,
      // The paper exchange's taker fee, as the backtester passes it.
      feeRate: DEFAULT_FEE_BPS / 10_000,
    }),
  );
}

export interface TradingPlan {
  account: string;
  /** The exchange label of the workflow ids (`replay` for a replay). */
  exchange: string;
  mode: SymbolTraderInput['mode'];
  symbols: string[];
  timeframe: string;
  /** A built-in's name, a strategy file's name, or an absolute path to one (workers/strategy-ref.ts). */
  strategy: string;
  strategyParams?: Record<string, unknown>;
  /** Replay only: 'max' or simulated seconds per real second. */
  speed?: 'max' | number;
  /** Live/paper: how long after a close the candle is asked for (exchanges publish late). Default 5 s. */
  candleDelayMs?: number;
}

/** The SymbolTraderWorkflow inputs of a plan. */
export function symbolTraderInputs(cfg: Pick<AppConfig, 'risk'>, plan: TradingPlan): SymbolTraderInput[] {
  return engineConfigs(cfg, plan.symbols, plan.timeframe, plan.strategy, plan.strategyParams).map((engine) => ({
    symbol: engine.symbol,
    exchange: plan.exchange,
    account: plan.account,
    mode: plan.mode,
    timeframe: plan.timeframe,
    timeframeMs: engine.timeframeMs,
    engine,
    candleDelayMs: plan.candleDelayMs ?? 5_000,
    speed: plan.mode === 'replay' ? (plan.speed ?? 'max') : undefined,
  }));
}

/** The PortfolioWorkflow input of a plan: the account's limits and its symbols. */
export function portfolioInput(cfg: Pick<AppConfig, 'risk' | 'temporal'>, plan: TradingPlan, symbols: SymbolTraderInput[] = symbolTraderInputs(cfg, plan)): PortfolioInput {
  return {
    account: plan.account,
    exchange: plan.exchange,
    mode: plan.mode,
    symbols,
    taskQueue: cfg.temporal.taskQueue,
    limits: { maxDrawdown: cfg.risk.maxDrawdown, dailyLossLimit: RiskConfig.parse({}).dailyLossLimit },
    checkEveryMs: plan.mode === 'replay' ? 5_000 : 60_000,
  };
}

/**
 * Starts (or joins: a running portfolio is kept) the portfolio of `input`, which starts its
 * symbol workflows. Returns the portfolio's workflow id.
 */
export async function startPortfolio(client: Client, input: PortfolioInput): Promise<string> {
  const workflowId = portfolioWorkflowId(input.account);
  await client.workflow.start('portfolioWorkflow', {
    workflowId,
    taskQueue: input.taskQueue,
    args: [input],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    staticSummary: `Portfolio ${input.account}: ${input.symbols.map((s) => s.symbol).join(', ')} (${input.mode})`,
  });
  return workflowId;
}
