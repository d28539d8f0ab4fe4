import fs from 'node:fs';
import { tradeJson } from '../client/commands/ops';
import os from 'node:os';
import path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type DataConverter } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Sql } from 'postgres';
import { Worker } from '@temporalio/worker';
import { createActivities, type Activities } from '../activities';
import type { AlertDispatcher } from '../activities/alerts';
import type { TradingDeps, Venue } from '../activities/trading';
import { buildTradingDeps, type TradingMarket } from '../workers/trading-deps';
import type { MarketDataSource } from '../lib/exchange/types';
import type { PaperStateStore } from '../lib/exchange/paper-state';
import { timeframeToMs } from '../lib/candles';
import { engineConfig, type EngineConfig } from '../lib/engine';
import { RiskConfig, type RiskConfigInput } from '../lib/risk';
import type { Ledger } from '../ledger';
import { freshDatabase, testLog, type TestDatabase } from './db';
import { encryptedWorkflowBundle, freshTaskQueue, timeSkippingEnv, workflowBundle } from './temporal';
import { portfolioWorkflowId, symbolWorkflowId, type TradeFigures } from '../lib/contracts/trading';
import type { SymbolTraderInput } from '../lib/contracts/workflows';
import { SEARCH_ATTRIBUTES } from '../infra/temporal';
import { DEFAULT_FEE_BPS } from '../lib/backtest/simulate';
import { fixtureCandleFile } from './fixtures';

/**
 * The real trading stack for workflow tests: createActivities with the real trading activities
 * (ledger recorder, paper exchange on PostgreSQL, feature cache) on a fresh embedded PostgreSQL
 * database, over a replay venue of small candle files (or any Venue the test brings), served by
 * a worker on a fresh task queue of the given TestWorkflowEnvironment. The dependencies come from
 * buildTradingDeps (workers/trading-deps.ts), the builder `trader up` and `trader worker` use, so
 * a test exercises what an operator runs.
 */

/**
 * The time-skipping test server with the trading search attributes registered: the symbol
 * workflow upserts TradingStatus, and a server that does not know it fails every workflow task.
 * (The dev server of devServerEnv registers them at start.)
 */
export async function tradingTimeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const env = await timeSkippingEnv();
  try {
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTES.map((k) => [k.name, 2])), // 2 = INDEXED_VALUE_TYPE_KEYWORD
    });
  } catch (err) {
    await env.teardown();
    throw err;
  }
  return env;
}

/** A tmp dir the embedded PostgreSQL (running as `postgres` when we are root) may also enter. */
export function tradingTmpDir(prefix = 'dt-trading-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  return dir;
}

/**
 * `rows` candles of fixture files (testkit/fixtures.ts, e.g. `fixture_BTC-USDT_1h.csv`), from row `from` (default 0),
 * written under `dir` with their conventional names. The engine's first decision is on row
 * FEATURE_SCHEMA.warmup of the written file.
 */
export function truncatedCandleFiles(dir: string, specs: Array<{ file: string; rows: number; from?: number }>): string[] {
  return specs.map(({ file, rows, from = 0 }) => {
    const src = fixtureCandleFile(file);
    if (!Number.isInteger(rows) || rows < 2) throw new RangeError(`rows must be an integer >= 2, got ${rows}`);
    if (!Number.isInteger(from) || from < 0) throw new RangeError(`from must be a non-negative integer, got ${from}`);
    const [header, ...data] = fs.readFileSync(src, 'utf8').split('\n').filter((l) => l.length > 0);
    if (data.length < from + rows) throw new RangeError(`${file} has ${data.length} rows, fewer than ${from} + ${rows}`);
    const out = path.join(dir, file);
    fs.writeFileSync(out, [header, ...data.slice(from, from + rows)].join('\n') + '\n');
    return out;
  });
}

export interface HarnessOptions {
  /** Replay: candle files (one timeframe). Ignored when `venue` is given. */
  files?: string[];
  /** A venue of the test's own (e.g. paper trading on synthetic market data) on the harness's paper store; default: replayVenue(files). */
  venue?: (store: PaperStateStore) => Venue;
  /** The symbols a custom venue trades. */
  symbols?: string[];
  timeframe?: string;
  /** Where feature vectors stream from when `venue` is given (its market data). */
  featureSource?: MarketDataSource;
  /** A built-in, a strategy file's name or path (default rules). */
  strategy?: string;
  strategyParams?: Record<string, unknown>;
  risk?: RiskConfigInput;
  initialCapital?: number;
  /** Label of the symbol workflows' ids (`trader/<exchange>/<SYMBOL>`); unique per harness by default. */
  exchange?: string;
  account?: string;
  /** Where sendAlert delivers (default: log only). */
  alerts?: AlertDispatcher;
  /**
   * Payload encryption (infra/temporal.ts temporalDataConverter): the workers get it, and `client`
   * (the activities' and close()'s; give one with the same converter) replaces env.client.
   */
  encryption?: { dataConverter: DataConverter; client: Client };
}

