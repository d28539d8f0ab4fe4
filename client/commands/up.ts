import fs from 'node:fs';
import path from 'node:path';
import { WorkflowIdConflictPolicy } from '@temporalio/common';
import type { AppConfig } from '../../infra/config';
import { timeframeToMs } from '../../lib/candles';
import { RiskConfig, riskInputFromEnv } from '../../lib/risk';
import { DEFAULT_FEE_BPS } from '../../lib/backtest/run';
import { engineConfig, type EngineConfig, type StrategyName } from '../../lib/engine';
import { Ledger } from '../../ledger';
import { PostgresPaperStateStore } from '../../activities/exchange/paper-state-pg';
import { LedgerTradeRecorder } from '../../activities/trading/recorder';
import { exchangeVenue, replayVenue } from '../../activities/trading/venue';
import { FeatureCache } from '../../lib/features/cache';
import type { TradingDeps, Venue } from '../../activities/trading';
import { createAlertDispatcher, type AlertDispatcher } from '../../activities/alerts';
import type { Logger } from '../../infra/logger';
import { portfolioWorkflowId, symbolWorkflowId } from '../../workflows/messages';
import type { PortfolioInput } from '../../workflows/portfolio';
import type { SymbolTraderInput } from '../../workflows/symbol-trader';
import { onShutdownSignal, openStack, processLogger, startTradingWorker, type Stack } from '../../infra/stack';
import { UsageError } from '../../infra/errors';

export interface UpOptions {
  replay?: string[];
  strategy?: StrategyName;
  /** 'max' or simulated seconds per real second. */
  speed?: 'max' | number;
  exitWhenDone?: boolean;
  /** false: never start the Telegram bot in this process. */
  telegram?: boolean;
}

/** What the last `trader up` ran, so `trader trades` after it has exited reads the right ledger. */
export interface LastRun {
  mode: 'paper' | 'live' | 'replay';
  database: string | null;
  account: string;
  exchange: string;
  symbols: string[];
  startedAt: string;
  finishedAt?: string;
}

export const REPLAY_DATABASE = 'ledger_replay';

/** The paper/live account `trader up` trades (and the CLI and Telegram bot address by default). */
export function accountName(cfg: Pick<AppConfig, 'mode' | 'exchange'>): string {
  return `${cfg.mode}-${cfg.exchange.id}`;
}

export interface TradingSetup {
  deps: TradingDeps;
  venue: Venue;
  ledger: Ledger;
  symbols: string[];
  timeframe: string;
  account: string;
  exchangeLabel: string;
  mode: SymbolTraderInput['mode'];
}

/**
 * What a trading worker needs, for `trader up` and `trader worker`: the venue (replay files, or
 * the configured exchange in paper or live mode), the feature cache, the ledger recorder.
 */
