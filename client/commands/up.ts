import fs from 'node:fs';
import path from 'node:path';
import type { AppConfig } from '../../infra/config';
import { UsageError } from '../../infra/errors';
import { onShutdownSignal, openStack, processLogger, type Stack } from '../../infra/stack';
import { prepareStrategy } from '../../infra/strategies';
import { portfolioWorkflowId, symbolWorkflowId } from '../../lib/contracts/trading';
import { createAlertDispatcher } from '../../activities/alerts';
import { portfolioInput, startPortfolio, symbolTraderInputs, type TradingPlan } from '../../control/start-trading';
import { configuredTrading, startTradingWorker } from '../../workers/trading';
import { startTrainingWorker } from '../../workers/training';
import { startBotInProcess } from '../../telegram';
import { REPLAY_DATABASE, startReplay, type ReplayInput } from '../../workers/replay';
import type { CandleSelection } from '../../ledger/candle-store';
import { anyStoreOption, storeSelection, type StoreSeriesArgs } from '../candle-args';
import { openProcessMetrics } from '../../activities/metrics';
import { TradingControl } from '../../control/trading-control';
import { startWatchdog } from '../../control/watchdog';

export interface UpOptions {
  /** Recorded candles to replay: CSV files, or candle store series. */
  replay?: { files: string[] } | { store: CandleSelection };
  /** A built-in, a strategy file's name or a path (default: STRATEGY). */
  strategy?: string;
  /** The strategy's parameters (default: STRATEGY_PARAMS). */
  strategyParams?: Record<string, unknown>;
  /** 'max' or simulated seconds per real second. */
  speed?: 'max' | number;
  exitWhenDone?: boolean;
  /**
   * true: start the Telegram bot (with a replay too: a fire drill on recorded candles); false:
   * never start it here; unset: start it when TELEGRAM_BOT_TOKEN is set, except for a replay.
   */
  telegram?: boolean;
  /** false: no training worker in this process (it runs as its own service). */
  training?: boolean;
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

export { REPLAY_DATABASE };

export interface UpArgs extends StoreSeriesArgs {
  /** `--replay FILE...` gives the files; `--replay` alone, the store series of the other options. */
  replay?: string[] | true;
  speed?: 'max' | number;
  exitWhenDone?: boolean;
}

/** `trader up`'s replay options as a replay request (files or store series); UsageError when they do not go together. */
export function replayRequest(args: UpArgs, cfg: Pick<AppConfig, 'exchange' | 'symbols' | 'timeframe'>, nowMs = Date.now()): UpOptions['replay'] {
  if (args.replay === undefined) {
    if (args.speed !== undefined || args.exitWhenDone) throw new UsageError('--speed and --exit-when-done go with --replay');
    if (anyStoreOption(args)) throw new UsageError('--exchange, --symbols, --timeframe, --since and --until select candle store series to replay: they go with --replay');
    return undefined;
  }
  if (Array.isArray(args.replay) && args.replay.length > 0) {
    if (anyStoreOption(args)) throw new UsageError('--replay FILE... replays files; --exchange/--symbols/--timeframe/--since/--until select candle store series instead: give one or the other');
    return { files: args.replay };
  }
  if (args.since === undefined) throw new UsageError('--replay needs candle CSV files, or --since (and optionally --until, --symbols, --timeframe, --exchange) to replay series of the candle store');
  return { store: storeSelection(args, { exchange: cfg.exchange.id, symbols: cfg.symbols, timeframe: cfg.timeframe }, nowMs) };
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

/**
 * `trader up` (what `npm start` runs): the embedded (or configured) stack, the trading worker,
 * the portfolio workflow and through it one SymbolTraderWorkflow per symbol. With `--replay`,
 * the same workflows over recorded candles (files, or candle store series) on a simulated clock
 * and the paper exchange, in a ledger database of their own (`ledger_replay`, fresh each time),
 * which `trader worker --replay` processes can join (workers/replay.ts).
 */
export async function runUp(cfg: AppConfig, opts: UpOptions = {}): Promise<void> {
  const log = processLogger(cfg);
  const replay = opts.replay !== undefined;
  if (opts.replay && 'files' in opts.replay) {
    for (const f of opts.replay.files) if (!fs.existsSync(f)) throw new UsageError(`--replay: no such file: ${f}`);
  }
  if (opts.telegram === true && !cfg.telegram) throw new UsageError('--telegram needs TELEGRAM_BOT_TOKEN and TELEGRAM_ADMIN_IDS (see docs/operating.md: The Telegram kill switch)');
  const withBot = cfg.telegram !== undefined && (opts.telegram ?? !replay);
  if (!replay && cfg.mode === 'live') {
    const banner = `LIVE TRADING: DRY_RUN=false, real orders on ${cfg.exchange.id}${cfg.exchange.sandbox ? ' (sandbox)' : ''} for ${cfg.symbols.join(', ')}`;
    console.error(`\n${'!'.repeat(banner.length)}\n${banner}\n${'!'.repeat(banner.length)}\n`);
    log.warn({ exchange: cfg.exchange.id, symbols: cfg.symbols, sandbox: cfg.exchange.sandbox }, banner);
  }
  // Checked before anything starts: a strategy that cannot be found, loaded or type-checked, or
  // parameters it refuses, stop here with the reason (exit 2).
  const prepared = prepareStrategy(opts.strategy ?? cfg.strategy, opts.strategyParams ?? (opts.strategy === undefined ? cfg.strategyParams : undefined), { timeframe: replay ? undefined : cfg.timeframe, budgetMs: cfg.strategyBudgetMs });
  const strategy = prepared.ref;
  const strategyParams = prepared.params;
  const stopSignal = onShutdownSignal(log);
  const stack = await openStack(cfg, log, replay ? { database: REPLAY_DATABASE, fresh: true } : {});
  const { temporal, db } = stack;
  let replayInput: ReplayInput | undefined;
  if (opts.replay) {
    try {
      const started = await startReplay(stack, { ...opts.replay, strategy, ...(strategyParams ? { strategyParams } : {}), initialCapital: cfg.risk.initialCapital }, log);
      replayInput = started.input;
      for (const note of started.notes) console.error(`note: ${note}`);
    } catch (err) {
      await stack.close();
      throw err;
    }
  }
  // A replay's alerts say so: a fire drill must never read like the real thing.
  const alerts = createAlertDispatcher(cfg, log, replay ? { source: 'REPLAY' } : {});
  const withTraining = !replay && opts.training !== false;
  const metrics = openProcessMetrics(cfg, log, withTraining ? 'up' : 'trading', { alerts });
  const t = configuredTrading(cfg, stack, log, replayInput, { strategy, alerts, metrics: metrics.writer });
  const { symbols, timeframe, account, exchangeLabel, mode, ledger } = t;
  writeLastRun(cfg.home, { mode, database: replay ? REPLAY_DATABASE : null, account, exchange: exchangeLabel, symbols, startedAt: new Date().toISOString() });

  const plan: TradingPlan = { account, exchange: exchangeLabel, mode, symbols, timeframe, strategy, ...(strategyParams ? { strategyParams } : {}), speed: opts.speed };
  const inputs = symbolTraderInputs(cfg, plan);
  const client = temporal.client;
  // Before a worker polls: a replay killed mid-run leaves its workflows running on the dev server,
  // and a worker started first would carry them on for a moment, their activities writing into
  // the ledger and paper exchange this replay has just reset.
  if (replay) await terminateLeftovers(stack, [portfolioWorkflowId(account), ...inputs.map((i) => symbolWorkflowId(i.exchange, i.symbol))]);

  const worker = await startTradingWorker(stack, stopSignal, t.deps, alerts);
  // The training task queue (RetrainWorkflow, `trader schedule retrain`) runs in this process too.
  const training = withTraining ? await startTrainingWorker(cfg, stack, log, metrics.writer) : null;
  const bot = withBot ? await startBotInProcess(cfg, stack, account, exchangeLabel, ledger, alerts, log) : null;

  const portfolioId = await startPortfolio(client, portfolioInput(cfg, plan, inputs));
  // Trading stops silently when every worker is gone: this process watches from outside the worker.
  const watchdog = startWatchdog(cfg, { client, control: new TradingControl(client, { account, exchange: exchangeLabel }), temporalAddress: temporal.address, raise: (a) => alerts.enqueue(a), log: log.child({ component: 'watchdog' }) });
  void stopSignal.then(() => watchdog?.stop());

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
      cfg.temporal.encryptionKeys
        ? `  Payloads encrypted (key ${cfg.temporal.encryptionKeys[cfg.temporal.encryptionKeys.length - 1].id}); to read them in the UI: npx trader codec-server`
        : `  Payloads in clear text on ${temporal.embedded ? 'this machine' : temporal.address} (set TEMPORAL_ENCRYPTION_KEYS to encrypt them)`,
      `  PostgreSQL ledger: ${db.url}${db.embedded ? ' (embedded)' : ''}`,
      `  State under: ${cfg.home}`,
      `  System check: workflow ${check.workflowId} wrote audit rows ${check.first.auditId} and ${check.second.auditId} (PostgreSQL ${check.second.serverVersion})`,
      opts.replay
        ? `  Replaying ${describeReplay(opts.replay)} at speed ${opts.speed ?? 'max'}${opts.exitWhenDone ? '; exits when the data is exhausted' : ''}; more workers can join: trader worker --replay`
        : '  Ctrl-C stops everything cleanly; `npm start` again resumes.',
      bot ? `  Telegram bot @${bot.username}: /status, /stop, /resume, /emergency${replay ? ' (fire drill: alerts are marked [REPLAY])' : ''}` : withBot ? '  Telegram bot: could not start (see the log); trading runs without it' : '',
      watchdog ? `  Watchdog: alerts when no worker polls "${cfg.temporal.taskQueue}" for ${cfg.watchdog.noPollerAfterMs / 1000} s or a symbol stalls` : '',
      `  In another terminal: npx trader status | positions | trades | stop [SYMBOL] | resume [SYMBOL] | emergency --yes`,
      '',
    ]
      .filter((line, i, all) => line !== '' || i === 0 || i === all.length - 1)
      .join('\n'),
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
  // The training worker serves the retrain Schedule for as long as trading runs (stopping it
  // before waiting left `trader up` with no poller on the training queue); it, the watchdog and the
  // bot stop once trading has, before the stack's Temporal connection closes.
  await worker.untilStopped(() => {
    training?.shutdown();
    return Promise.all([watchdog?.stop(), bot?.stop().catch(() => undefined), training?.done]);
  });
  await alerts.stop();
  await metrics.close();
}

function describeReplay(r: NonNullable<UpOptions['replay']>): string {
  if ('files' in r) return `${r.files.length} file(s)`;
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
  return `${r.store.symbols.join(', ')} ${r.store.timeframe} from the candle store (${r.store.exchange}, ${day(r.store.since)} .. ${day(r.store.until)} UTC)`;
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
