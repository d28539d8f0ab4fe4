/**
 * Records the workflow histories that test/unit/replay-histories.test.ts replays, from real runs of
 * the current workflow code with its real activities (replay venue over recorded candles, paper
 * exchange and ledger on an embedded PostgreSQL) on a Temporal dev server, exported with the same
 * code as `trader history export`. See README.md next to this file.
 *
 *   npx tsx test/histories/record.ts            (writes test/histories/*.json)
 *   npx tsx test/histories/record.ts NAME...    (only those recordings, e.g. symbol-trader-pause-during-step)
 *
 * `symbol-trader-replay-encrypted` and `symbol-trader-messages-encrypted` are scenarios 1 and 2 with
 * payload encryption (key RECORDED_WITH_KEYS of encryption.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { connectTemporalClient, temporalDataConverter } from '../../infra/temporal';
import { parseEncryptionKeys } from '../../infra/payload-codec';
import { RECORDED_WITH_KEYS } from './encryption';
import { exportHistories } from '../../client/commands/history';
import { FEATURE_SCHEMA } from '../../lib/features';
import { emergencyCloseUpdate, pauseSignal, portfolioEmergencyUpdate, portfolioPauseSignal, portfolioResumeSignal, portfolioStateQuery, resumeSignal, setStrategySignal, stateQuery } from '../../workflows/messages';
import type { portfolioWorkflow } from '../../workflows/portfolio';
import type { symbolTraderWorkflow } from '../../workflows/symbol-trader';
import { stopTestServer } from '../../testkit/db';
import { devServerEnv } from '../../testkit/temporal';
import { tradingHarness, tradingTmpDir, truncatedCandleFiles, type TradingHarness } from '../../testkit/trading';
import { portfolioWorkflowId, type MessageOrigin, type SymbolStateView } from '../../lib/contracts/trading';
import type { PortfolioInput } from '../../lib/contracts/workflows';
import { runBacktest } from '../../backtester/run';

const OUT = __dirname;
const CAPITAL = 10_000;
const by: MessageOrigin = { by: 'recorder', reason: 'recording test/histories' };

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The workflow ids of the recorded histories: an exported history does not name its workflow,
 * and the replayer must run it under its own id (the client order ids derive from it).
 */
export const INDEX = 'index.json';
export interface HistoryIndexEntry {
  workflowId: string;
  runId: string;
  workflowType: string;
  events: number;
  what: string;
  /** Recorded with payload encryption: the id of the key (RECORDED_WITH_KEYS) its payloads are encrypted with. */
  encryptionKeyId?: string;
}
const index: Record<string, HistoryIndexEntry> = {};
const only = new Set(process.argv.slice(2));
const wanted = (name: string): boolean => only.size === 0 || only.has(name);

/** Exports one run with the CLI's exporter and keeps it as OUT/<name>.json. */
async function keep(env: TestWorkflowEnvironment, workflowId: string, runId: string, name: string, tmp: string, what: string, encryptionKeyId?: string): Promise<void> {
  const dir = path.join(tmp, `export-${name}`);
  // Visibility is eventually consistent: wait until the run is listed.
  const exported = await until(
    `${workflowId} in visibility`,
    async () => {
      fs.rmSync(dir, { recursive: true, force: true });
      return exportHistories(env.client, { out: dir, query: `WorkflowId = "${workflowId}" AND RunId = "${runId}"` });
    },
    (e) => e.length === 1,
  );
  const file = path.join(OUT, `${name}.json`);
  fs.copyFileSync(exported[0].file, file);
  index[`${name}.json`] = { workflowId, runId, workflowType: exported[0].type, events: exported[0].events, what, ...(encryptionKeyId ? { encryptionKeyId } : {}) };
  console.log(`${name}.json: ${exported[0].type} ${workflowId}, ${exported[0].events} events, ${(fs.statSync(file).size / 1024).toFixed(0)} kB`);
}

/** 1. A replay at a speed factor, to the end of the data: timers, candle reads, orders, fills. */
async function recordReplay(env: TestWorkflowEnvironment, client: Client, h: TradingHarness, tmp: string, name: string, keyId?: string): Promise<void> {
  await h.withWorker(async () => {
    const handle = await client.workflow.start<typeof symbolTraderWorkflow>('symbolTraderWorkflow', {
      workflowId: h.workflowId('ETH/USDT'),
      taskQueue: h.taskQueue,
      args: [h.symbolInput('ETH/USDT', { speed: 36_000 })],
    });
    await handle.result();
    await keep(env, handle.workflowId, handle.firstExecutionRunId, name, tmp, `ETH/USDT replay at speed 36000 to the end of the data${keyId ? ', payloads encrypted' : ''}`, keyId);
  });
}