export function buildTrading(cfg: AppConfig, stack: Stack, log: Logger, replayFiles?: string[], opts: { strategy?: StrategyName; alerts?: AlertDispatcher } = {}): TradingSetup {
  const replay = replayFiles !== undefined && replayFiles.length > 0;
  const ledger = new Ledger(stack.db.sql, { actor: 'trader', log });
  const store = new PostgresPaperStateStore(stack.db.sql);
  const exchangeLabel = replay ? 'replay' : cfg.exchange.id;
  const account = replay ? 'replay' : accountName(cfg);
  const mode: SymbolTraderInput['mode'] = replay ? 'replay' : cfg.mode;
  let venue: Venue;
  let symbols: string[];
  let timeframe: string;
  let features: FeatureCache;
  if (replay) {
    const rv = replayVenue({ files: replayFiles, store, account, initialCapital: cfg.risk.initialCapital, log });
    venue = rv;
    symbols = [...new Set(rv.series.map((s) => s.symbol))].sort();
    timeframe = rv.series[0].timeframe;
    // Streams from the first recorded candle (up to the asked one), as the backtester's batch does.
    features = new FeatureCache({ source: rv.data.at(Number.MAX_SAFE_INTEGER), history: 'all' });
  } else {
    venue = exchangeVenue(cfg, store, account, log);
    symbols = cfg.symbols;
    timeframe = cfg.timeframe;
    features = new FeatureCache({ source: venue.adapter(null) });
  }
  const deps: TradingDeps = {
    log,
    ledger,
    venue,
    features,
    recorder: (workflowId: string) => new LedgerTradeRecorder(ledger, { workflowId, mode, exchange: venue.exchangeId }),
    initialCapital: cfg.risk.initialCapital,
    client: stack.temporal.client,
  };
  const strategy = opts.strategy ?? (cfg.strategy as StrategyName);
  if (strategy !== 'rules') {
    // Models: the registry's champion (or the version a reload names), else the committed
    // bootstrap model. A missing or broken model never throws into trading: the signal says
    // ok:false (no new entries, protective exits continue) and an alert goes out.
    const { createModelSignalSource, registryResolver, BOOTSTRAP_MODEL_DIR } = require('../../models/signal') as typeof import('../../models/signal');
    const { modelsDir } = require('../../models/registry') as typeof import('../../models/registry');
    deps.signal = createModelSignalSource({
      strategy,
      resolver: registryResolver(stack.db.sql),
      modelsRoot: modelsDir(cfg.home),
      fallbackDir: BOOTSTRAP_MODEL_DIR,
      onProblem: (p) => {
        log.warn({ problem: p }, 'model problem: no new entries on the affected symbols');
        opts.alerts?.enqueue({ severity: 'warning', key: p.key, text: p.text });
      },
    });
  }
  return { deps, venue, ledger, symbols, timeframe, account, exchangeLabel, mode };
}

/** The training worker (task queue `training`): one activity at a time, so training never starves trading of CPU for long. */
export async function startTrainingWorker(cfg: AppConfig, stack: Stack, log: Logger): Promise<{ shutdown(): void; done: Promise<void> }> {
  const { createTrainingWorker, trainingActivitiesFor } = require('../../workers/training') as typeof import('../../workers/training');
  const worker = await createTrainingWorker({
    connection: stack.temporal.nativeConnection,
    namespace: stack.temporal.namespace,
    activities: trainingActivitiesFor(cfg, stack.db.sql, log),
  });
  const done = worker.run().catch((err: unknown) => log.error({ err }, 'the training worker stopped with an error'));
  return {
    shutdown: () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
    },
    done: done.then(() => undefined),
  };
}

/** The Telegram bot inside `trader up`; a bot that cannot start is logged, never fatal to trading. */
async function startBot(cfg: AppConfig, stack: Stack, account: string, exchange: string, ledger: Ledger, alerts: AlertDispatcher, log: Logger): Promise<{ stop(): Promise<void> } | null> {
  const { startTelegramBot } = require('../../telegram/bot') as typeof import('../../telegram/bot');
  const { TradingControl } = require('../../control/trading-control') as typeof import('../../control/trading-control');
  try {
    const bot = await startTelegramBot({ cfg, control: new TradingControl(stack.temporal.client, { account, exchange }), log: log.child({ worker: 'telegram' }), ledger, alerts });
    log.info({ bot: bot.username }, 'Telegram bot running');
    return bot;
  } catch (err) {
    log.error({ err }, 'the Telegram bot could not start (check TELEGRAM_BOT_TOKEN / TELEGRAM_API_ROOT); trading continues without it');
    return null;
  }
}

export function lastRunFile(home: string): string {
  return path.join(home, 'last-run.json');
}

export function readLastRun(home: string): LastRun | null {
  try {
    return JSON.parse(fs.readFileSync(lastRunFile(home), 'utf8')) as LastRun;
  } catch {
    return null;
  }
}

function writeLastRun(home: string, run: LastRun): void {
  fs.mkdirSync(home, { recursive: true });
  fs.writeFileSync(lastRunFile(home), JSON.stringify(run, null, 2) + '\n');
}