export interface RunningWorker {
  worker: Worker;
  taskQueue: string;
  /** Shuts the worker down and waits for it (in-flight activities finish first). */
  stop(): Promise<void>;
}

export interface TradingHarness {
  env: TestWorkflowEnvironment;
  db: TestDatabase;
  store: PaperStateStore;
  venue: Venue;
  deps: TradingDeps;
  activities: Activities;
  /** The task queue every worker of this harness polls (a restarted worker takes over the same one). */
  taskQueue: string;
  account: string;
  exchange: string;
  mode: SymbolTraderInput['mode'];
  timeframe: string;
  symbols: string[];
  engine(symbol: string): EngineConfig;
  /** The input `trader up` would give the symbol's workflow, with overrides. */
  symbolInput(symbol: string, overrides?: Partial<SymbolTraderInput>): SymbolTraderInput;
  workflowId(symbol: string): string;
  /** A worker on the harness's task queue with its real activities, or with some of them replaced. */
  startWorker(overrides?: Partial<Activities>): Promise<RunningWorker>;
  /** Runs `fn` while a worker polls; the worker stops afterwards. */
  withWorker<T>(fn: () => Promise<T>, overrides?: Partial<Activities>): Promise<T>;
  /**
   * Terminates this harness's workflows that still run (symbols and portfolio) and drops the
   * database. A workflow left running with no worker holds a workflow task open, and the
   * time-skipping server then never skips time again for the other tests.
   */
  close(): Promise<void>;
}

let harnessSeq = 0;

export async function tradingHarness(env: TestWorkflowEnvironment, opts: HarnessOptions): Promise<TradingHarness> {
  const initialCapital = opts.initialCapital ?? 10_000;
  const strategy = opts.strategy ?? 'rules';
  const risk = RiskConfig.parse(opts.risk ?? {});
  const exchange = opts.exchange ?? `t${process.pid}x${++harnessSeq}`;
  // Unique too: the portfolio's workflow id is portfolio/<account>.
  const account = opts.account ?? exchange;
  const db = await freshDatabase();
  try {
    // The builder `trader up` uses: the test chooses only the market, the database and the capital.
    let market: TradingMarket;
    if (opts.venue) {
      if (!opts.featureSource) throw new Error('tradingHarness: a custom venue needs a featureSource');
      market = { venue: opts.venue, featureSource: opts.featureSource, symbols: opts.symbols ?? [], timeframe: opts.timeframe ?? '1m' };
    } else {
      if (!opts.files || opts.files.length === 0) throw new Error('tradingHarness: give candle files or a venue');
      market = { replay: { files: opts.files } };
    }
    const built = buildTradingDeps({ sql: db.sql, log: testLog, market, account, exchangeLabel: exchange, initialCapital, strategy, client: opts.encryption?.client ?? env.client, alerts: opts.alerts });
    const { deps, venue, mode, symbols, timeframe } = built;
    const store = built.paperStore;
    const activities = createActivities({ sql: db.sql, log: testLog, trading: deps, alerts: opts.alerts });
    const taskQueue = freshTaskQueue('trading');
    const sleeves = Math.max(1, symbols.length);

    const engine = (symbol: string): EngineConfig =>
      engineConfig({ symbol, strategy, ...(opts.strategyParams ? { strategyParams: opts.strategyParams } : {}), risk, timeframeMs: timeframeToMs(timeframe), sleeveCapital: initialCapital / sleeves, feeRate: DEFAULT_FEE_BPS / 10_000 });

    const startWorker = async (overrides: Partial<Activities> = {}): Promise<RunningWorker> => {
      const worker = await Worker.create({
        connection: env.nativeConnection,
        namespace: env.namespace ?? 'default',
        taskQueue,
        workflowBundle: opts.encryption ? await encryptedWorkflowBundle() : await workflowBundle(),
        activities: { ...activities, ...overrides },
        dataConverter: opts.encryption?.dataConverter,
      });
      const running = worker.run();
      return {
        worker,
        taskQueue,
        async stop() {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await running;
        },
      };
    };

    return {
      env,
      db,
      store,
      venue,
      deps,
      activities,
      taskQueue,
      account,
      exchange,
      mode,
      timeframe,
      symbols,
      engine,
      symbolInput(symbol, overrides = {}) {
        const e = engine(symbol);
        return {
          symbol,
          exchange,
          account,
          mode,
          timeframe,
          timeframeMs: e.timeframeMs,
          engine: e,
          candleDelayMs: 5_000,
          speed: mode === 'replay' ? 'max' : undefined,
          ...overrides,
        };
      },
      workflowId: (symbol) => symbolWorkflowId(exchange, symbol),
      startWorker,
      async withWorker(fn, overrides) {
        const w = await startWorker(overrides);
        try {
          return await fn();
        } finally {
          await w.stop();
        }
      },
      async close() {
        for (const id of [...symbols.map((s) => symbolWorkflowId(exchange, s)), portfolioWorkflowId(account)]) {
          try {
            const handle = (opts.encryption?.client ?? env.client).workflow.getHandle(id);
            if ((await handle.describe()).status.name === 'RUNNING') await handle.terminate('test cleanup');
          } catch {
            // never started
          }
        }
        await db.drop();
      },
    };
  } catch (err) {
    await db.drop();
    throw err;
  }
}

