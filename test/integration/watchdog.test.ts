import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Telegram } from 'telegraf';
import { AlertDispatcher, telegramAlertSink } from '../../activities/alerts';
import { createTrainingActivities } from '../../activities/training';
import { TradingControl } from '../../control/trading-control';
import { Watchdog } from '../../control/watchdog';
import { createLogger } from '../../infra/logger';
import { FEATURE_SCHEMA } from '../../lib/features';
import { RETRAIN_WORKFLOW_TYPE } from '../../lib/contracts/retrain';
import { createTrainingWorker } from '../../workers/training';
import { syntheticSymbols, writeSyntheticCandleFiles } from '../../testkit/candles';
import { BotApiStandin } from '../../testkit/bot-api-standin';
import { freshDatabase, type TestDatabase } from '../../testkit/db';
import { devServerEnv, freshTaskQueue } from '../../testkit/temporal';
import { tradingHarness, tradingTmpDir, type RunningWorker, type TradingHarness } from '../../testkit/trading';

/**
 * The watchdog end to end: real symbol workflows replaying generated candles on a Temporal dev
 * server, served by the ONLY trading worker; the watchdog (control/watchdog.ts, as the Telegram
 * worker and `trader up` run it) reads the task queue's pollers and the symbols' state; its
 * alerts go through the real AlertDispatcher and telegraf client to the Bot API stand-in.
 */

const TOKEN = '123456789:WATCHDOG_e2e_test_token_abcdefgh';
const ADMIN = 777_001;