/** One engine configuration per symbol, from the environment's risk settings. */
export function engineConfigs(cfg: AppConfig, symbols: string[], timeframe: string, strategy: StrategyName): EngineConfig[] {
  const risk = RiskConfig.parse(riskInputFromEnv(cfg.risk));
  return symbols.map((symbol) =>
    engineConfig({
      symbol,
      strategy,
      risk,
      timeframeMs: timeframeToMs(timeframe),
      sleeveCapital: cfg.risk.initialCapital / symbols.length,
      // The paper exchange's taker fee, as the backtester passes it.
      feeRate: DEFAULT_FEE_BPS / 10_000,
    }),
  );
}

/**
 * `trader up` (what `npm start` runs): the embedded (or configured) stack, the trading worker,
 * the portfolio workflow and through it one SymbolTraderWorkflow per symbol. With `--replay`,
 * the same workflows over recorded candles on a simulated clock and the paper exchange, in a
 * ledger database of their own (`ledger_replay`, fresh each time).
 */
export async function runUp(cfg: AppConfig, opts: UpOptions = {}): Promise<void> {
  const log = processLogger(cfg);
  const replay = opts.replay && opts.replay.length > 0;
  if (replay) {
    for (const f of opts.replay!) if (!fs.existsSync(f)) throw new UsageError(`--replay: no such file: ${f}`);
  }
  if (!replay && cfg.mode === 'live') {
    const banner = `LIVE TRADING: DRY_RUN=false, real orders on ${cfg.exchange.id}${cfg.exchange.sandbox ? ' (sandbox)' : ''} for ${cfg.symbols.join(', ')}`;
    console.error(`\n${'!'.repeat(banner.length)}\n${banner}\n${'!'.repeat(banner.length)}\n`);
    log.warn({ exchange: cfg.exchange.id, symbols: cfg.symbols, sandbox: cfg.exchange.sandbox }, banner);
  }
  const stopSignal = onShutdownSignal(log);
  const stack = await openStack(cfg, log, replay ? { database: REPLAY_DATABASE, fresh: true } : {});
  const { temporal, db } = stack;
  const strategy: StrategyName = opts.strategy ?? (cfg.strategy as StrategyName);
  const alerts = createAlertDispatcher(cfg, log);
  const t = buildTrading(cfg, stack, log, opts.replay, { strategy, alerts });
  const { symbols, timeframe, account, exchangeLabel, mode, ledger } = t;
  writeLastRun(cfg.home, { mode, database: replay ? REPLAY_DATABASE : null, account, exchange: exchangeLabel, symbols, startedAt: new Date().toISOString() });

  const worker = await startTradingWorker(stack, stopSignal, t.deps, alerts);
  // The training task queue (RetrainWorkflow, `trader schedule retrain`) runs in this process too.
  const training = replay ? null : await startTrainingWorker(cfg, stack, log);
  const bot = cfg.telegram && !replay && opts.telegram !== false ? await startBot(cfg, stack, account, exchangeLabel, ledger, alerts, log) : null;

  const engines = engineConfigs(cfg, symbols, timeframe, strategy);
  const inputs: SymbolTraderInput[] = engines.map((engine) => ({
    symbol: engine.symbol,
    exchange: exchangeLabel,
    account,
    mode,
    timeframe,
    timeframeMs: engine.timeframeMs,
    engine,
    candleDelayMs: 5_000,
    speed: replay ? (opts.speed ?? 'max') : undefined,
  }));
  const client = temporal.client;
  const portfolioId = portfolioWorkflowId(account);
  if (replay) await terminateLeftovers(stack, [portfolioId, ...inputs.map((i) => symbolWorkflowId(i.exchange, i.symbol))]);
  const portfolioInput: PortfolioInput = {
    account,
    exchange: exchangeLabel,
    mode,
    symbols: inputs,
    taskQueue: cfg.temporal.taskQueue,
    limits: { maxDrawdown: cfg.risk.maxDrawdown, dailyLossLimit: RiskConfig.parse({}).dailyLossLimit },
    checkEveryMs: replay ? 5_000 : 60_000,
  };
  await client.workflow.start('portfolioWorkflow', {
    workflowId: portfolioId,
    taskQueue: cfg.temporal.taskQueue,
    args: [portfolioInput],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    staticSummary: `Portfolio ${account}: ${symbols.join(', ')} (${mode})`,
  });

  // The whole stack end to end before trading starts: a workflow, a durable timer, the ledger.
  const check = await client.workflow.execute('systemCheckWorkflow', {
    taskQueue: cfg.temporal.taskQueue,
    workflowId: `system-check/${new Date().toISOString()}`,
    args: [{ pause: '1 second' }],
  });
  console.log(
    [
      '',
      `durable-trader is up (${mode} mode, ${exchangeLabel}, ${symbols.join(', ')}, ${timeframe}, strategy ${strategy})`,
      `  Temporal Web UI: ${temporal.uiUrl ?? '(external cluster: use its UI)'}   server ${temporal.address}, namespace ${temporal.namespace}`,
      `  Workflows: ${portfolioId} and ${inputs.map((i) => symbolWorkflowId(i.exchange, i.symbol)).join(', ')}`,
      `  Paused symbols are one query away in the UI: TradingStatus = "paused"`,
      `  PostgreSQL ledger: ${db.url}${db.embedded ? ' (embedded)' : ''}`,
      `  State under: ${cfg.home}`,
      `  System check: workflow ${check.workflowId} wrote audit rows ${check.first.auditId} and ${check.second.auditId} (PostgreSQL ${check.second.serverVersion})`,
      replay ? `  Replaying ${opts.replay!.length} file(s) at speed ${opts.speed ?? 'max'}${opts.exitWhenDone ? '; exits when the data is exhausted' : ''}` : '  Ctrl-C stops everything cleanly; `npm start` again resumes.',
      `  In another terminal: npx trader status | positions | trades | stop [SYMBOL] | resume [SYMBOL] | emergency --yes`,
      '',
    ].join('\n'),
  );

  if (replay && opts.exitWhenDone) {
    // The portfolio starts the symbol workflows; wait for each to exist, then for its result.
    const finished = Promise.all(
      inputs.map(async (i) => {
        const handle = client.workflow.getHandle(symbolWorkflowId(i.exchange, i.symbol));
        for (let waited = 0; ; waited += 250) {
          try {
            await handle.describe();
            break;
          } catch (err) {
            if (waited > 120_000) throw err;
            await new Promise((r) => setTimeout(r, 250));
          }
        }
        return handle.result();
      }),
    );
    const outcome = await Promise.race([finished.then((r) => ({ kind: 'done' as const, r })), stopSignal.then(() => ({ kind: 'signal' as const }))]);
    if (outcome.kind === 'done') {
      await client.workflow.getHandle(portfolioId).terminate('replay finished').catch(() => undefined);
      const trades = await ledger.trades();
      console.log(`Replay finished: ${outcome.r.map((r) => `${r.symbol} ${r.decisions} decisions, ${r.tradesClosed} trades`).join('; ')}. ${trades.length} trades in the ledger (npx trader trades).`);
      writeLastRun(cfg.home, { ...readLastRun(cfg.home)!, finishedAt: new Date().toISOString() });
      process.kill(process.pid, 'SIGTERM');
    }
  }
  training?.shutdown();
  await worker.untilStopped();
  await training?.done;
  await bot?.stop().catch(() => undefined);
  await alerts.stop();
}

async function terminateLeftovers(stack: Stack, ids: string[]): Promise<void> {
  for (const id of ids) {
    try {
      const d = await stack.temporal.client.workflow.getHandle(id).describe();
      if (d.status.name === 'RUNNING') await stack.temporal.client.workflow.getHandle(id).terminate('a new replay starts');
    } catch {
      // not found: nothing to do
    }
  }
}
