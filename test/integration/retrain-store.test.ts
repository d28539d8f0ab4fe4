import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { createTrainingActivities } from '../../activities/training';
import { createMarketDataExchange } from '../../activities/market-data';
import { ExchangeResilience } from '../../activities/exchange/resilience';
import { runTrainCommand } from '../../client/commands/train';
import { UsageError } from '../../infra/errors';
import { createLogger } from '../../infra/logger';
import { CandleStore } from '../../ledger/candle-store';
import { formatCandleCsv } from '../../lib/candle-csv';
import { alignDown } from '../../lib/candle-ranges';
import { RETRAIN_WORKFLOW_TYPE, type RetrainInput, type RetrainResult, type StoreTrainingSource } from '../../lib/contracts/retrain';
import { sha256Hex } from '../../models/registry';
import { createTrainingWorker } from '../../workers/training';
import { freshDatabase, type TestDatabase } from '../../testkit/db';
import { ExchangeStandin } from '../../testkit/exchange-standin';
import { sampledMarketCandles } from '../../testkit/candles';
import { sharedDevServerEnv, freshTaskQueue } from '../../testkit/temporal';

/**
 * RetrainWorkflow trained from the candle store's latest window, on a real Temporal dev server,
 * a real PostgreSQL candle store and the real ccxt binance client against the local exchange
 * stand-in (its endpoint override, as EXCHANGE_API_URL sets it), with generated candles: the
 * store holds part of the window, the retrain downloads the rest first, and a later retrain,
 * after more candles have closed, trains on the newer window.
 */

const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'test' });
const H = 3_600_000;
const D = 86_400_000;
const WINDOW_DAYS = 84; // 2,016 hourly candles: enough rows to train and hold out, small enough to train fast
const LATER = 48; // hours that close between the two retrains

// The test's clock, in the past so the ccxt adapter (which drops candles not yet closed by the real
// clock) sees every candle the stand-in serves; the stand-in serves candles up to its own `now`.
const T0 = alignDown(Date.now(), H) - 200 * H;
const FIRST = T0 - (WINDOW_DAYS + 10) * D;
const CANDLES = sampledMarketCandles('BTC/USDT', H, FIRST, (T0 + (LATER + 1) * H - FIRST) / H, 3);

/** Small, fast training (as test/integration/retrain.test.ts). */
const SMALL: RetrainInput['settings'] = {
  seed: 5,
  ppoSteps: 512,
  walkForwardFolds: 0,
  extra: { ensemble: { forest: { trees: 10 }, boosting: { rounds: 20 } }, ppo: { rolloutSteps: 256, episodeLength: 128, epochs: 2, minibatchSize: 64 } },
};