describe('trading watchdog (real workflows, worker stopped and restarted, alerts through the Bot API stand-in)', function () {
  this.timeout(240_000); // a dev server of its own, a worker stopped and restarted, alerts after real long-poll expiries
  let env: TestWorkflowEnvironment;
  let api: BotApiStandin;
  let alerts: AlertDispatcher;
  let tmp: string;
  const lines: string[] = [];
  const log = createLogger({ level: 'info', name: 'test', destination: { write: (l: string) => void lines.push(l) } });

  before(async () => {
    // A poll waits for work up to a minute, and Temporal records a poll when it starts: a live
    // worker's last poll can be a minute old (hence WATCHDOG_NO_POLLER_SECONDS >= 70). This server
    // ends polls after 2 s, so a 10 s threshold tells a live worker from a dead one here.
    env = await devServerEnv({ dynamicConfig: ['matching.longPollExpirationInterval="2s"'] });
    tmp = tradingTmpDir('dt-watchdog-');
  });
  after(async () => {
    await env?.teardown();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });
  beforeEach(async () => {
    api = await BotApiStandin.start({ token: TOKEN });
    alerts = new AlertDispatcher({ log, sink: telegramAlertSink(new Telegram(TOKEN, { apiRoot: api.apiRoot })), adminIds: [ADMIN], queue: { sendIntervalMs: 10 } });
  });
  afterEach(async () => {
    await alerts.stop();
    await api.stop();
  });

  const texts = () => api.messagesTo(ADMIN).map((m) => m.text);

  it('stops the only trading worker: a critical alert reaches Telegram; a worker comes back: the recovery alert', async () => {
    // Two symbols of 1m candles replayed at speed 60: a candle a second each, for longer than the test.
    const files = writeSyntheticCandleFiles(path.join(tmp, 'candles'), syntheticSymbols(2), { timeframe: '1m', count: FEATURE_SCHEMA.warmup + 600 });
    const h: TradingHarness = await tradingHarness(env, { files, alerts });
    let worker: RunningWorker | undefined = await h.startWorker();
    const watchdog = new Watchdog({
      client: env.client,
      control: new TradingControl(env.client, { account: h.account, exchange: h.exchange }),
      taskQueue: h.taskQueue,
      temporalAddress: 'the test dev server',
      intervalMs: 500,
      // Small for the test: the replay keeps the queue busy, so a live worker polls every moment.
      noPollerAfterMs: 10_000,
      replayStallMinMs: 10_000,
      raise: (a) => alerts.enqueue(a),
      log,
    });
    try {
      await h.activities.startSymbolWorkflows({ workflows: h.symbols.map((s) => h.symbolInput(s, { speed: 60 })), taskQueue: h.taskQueue });
      const state = (s: string) => env.client.workflow.getHandle(h.workflowId(s)).query('state') as Promise<{ decisions: number }>;
      const deadline = Date.now() + 120_000;
      while (!(await Promise.all(h.symbols.map(state)).catch(() => [])).every((v) => v && v.decisions >= 5)) {
        assert.ok(Date.now() < deadline, 'the symbols never started deciding');
        await new Promise((r) => setTimeout(r, 250));
      }
      // Watched once they trade (their first step streams the whole warm-up through the feature
      // cache, seconds of CPU on a busy machine); a healthy worker for a while: nothing to say.
      watchdog.start();
      await new Promise((r) => setTimeout(r, 8_000));
      assert.deepEqual(texts(), [], 'no alert while the worker serves the queue');

      await worker.stop();
      worker = undefined;
      const stopped = await api.waitForMessage(ADMIN, /CRITICAL: Trading stopped: no worker polls task queue/, { timeoutMs: 60_000 });
      assert.match(stopped.text, new RegExp(`task queue "${h.taskQueue}": the last poll was \\d+ s ago`));
      for (const s of h.symbols) await api.waitForMessage(ADMIN, new RegExp(`CRITICAL: ${s.replace('/', '\\/')} stalled: no new candle for`), { timeoutMs: 30_000 });
      const critical = texts().filter((t) => t.includes('CRITICAL'));

      worker = await h.startWorker();
      const back = await api.waitForMessage(ADMIN, /Trading worker back: task queue .* has \d+ pollers? again, after (\d+ s|\d+ min( \d+ s)?) without one/, { timeoutMs: 60_000 });
      assert.ok(texts().indexOf(back.text) > texts().indexOf(stopped.text));
      for (const s of h.symbols) await api.waitForMessage(ADMIN, new RegExp(`${s.replace('/', '\\/')} trading again: candle .* read, after \\d+ (ms|s|min)( \\d+ s)? stalled`), { timeoutMs: 30_000 });
      assert.deepEqual(
        texts().filter((t) => t.includes('CRITICAL')),
        critical,
        'one critical alert per outage and symbol, not one per check',
      );
    } finally {
      await watchdog.stop();
      await worker?.stop();
      await h.close();
    }
  });

  it('alerts when a retrain fails, once, naming what broke', async () => {
    const db: TestDatabase = await freshDatabase();
    const taskQueue = freshTaskQueue('training');
    const activities = createTrainingActivities({ sql: db.sql, log, modelsRoot: path.join(tmp, 'models'), workRoot: path.join(tmp, 'training') });
    const worker = await createTrainingWorker({ connection: env.nativeConnection, namespace: env.namespace ?? 'default', taskQueue, activities });
    const raised: string[] = [];
    const watchdog = new Watchdog({
      client: env.client,
      control: new TradingControl(env.client, { account: 'nobody', exchange: 'nowhere' }),
      taskQueue,
      temporalAddress: 'the test dev server',
      intervalMs: 60_000,
      noPollerAfterMs: 120_000,
      replayStallMinMs: 120_000,
      raise: (a) => {
        raised.push(a.key);
        alerts.enqueue(a);
      },
      log,
    });
    try {
      const missing = path.join(tmp, 'no-such-candles_BTC-USDT_1h.csv');
      const workflowId = `retrain-watchdog-${taskQueue}`;
      await worker.runUntil(assert.rejects(env.client.workflow.execute(RETRAIN_WORKFLOW_TYPE, { taskQueue, workflowId, args: [{ data: [missing] }] })));
      // Visibility is eventually consistent: check until the failed run is listed.
      const deadline = Date.now() + 30_000;
      while (!raised.includes(`retrain-failed/${workflowId}`)) {
        assert.ok(Date.now() < deadline, `no retrain alert; raised: ${raised.join(', ')}`);
        await watchdog.check();
        await new Promise((r) => setTimeout(r, 500));
      }
      const msg = await api.waitForMessage(ADMIN, /WARNING: Retrain/, { timeoutMs: 10_000 });
      assert.match(msg.text, new RegExp(`Retrain ${workflowId} failed: .*${path.basename(missing).replace(/[.]/g, '\\.')}.*The champion model keeps trading`));
      await watchdog.check();
      assert.equal(raised.filter((k) => k === `retrain-failed/${workflowId}`).length, 1, 'one alert per failed run');
    } finally {
      await watchdog.stop();
      await db.drop();
    }
  });
});