/**
 * 2. Operator messages: pause and resume signals, an emergency close update that closes a
 *    position, then the halted workflow is terminated.
 */
async function recordMessages(env: TestWorkflowEnvironment, client: Client, h: TradingHarness, tmp: string, name: string, keyId?: string): Promise<void> {
  await h.withWorker(async () => {
    const handle = await client.workflow.start<typeof symbolTraderWorkflow>('symbolTraderWorkflow', {
      workflowId: h.workflowId('BTC/USDT'),
      taskQueue: h.taskQueue,
      args: [h.symbolInput('BTC/USDT', { speed: 3_600 })],
    });
    const state = () => handle.query(stateQuery);
    const open = await until('a position', state, (s: SymbolStateView) => s.position !== null);
    await handle.signal(pauseSignal, by);
    await until('two paused decisions', state, (s) => s.decisions >= open.decisions + 2);
    await handle.signal(resumeSignal, by);
    await until('a decision after resume', state, (s) => s.decisions >= open.decisions + 3);
    const closed = await handle.executeUpdate(emergencyCloseUpdate, { args: [by] });
    if (closed.closed.length !== 1) throw new Error(`the emergency close should close the open position: ${JSON.stringify(closed)}`);
    await handle.terminate('recorded');
    await keep(env, handle.workflowId, handle.firstExecutionRunId, name, tmp, `BTC/USDT: pause, resume, emergency close update, terminated${keyId ? ', payloads encrypted' : ''}`, keyId);
  });
}