describe('RetrainWorkflow from the candle store (ccxt against a local exchange stand-in)', function () {
  this.timeout(300_000); // a real RetrainWorkflow: downloads candles through ccxt, trains and evaluates models
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let standin: ExchangeStandin;
  let tmp: string;
  let clock = T0;
  const source: StoreTrainingSource = { exchange: 'binance', symbols: ['BTC/USDT'], timeframe: '1h', windowDays: WINDOW_DAYS };
  const klines = () => standin.calls('/api/v3/klines');

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-retrain-store-'));
    standin = await ExchangeStandin.start({ markets: [{ candles: CANDLES, symbol: 'BTC/USDT', timeframe: '1h' }], now: T0 });
    [env, db] = await Promise.all([sharedDevServerEnv(), freshDatabase()]);
  });

  after(async () => {
    await env?.teardown();
    await db?.drop();
    await standin?.close();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function retrain(input: RetrainInput): Promise<RetrainResult> {
    const taskQueue = freshTaskQueue('training');
    const activities = createTrainingActivities({
      sql: db.sql, log, modelsRoot: path.join(tmp, 'models'), workRoot: path.join(tmp, 'training'),
      now: () => clock,
      openExchange: (id) =>
        createMarketDataExchange({ id, apiUrl: standin.url }, { timeoutMs: 2000, resilience: new ExchangeResilience('standin', { maxRetries: 2, initialDelayMs: 20, maxDelayMs: 100, breakerThreshold: 50 }, log) }),
    });
    const worker = await createTrainingWorker({ connection: env.nativeConnection, namespace: env.namespace ?? 'default', taskQueue, activities });
    return worker.runUntil(env.client.workflow.execute(RETRAIN_WORKFLOW_TYPE, { taskQueue, workflowId: `retrain-store-${taskQueue}`, args: [input] }) as Promise<RetrainResult>);
  }

  const iso = (ms: number) => new Date(ms).toISOString();
  const storeCsvSha = async (since: number, until: number) => sha256Hex(Buffer.from(formatCandleCsv(await new CandleStore(db.sql).candles('binance', 'BTC/USDT', '1h', { since, until }))));

  let first: RetrainResult;

  it('downloads the part of the window the store lacks, then trains on the store window', async () => {
    const until = T0; // T0 is on the hour: the last closed candle opened at T0 - 1h
    const since = until - WINDOW_DAYS * D;
    const slots = (until - since) / H;
    // The store already holds the older part of the window (as an earlier `trader data download` left it).
    const held = 1200;
    const older = CANDLES.filter((c) => c.timestamp >= since && c.timestamp < since + held * H);
    await new CandleStore(db.sql).upsert('binance', 'BTC/USDT', '1h', older, { fetched: [{ from: since, to: since + held * H }] });
    standin.clearLog();

    first = await retrain({ store: source, settings: SMALL });

    assert.deepEqual(first.window, {
      exchange: 'binance', timeframe: '1h', windowDays: WINDOW_DAYS, since: iso(since), until: iso(until),
      downloaded: [{ symbol: 'BTC/USDT', missingBefore: slots - held, requests: klines().length, inserted: slots - held }],
    });
    assert.ok(klines().length >= 1, 'the exchange was asked');
    assert.ok(klines().every((q) => Number(q.query.startTime ?? Infinity) >= since + held * H), 'nothing the store held was asked for again');
    assert.equal(Number(klines()[0].query.startTime), since + held * H, 'the download starts where the store stopped');
    assert.equal((await new CandleStore(db.sql).candles('binance', 'BTC/USDT', '1h', { since, until })).length, slots, 'the store now holds the whole window');

    assert.equal(first.data.length, 1);
    const [f] = first.data;
    assert.equal(f.source, 'store:binance');
    assert.equal(f.exchange, 'binance');
    assert.equal(f.symbol, 'BTC/USDT');
    assert.equal(f.timeframe, '1h');
    assert.equal(f.candles, slots);
    assert.equal(f.from, iso(since));
    assert.equal(f.to, iso(until - H));
    assert.equal(f.sha256, await storeCsvSha(since, until), 'the snapshot is the store window, byte for byte');
    assert.equal(path.basename(f.path), 'binance_BTC-USDT_1h.csv');
    assert.equal(first.decision.promote, true, 'the first model is promoted (no champion)');
    assert.ok(Date.parse(first.evaluation.heldOut.to) < until && Date.parse(first.evaluation.heldOut.from) > since, 'scored inside the window');
  });

  it('a later retrain, after more candles closed, downloads only those and trains on the newer window', async () => {
    assert.ok(first, 'needs the first run');
    clock = T0 + LATER * H;
    standin.now = clock;
    standin.clearLog();
    const until = clock;
    const since = until - WINDOW_DAYS * D;

    const second = await retrain({ store: source, settings: SMALL });

    assert.equal(second.window?.since, iso(since));
    assert.equal(second.window?.until, iso(until));
    assert.deepEqual(second.window?.downloaded.map((d) => [d.missingBefore, d.inserted]), [[LATER, LATER]], 'only the candles closed since');
    assert.equal(Number(klines()[0].query.startTime), T0, 'asked from where the first retrain stopped');
    const [f] = second.data;
    assert.equal(f.from, iso(since));
    assert.equal(f.to, iso(until - H));
    assert.equal(f.sha256, await storeCsvSha(since, until));
    assert.notEqual(f.sha256, first.data[0].sha256, 'different data');
    assert.ok(Date.parse(second.evaluation.heldOut.to) > Date.parse(first.evaluation.heldOut.to), `held out up to ${second.evaluation.heldOut.to}, later than ${first.evaluation.heldOut.to}`);
    assert.notEqual(second.challenger.id, first.challenger.id);
  });

  it('the store-sourced runs replay against the current workflow code', async () => {
    let replayed = 0;
    for await (const wf of env.client.workflow.list({ query: `WorkflowType = '${RETRAIN_WORKFLOW_TYPE}' AND ExecutionStatus = 'Completed'` })) {
      const history = await env.client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory();
      assert.ok(history.events?.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'gatherStoreTrainingData'), 'a store-sourced run');
      await Worker.runReplayHistory({ workflowsPath: require.resolve('../../workflows/retrain') }, history, wf.workflowId);
      replayed++;
    }
    assert.equal(replayed, 2);
  });

  const inputFailure = (pattern: RegExp) => (err: unknown) => {
    const cause = err instanceof WorkflowFailedError ? (err.cause as Error & { cause?: Error }) : undefined;
    const failure = cause instanceof ApplicationFailure ? cause : cause?.cause;
    return failure instanceof ApplicationFailure && failure.nonRetryable && failure.type === 'TrainingInputError' && pattern.test(failure.message);
  };

  it('fails at once, without retries, on a symbol the exchange does not list, an empty store window, or files and store together', async () => {
    standin.clearLog();
    await assert.rejects(retrain({ store: { ...source, symbols: ['NOPE/USDT'] } }), inputFailure(/does not list NOPE\/USDT/));
    assert.equal(klines().length, 0, 'nothing downloaded');
    await assert.rejects(
      retrain({ store: { ...source, symbols: ['BTC/USDT'], timeframe: '4h', download: false } }),
      inputFailure(/no binance BTC\/USDT 4h candles .*trader data download --exchange binance --symbols BTC\/USDT --timeframe 4h/),
    );
    await assert.rejects(retrain({ store: { ...source, windowDays: 0 } }), inputFailure(/window of 0 days/));
    await assert.rejects(retrain({ store: source, data: [__filename] }), inputFailure(/not both/));
  });

  it('trader train --since reads the store series as trader backtest does', async () => {
    const lines: string[] = [];
    const io = { info: (l: string) => lines.push(l), warn: () => undefined, bars: false };
    const config = () => ({
      home: path.join(tmp, 'cli-home'), databaseUrl: db.url, postgresPort: 1,
      exchange: { id: 'binance', sandbox: false }, symbols: ['BTC/USDT'], timeframe: '1h',
      risk: { initialCapital: 10_000, maxPositionSize: 0.1, stopLossPct: 0.02, takeProfitPct: 0.04, maxDrawdown: 0.2 },
    });
    const since = clock - 60 * D;
    const out = path.join(tmp, 'cli-model');
    const r = await runTrainCommand({ since: String(since), until: String(clock), out, seed: 3, ppoSteps: 256 }, io, {
      config: config as never, sql: db.sql, now: () => clock, settings: { walkForwardFolds: 0, ...(SMALL!.extra as object) },
    });
    const [file] = r.report.data.files;
    assert.equal(file.symbol, 'BTC/USDT');
    assert.equal(file.candles, (clock - since) / H, 'every stored candle of the range');
    assert.equal(file.from, iso(since));
    assert.equal(file.to, iso(clock - H));
    assert.ok(fs.existsSync(path.join(out, 'manifest.json')));
    assert.match(lines.join('\n'), /candle store binance BTC\/USDT 1h: 1440 candles/);

    const usage = (raw: Record<string, unknown>, pattern: RegExp) =>
      assert.rejects(runTrainCommand(raw, io, { config: config as never, sql: db.sql, now: () => clock }), (e: unknown) => e instanceof UsageError && pattern.test(e.message), JSON.stringify(raw));
    await usage({ data: [__filename], since: '30d' }, /give one or the other/);
    await usage({}, /give candle files \(--data FILE\.\.\.\) or candle store series/);
    await usage({ since: '30d', symbols: 'ETH/USDT', out: path.join(tmp, 'x') }, /no binance ETH\/USDT 1h candles .*trader data download/);
    await usage({ since: 'yesterday' }, /--since 'yesterday'/);
  });
});