// --- reading what happened -----------------------------------------------------------------------

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];
type Payloads = NonNullable<NonNullable<HistoryEvent['markerRecordedEventAttributes']>['details']>[string];

/** Every event of one run. */
export async function historyEvents(client: Client, workflowId: string, runId?: string): Promise<HistoryEvent[]> {
  const h = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  return h.events ?? [];
}

/** The runs of a continue-as-new chain from `firstRunId`, in order, each with its events. */
export async function runChain(client: Client, workflowId: string, firstRunId: string): Promise<Array<{ runId: string; events: HistoryEvent[] }>> {
  const runs: Array<{ runId: string; events: HistoryEvent[] }> = [];
  for (let runId: string | undefined = firstRunId; runId; ) {
    const events = await historyEvents(client, workflowId, runId);
    runs.push({ runId, events });
    runId = events[events.length - 1]?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    if (runs.length > 1000) throw new Error(`${workflowId}: more than 1000 runs in the chain`);
  }
  return runs;
}

/** A local activity's marker: its type (core writes it in `data`) and its result (in `result`). */
export function localActivityMarker<T>(e: HistoryEvent): { activityType: string; result: T | undefined } | undefined {
  const m = e.markerRecordedEventAttributes;
  if (m?.markerName !== 'core_local_activity') return undefined;
  const read = (p: Payloads | null | undefined): unknown => (p?.payloads?.length ? defaultPayloadConverter.fromPayload(p.payloads[0]) : undefined);
  const data = read(m.details?.data) as { activity_type?: string } | undefined;
  return { activityType: data?.activity_type ?? '', result: read(m.details?.result) as T | undefined };
}

export const eventMs = (e: HistoryEvent): number => tsToMs(e.eventTime);

export interface LedgerOrderRow {
  clientOrderId: string;
  exchangeOrderId: string | null;
  decisionSeq: number | null;
  side: string;
  type: string;
  status: string;
  createdAt: Date;
}

/** Every order in the ledger, in the order they were recorded. */
export async function ledgerOrders(sql: Sql): Promise<LedgerOrderRow[]> {
  return sql<LedgerOrderRow[]>`
    select client_order_id as "clientOrderId", exchange_order_id as "exchangeOrderId", decision_seq::int as "decisionSeq", side, type, status, created_at as "createdAt"
    from orders order by id`;
}

export interface TradeRow extends TradeFigures {
  exitReason: string | null;
}

/** The ledger's closed trades as numbers, in exit order. */
export async function ledgerTrades(ledger: Ledger): Promise<TradeRow[]> {
  const trades = await ledger.trades();
  return trades
    .map((t) => { const { side: _side, ...row } = tradeJson(t); return row; })
    .sort((a, b) => a.exitTime - b.exitTime || a.symbol.localeCompare(b.symbol));
}

/** One line per trade with every field, money to 1e-8 (the ledger keeps exact decimals, the engine doubles). */
export function tradeKey(t: TradeRow): string {
  const r = (x: number) => x.toFixed(8);
  return [t.symbol, r(t.qty), t.entryTime, r(t.entryPrice), t.exitTime, r(t.exitPrice), r(t.fees), r(t.pnl), t.exitReason].join('|');
}