async function main(): Promise<void> {
  const env = await devServerEnv();
  const tmp = tradingTmpDir('dt-histories-');
  const harnesses: TradingHarness[] = [];
  const harness = async (exchange: string, files: string[], encryption?: Parameters<typeof tradingHarness>[1]['encryption']) => {
    const h = await tradingHarness(env, { files, initialCapital: CAPITAL, exchange, encryption });
    harnesses.push(h);
    return h;
  };
  // Payload encryption as a deployment with TEMPORAL_ENCRYPTION_KEYS=RECORDED_WITH_KEYS runs it.
  const keys = parseEncryptionKeys(RECORDED_WITH_KEYS);
  const keyId = keys[keys.length - 1].id;
  const encryptedClient = await connectTemporalClient({ address: env.address, namespace: env.namespace ?? 'default', port: 0, encryptionKeys: keys });
  const encryption = { client: encryptedClient, dataConverter: temporalDataConverter({ encryptionKeys: keys }) };
  try {
    // BTC and ETH from the 378th fixture hour: ETH's first trade loses within its first few
    // decisions while BTC holds a position (the portfolio test's window).
    const files = truncatedCandleFiles(tmp, [
      { file: 'fixture_BTC-USDT_1h.csv', rows: 560, from: 378 },
      { file: 'synthetic_ETH-USDT_1h.csv', rows: 560, from: 378 },
    ]);
    const [btcFile, ethFile] = files;

    if (wanted('symbol-trader-replay')) await recordReplay(env, env.client, await harness('rec-replay', [ethFile]), tmp, 'symbol-trader-replay');
    if (wanted('symbol-trader-messages')) await recordMessages(env, env.client, await harness('rec-messages', [btcFile]), tmp, 'symbol-trader-messages');

    // 3. Continue-as-new: the first run of a chain, ending with the carried state.
    if (wanted('symbol-trader-continued')) {
      const h = await harness('rec-continue', [btcFile]);
      await h.withWorker(async () => {
        const handle = await env.client.workflow.start<typeof symbolTraderWorkflow>('symbolTraderWorkflow', {
          workflowId: h.workflowId('BTC/USDT'),
          taskQueue: h.taskQueue,
          args: [h.symbolInput('BTC/USDT', { speed: 36_000, continueAsNewAfterEvents: 150 })],
        });
        await handle.result();
        await keep(env, handle.workflowId, handle.firstExecutionRunId, 'symbol-trader-continued', tmp, 'BTC/USDT first run of a continue-as-new chain (continueAsNewAfterEvents 150)');
      });
    }

    // 4. The portfolio: starts both symbols, checks equity, trips the kill switch on ETH's loss,
    //    closes BTC's position through the symbols' update, then is terminated.
    if (wanted('portfolio-kill-switch')) {
      const h = await harness('rec-portfolio', files);
      const bt = await runBacktest({ files, strategy: 'rules', initialCapital: CAPITAL });
      let equity = CAPITAL;
      let peak = CAPITAL;
      let drawdown = 0;
      for (const t of [...bt.trades].sort((a, b) => a.exitTime - b.exitTime)) {
        equity += t.pnl;
        peak = Math.max(peak, equity);
        if (peak > equity) {
          drawdown = (peak - equity) / peak;
          break;
        }
      }
      if (!(drawdown > 0)) throw new Error('no losing trade in the window');
      const input: PortfolioInput = {
        account: h.account,
        exchange: h.exchange,
        mode: 'replay',
        symbols: h.symbols.map((s) => h.symbolInput(s, { speed: 3_600 })),
        taskQueue: h.taskQueue,
        limits: { maxDrawdown: drawdown / 2, dailyLossLimit: 0.5 },
        checkEveryMs: 200,
      };
      await h.withWorker(async () => {
        const handle = await env.client.workflow.start<typeof portfolioWorkflow>('portfolioWorkflow', {
          workflowId: portfolioWorkflowId(h.account),
          taskQueue: h.taskQueue,
          args: [input],
        });
        await until('the kill switch', () => handle.query(portfolioStateQuery), (v) => v.killSwitch.tripped);
        for (const s of h.symbols) {
          await until(`${s} halted`, () => env.client.workflow.getHandle(h.workflowId(s)).query(stateQuery), (v) => v.tradingStatus === 'halted');
        }
        await handle.terminate('recorded');
        await keep(env, handle.workflowId, handle.firstExecutionRunId, 'portfolio-kill-switch', tmp, 'BTC+ETH portfolio: drawdown trips the kill switch, emergency close of both symbols, terminated');
      });
    }
    // 5. A pause that reaches the workflow while its first entry is being placed (sent from inside
    //    the order activity, so the signal lands before the activity's completion), and a resume
    //    two decisions later; the replay then runs to the end of its six decisions. (Before patch
    //    keep-status-changed-during-step the step overwrote that pause, and the resume changed nothing.)
    if (wanted('symbol-trader-pause-during-step')) {
      const shortDir = path.join(tmp, 'pause-during-step');
      fs.mkdirSync(shortDir, { recursive: true, mode: 0o755 });
      const [short] = truncatedCandleFiles(shortDir, [{ file: 'fixture_BTC-USDT_1h.csv', rows: FEATURE_SCHEMA.warmup + 6, from: 378 }]);
      const h = await harness('rec-pause-step', [short]);
      const realExecute = h.activities.executeIntents;
      let paused = false;
      const execute: typeof realExecute = async (args) => {
        const report = await realExecute(args);
        if (!paused && args.intents.some((i) => i.tag === 'entry')) {
          paused = true;
          await env.client.workflow.getHandle(args.workflowId).signal(pauseSignal, by);
        }
        return report;
      };
      await h.withWorker(
        async () => {
          const handle = await env.client.workflow.start<typeof symbolTraderWorkflow>('symbolTraderWorkflow', {
            workflowId: h.workflowId('BTC/USDT'),
            taskQueue: h.taskQueue,
            args: [h.symbolInput('BTC/USDT', { speed: 3_600 })],
          });
          const state = () => handle.query(stateQuery);
          const entered = await until('the entry', state, (s: SymbolStateView) => s.position !== null);
          if (!paused) throw new Error('no pause was sent while the entry was placed');
          const mid = await until('two more decisions', state, (s) => s.decisions >= entered.decisions + 2);
          await handle.signal(resumeSignal, by);
          await handle.result();
          await keep(env, handle.workflowId, handle.firstExecutionRunId, 'symbol-trader-pause-during-step', tmp, `BTC/USDT: pause signalled while the first entry was placed (${mid.tradingStatus} two decisions later), resume, replay to the end`);
        },
        { executeIntents: execute },
      );
    }

    // 6. and 7. Scenarios 1 and 2 with payload encryption: inputs, results, markers, signals, the
    //    update and its result are ciphertext under the key of encryption.ts.
    if (wanted('symbol-trader-replay-encrypted')) {
      await recordReplay(env, encryptedClient, await harness('rec-replay-enc', [ethFile], encryption), tmp, 'symbol-trader-replay-encrypted', keyId);
    }
    if (wanted('symbol-trader-messages-encrypted')) {
      await recordMessages(env, encryptedClient, await harness('rec-messages-enc', [btcFile], encryption), tmp, 'symbol-trader-messages-encrypted', keyId);
    }
    // 8. The portfolio's operator commands: stop every symbol, resume one, resume all (one local
    //    activity signals every symbol: patch status-commands-by-activity), then an emergency
    //    close by update (the close alongside the kill-switch alert: patch
    //    close-alongside-trip-alert); terminated once every symbol is halted.
    if (wanted('portfolio-commands')) {
      const h = await harness('rec-commands', files);
      const input: PortfolioInput = {
        account: h.account,
        exchange: h.exchange,
        mode: 'replay',
        symbols: h.symbols.map((s) => h.symbolInput(s, { speed: 3_600 })),
        taskQueue: h.taskQueue,
        limits: { maxDrawdown: 0.5, dailyLossLimit: 0.5 },
        checkEveryMs: 1_000,
      };
      await h.withWorker(async () => {
        const handle = await env.client.workflow.start<typeof portfolioWorkflow>('portfolioWorkflow', {
          workflowId: portfolioWorkflowId(h.account),
          taskQueue: h.taskQueue,
          args: [input],
        });
        const statuses = () => Promise.all(h.symbols.map((s) => env.client.workflow.getHandle(h.workflowId(s)).query(stateQuery).then((v) => v.tradingStatus)));
        const every = (want: string) => (v: string[]) => v.length === h.symbols.length && v.every((x) => x === want);
        await until('the symbols running', () => statuses().catch(() => []), (v) => v.length === h.symbols.length);
        await handle.signal(portfolioPauseSignal, by);
        await until('every symbol paused', statuses, every('paused'));
        await handle.signal(portfolioResumeSignal, { ...by, symbol: 'BTC/USDT' });
        await until('BTC/USDT active', statuses, (v) => v[h.symbols.indexOf('BTC/USDT')] === 'active');
        await handle.signal(portfolioResumeSignal, by);
        await until('every symbol active', statuses, every('active'));
        await handle.executeUpdate(portfolioEmergencyUpdate, { args: [by] });
        await until('every symbol halted', statuses, every('halted'));
        await handle.terminate('recorded');
        await keep(env, handle.workflowId, handle.firstExecutionRunId, 'portfolio-commands', tmp, 'BTC+ETH portfolio: stop all, resume BTC, resume all (signals from one local activity), emergency close by update, terminated');
      });
    }

    // 9. A strategy switch: BTC/USDT replay deciding with the rules, then switched (the symbol's
    //    setStrategy signal, as the portfolio sends it) to the example breakout strategy, whose
    //    answers (recorded in the candle reads) decide from the next candle; terminated. Replaying
    //    it needs neither strategy file: the answers are in the history.
    if (wanted('symbol-trader-strategy-switch')) {
      const h = await harness('rec-switch', [btcFile]);
      await h.withWorker(async () => {
        const handle = await env.client.workflow.start<typeof symbolTraderWorkflow>('symbolTraderWorkflow', {
          workflowId: h.workflowId('BTC/USDT'),
          taskQueue: h.taskQueue,
          args: [h.symbolInput('BTC/USDT', { speed: 3_600 })],
        });
        const state = () => handle.query(stateQuery);
        const before = await until('five decisions by the rules', state, (s: SymbolStateView) => s.decisions >= 5 && s.strategyIdentity !== undefined);
        await handle.signal(setStrategySignal, { ref: 'breakout', params: { channel: 24 }, label: 'breakout@1.0.0', ...by });
        await until('five decisions by breakout', state, (s) => s.strategyIdentity?.startsWith('breakout@') === true && s.decisions >= before.decisions + 5);
        await handle.terminate('recorded');
        await keep(env, handle.workflowId, handle.firstExecutionRunId, 'symbol-trader-strategy-switch', tmp, 'BTC/USDT: rules, then a setStrategy signal to examples/strategies/breakout (channel 24) deciding from the next candle, terminated');
      });
    }

    // Merged: recordings of older workflow code kept next to these stay listed.
    const indexFile = path.join(OUT, INDEX);
    const previous = fs.existsSync(indexFile) ? (JSON.parse(fs.readFileSync(indexFile, 'utf8')) as Record<string, HistoryIndexEntry>) : {};
    fs.writeFileSync(indexFile, JSON.stringify({ ...previous, ...index }, null, 2) + '\n');
  } finally {
    for (const h of harnesses) await h.close().catch(() => undefined);
    await encryptedClient.connection.close();
    await env.teardown();
    await stopTestServer();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
