import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { defaultPayloadConverter } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { Telegram } from 'telegraf';
import { AlertDispatcher, createAlertActivities, telegramAlertSink } from '../../activities/alerts';
import type { Venue } from '../../activities/trading';
import { StrategyRefused, TradingControl, UnknownSymbolError } from '../../control/trading-control';
import { parseConfig } from '../../infra/config';
import { createLogger } from '../../infra/logger';
import { typeCheckStrategy } from '../../infra/strategies';
import type { Alert } from '../../lib/alerts';
import { portfolioWorkflowId, type SymbolStateView } from '../../lib/contracts/trading';
import type { PortfolioInput } from '../../lib/contracts/workflows';
import type { PrepareResult } from '../../lib/contracts/activities';
import type { EngineFill, OrderIntent, StrategySignal } from '../../lib/engine';
import { PaperExchange } from '../../lib/exchange/paper-exchange';
import type { PaperStateStore } from '../../lib/exchange/paper-state';
import { spotMarket, StaticMarketCatalog } from '../../lib/exchange/markets';
import { RiskConfig } from '../../lib/risk';
import { startTelegramBot, type TelegramBot } from '../../telegram/bot';
import { BotApiStandin } from '../../testkit/bot-api-standin';
import { SineWaveMarket } from '../../testkit/candles';
import { testLog } from '../../testkit/db';
import { sharedDevServerEnv, workflowBundle } from '../../testkit/temporal';
import { historyEvents, localActivityMarker, tradingHarness, tradingTmpDir, type RunningWorker, type TradingHarness } from '../../testkit/trading';
import { HOLDING_WINDOWS, startTradingFixture, type TradingFixture } from '../../testkit/trading-fixture';
import { stateQuery } from '../../workflows/messages';
import type { symbolTraderWorkflow } from '../../workflows/symbol-trader';
import type { portfolioWorkflow } from '../../workflows/portfolio';

/**
 * Strategies switched, refused and failing on the REAL trading workflows (portfolioWorkflow and
 * symbolTraderWorkflow with their real activities: the checkStrategy activity that loads and
 * type-checks a strategy file, the candle read that runs it, the paper exchange and the ledger on
 * PostgreSQL) on the shared Temporal dev server.
 *
 * - A replay switched mid-run through TradingControl.setStrategy (what `trader strategy set`
 *   calls): the next candle decides with the new strategy and its entry order carries it. Replay
 *   raises no alerts (SymbolTrader.stepped), so the switch's record there is the audit row.
 * - Paper trading on a synthetic wall-clock market, switched through the Telegram bot's /strategy
 *   (the real telegraf bot against a Bot API stand-in): the strategyChanged alert reaches the chat.
 * - Refusals (unknown name, parameters the schema refuses, a file that does not type-check):
 *   StrategyRefused with the reason, nothing changes, audited.
 * - Strategies that throw, answer a NaN score or an invalid answer on a fixed rhythm of candles
 *   (test/fixtures/strategies/flaky-answers.ts): trading goes on, no entries while failing,
 *   protective exits still fill, one alert per incident and one when it answers again.
 *
 * What a workflow saw and did is read from its history (candle reads, order batches, alerts),
 * and each history is replayed against the current workflow code.
 */

const FIXTURES = path.resolve(__dirname, '..', 'fixtures', 'strategies');
const TAGGED = path.join(FIXTURES, 'tagged-entry.ts');
const FLAKY = path.join(FIXTURES, 'flaky-answers.ts');
/** XRP/USDT's window in which the rules never enter (testkit/trading-fixture.ts): an entry after the switch is the new strategy's. */
const FLAT_XRP = HOLDING_WINDOWS.filter((w) => w.file.includes('XRP'));
/** 1h candles at 0.4 s each: the replay runs for ~30 s, far longer than the test needs it. */
const REPLAY_SPEED = 9_000;
/** Paper trading on 1 s synthetic candles, read 200 ms after their close. */
const PAPER_TF = '1s';
const PAPER_DELAY_MS = 200;
const CAPITAL = 10_000;
const TOKEN = '123456789:TELEGRAM_strategy_test_token_abc';
const ADMIN = 424_242;
const origin = { by: 'test:strategy-switch', reason: 'strategy switch test' };
const IDENTITY_RE = /^([a-z0-9_-]+)@(\S+) src:([0-9a-f]{12}) params:([0-9a-f]{12})$/;

type HistoryEvent = Awaited<ReturnType<typeof historyEvents>>[number];

/** What a symbol workflow's history shows, in order: candle reads, order batches, alerts, switches. */
type Step =
  | { kind: 'read'; candleTime: number; signal?: StrategySignal; fills: EngineFill[] }
  | { kind: 'orders'; intents: OrderIntent[] }
  | { kind: 'alert'; alert: Alert }
  | { kind: 'switch'; args: { ref: string; params?: Record<string, unknown>; by: string } };

function timeline(events: HistoryEvent[]): Step[] {
  const out: Step[] = [];
  for (const e of events) {
    const marker = localActivityMarker<PrepareResult>(e);
    if (marker?.activityType === 'prepareCandle' && marker.result?.input) {
      out.push({ kind: 'read', candleTime: marker.result.input.candle.timestamp, signal: marker.result.input.signal, fills: marker.result.fills });
      continue;
    }
    const scheduled = e.activityTaskScheduledEventAttributes;
    const input = scheduled?.input?.payloads?.[0];
    if (scheduled && input) {
      const name = scheduled.activityType?.name;
      if (name === 'executeIntents') out.push({ kind: 'orders', intents: defaultPayloadConverter.fromPayload<{ intents: OrderIntent[] }>(input).intents });
      if (name === 'sendAlert') out.push({ kind: 'alert', alert: defaultPayloadConverter.fromPayload<Alert>(input) });
      continue;
    }
    const signal = e.workflowExecutionSignaledEventAttributes;
    if (signal?.signalName === 'setStrategy' && signal.input?.payloads?.[0]) {
      out.push({ kind: 'switch', args: defaultPayloadConverter.fromPayload(signal.input.payloads[0]) });
    }
  }
  return out;
}

const reads = (steps: Step[]) => steps.filter((s): s is Extract<Step, { kind: 'read' }> => s.kind === 'read');
const alertsOf = (steps: Step[]) => steps.flatMap((s) => (s.kind === 'alert' ? [s.alert] : []));

/** `name@version src:<hash> params:<hash>` as the identity the ledger and the signals carry. */
function parseIdentity(label: string): { name: string; version: string; source: string; params: string } {
  const m = IDENTITY_RE.exec(label);
  assert.ok(m, `an identity label: ${label}`);
  return { name: m[1], version: m[2], source: m[3], params: m[4] };
}

/** The workflow's history replays against the current workflow code (no nondeterminism). */
async function replays(env: TestWorkflowEnvironment, workflowId: string): Promise<void> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle(), replayName: 'strategy-switch' }, history, workflowId);
}

async function poll<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface OrderRow {
  clientOrderId: string;
  decisionSeq: number;
  strategy: { name: string; version: string; source: string; params: string } | null;
  entryTag: string | null;
}

describe('strategy switch, refusals and failing strategies (real workflows on a Temporal dev server, PostgreSQL)', function () {
  // The shared dev server, PostgreSQL and the workflow bundle on first use, and the TypeScript
  // compiler type-checking each strategy file once (seconds each: the before hook takes 15-30 s on
  // a loaded machine); then workflows on real timers (a replay at a speed, paper on 1 s candles;
  // the failing strategies' test waits up to 45 s for its incidents).
  this.timeout(60_000);
  let env: TestWorkflowEnvironment;
  let dir: string;
  let badFile: string;
  const quietAlerts = new AlertDispatcher({ log: testLog });
  let fx: TradingFixture | undefined;
  let h: TradingHarness | undefined;
  let worker: RunningWorker | undefined;
  let bot: TelegramBot | undefined;
  let api: BotApiStandin | undefined;
  let alerts: AlertDispatcher | undefined;

  before(async () => {
    env = await sharedDevServerEnv();
    dir = tradingTmpDir('dt-strategy-');
    // A user's file outside the project that does not type-check (it imports the interface by the
    // package name, as such a file does); written here, not kept as a fixture, so the project's
    // own type-check stays clean.
    badFile = path.join(dir, 'bad-types.ts');
    fs.writeFileSync(
      badFile,
      [
        "import { defineStrategy, z } from 'durable-trader/strategy';",
        'export default defineStrategy({',
        "  name: 'bad-types', version: '1.0.0', warmup: 1, params: z.object({}),",
        '  decide({ candle }) {',
        '    const label: number = `close ${candle.close}`;',
        '    return { enter: label > 0 };',
        '  },',
        '});',
        '',
      ].join('\n'),
      { mode: 0o644 },
    );
    // The compiler's verdicts are cached per file and content in this process, which is also the
    // worker's: taken here, the checks do not stall the worker in the middle of a test.
    for (const f of [TAGGED, FLAKY]) assert.equal(typeCheckStrategy(f, fs.readFileSync(f, 'utf8')), null, `${f} type-checks`);
    assert.match(String(typeCheckStrategy(badFile, fs.readFileSync(badFile, 'utf8'))), /not assignable/);
    await workflowBundle();
  });
  after(async () => {
    await quietAlerts.stop();
    await env?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await bot?.stop();
    bot = undefined;
    await fx?.stop();
    fx = undefined;
    await worker?.stop();
    worker = undefined;
    await h?.close();
    h = undefined;
    await alerts?.stop();
    alerts = undefined;
    await api?.stop();
    api = undefined;
  });

  /** Paper trading on a smooth synthetic price path of 1 s candles on the wall clock, one paper account per symbol. */
  const paperHarness = (symbols: string[], opts: Partial<Parameters<typeof tradingHarness>[1]> = {}): Promise<TradingHarness> => {
    const market = new SineWaveMarket(Date.now);
    const venue = (store: PaperStateStore): Venue => ({
      mode: 'paper',
      exchangeId: 'paper',
      adapter: (_clock, symbol = symbols[0]) =>
        new PaperExchange({ account: `strategy-test/${symbol}`, store, marketData: market, markets: new StaticMarketCatalog([spotMarket(symbol)]), timeframe: PAPER_TF, initialBalances: { USDT: CAPITAL } }),
    });
    return tradingHarness(env, { venue, featureSource: market, symbols, timeframe: PAPER_TF, initialCapital: CAPITAL, ...opts });
  };

  const orderRows = (harness: TradingHarness): Promise<OrderRow[]> =>
    harness.db.sql<OrderRow[]>`
      select client_order_id as "clientOrderId", decision_seq::int as "decisionSeq", strategy, entry_tag as "entryTag"
      from orders order by id`;

  it('TradingControl.setStrategy (trader strategy set) switches a running replay from rules at its next candle: state, entry order, audit, history', async () => {
    fx = await startTradingFixture(env, { alerts: quietAlerts, windows: FLAT_XRP, speed: REPLAY_SPEED });
    const f = fx;
    const symbol = 'XRP/USDT';
    const before = await f.waitFor('a few decisions by the rules', async () => {
      const s = await f.state(symbol);
      return s.decisions >= 2 && s.strategyIdentity !== undefined && s;
    });
    assert.equal(before.strategy, 'rules');
    assert.equal(parseIdentity(before.strategyIdentity!).name, 'rules', 'the rules decide before the switch');
    assert.equal(before.position, null, 'flat: the rules do not enter in this window');

    const r = await f.control.setStrategy(symbol, TAGGED, { tag: 'ctl-switch' }, origin);
    assert.equal(r.symbol, symbol);
    assert.equal(r.ref, TAGGED, 'the reference as the workflows carry it: the absolute path');
    const id = parseIdentity(r.strategy);
    assert.deepEqual([id.name, id.version], ['tagged-entry', '1.0.0']);

    // The next candle read asks for it; from then on the state shows who decides.
    const after = await f.waitFor('the new strategy to decide', async () => {
      const s = await f.state(symbol);
      return s.strategyIdentity === r.strategy && s;
    });
    assert.equal(after.strategy, TAGGED);
    assert.equal(after.pendingStrategy, undefined, 'the switch was taken up');

    // Its entry order, in the ledger with who decided it and the tag it gave.
    const entry = await f.waitFor('the entry order of the new strategy', async () => (await orderRows(f.harness)).find((o) => o.entryTag === 'ctl-switch'));
    assert.match(entry.clientOrderId, /-en$/, 'an entry order');
    assert.deepEqual(entry.strategy, id, 'orders.strategy is the new identity');
    assert.ok(entry.decisionSeq > before.decisions, 'decided after the switch');
    const earlier = (await orderRows(f.harness)).filter((o) => o.decisionSeq < entry.decisionSeq);
    assert.deepEqual(earlier, [], 'no order before it (the rules stayed flat)');

    // The history: the rules answer every candle before the signal, the new strategy the first
    // one after it, and that very candle's order batch is its entry.
    const steps = timeline(await historyEvents(env.client, f.harness.workflowId(symbol)));
    const at = steps.findIndex((s) => s.kind === 'switch');
    assert.ok(at > 0, 'the setStrategy signal is in the history');
    assert.deepEqual(steps[at], { kind: 'switch', args: { ref: TAGGED, params: { tag: 'ctl-switch' }, label: 'tagged-entry@1.0.0', by: origin.by, reason: origin.reason } });
    const readsBefore = reads(steps.slice(0, at));
    assert.ok(readsBefore.length >= 2 && readsBefore.every((s) => s.signal?.strategy?.name === 'rules' && !s.signal.error), 'the rules answered every candle before the switch');
    const firstAfter = steps.findIndex((s, i) => i > at && s.kind === 'read');
    const read = steps[firstAfter] as Extract<Step, { kind: 'read' }>;
    assert.deepEqual(read.signal?.strategy, id, 'the next candle is answered by the new strategy');
    assert.equal(read.signal?.enter, true);
    assert.equal(read.signal?.tag, 'ctl-switch');
    const batch = steps[firstAfter + 1];
    assert.equal(batch?.kind, 'orders', 'that candle sends orders');
    const intent = (batch as Extract<Step, { kind: 'orders' }>).intents.find((i) => i.tag === 'entry');
    assert.ok(intent, 'the entry is decided on that candle');
    assert.equal(intent.clientOrderId, entry.clientOrderId);
    assert.equal(intent.entryTag, 'ctl-switch');
    assert.deepEqual(intent.strategy, id);
    // Replay raises no alerts (SymbolTrader.stepped returns none in replay): the switch is logged, and audited below.
    assert.deepEqual(alertsOf(steps), [], 'no alert activity in a replay');

    // Audited by the worker that checked it, with the validated parameters (defaults filled in).
    const audit = await f.harness.db.ledger.auditTrail({ event: 'strategy.set' });
    assert.equal(audit.length, 1);
    const p = audit[0].payload;
    assert.deepEqual([p.symbol, p.ref, p.params, p.identity, p.by, p.reason], [symbol, TAGGED, { tag: 'ctl-switch', hold: 2 }, id, origin.by, origin.reason]);
    assert.deepEqual(await f.harness.db.ledger.auditTrail({ event: 'strategy.refused' }), []);

    await replays(env, f.harness.workflowId(symbol));
    await replays(env, portfolioWorkflowId(f.account));
  });

  it('refuses an unknown name, parameters the schema refuses and a file that does not type-check: StrategyRefused, nothing changes, audited', async () => {
    fx = await startTradingFixture(env, { alerts: quietAlerts, windows: FLAT_XRP, speed: REPLAY_SPEED });
    const f = fx;
    const symbol = 'XRP/USDT';
    const before = await f.waitFor('a decision', async () => {
      const s = await f.state(symbol);
      return s.strategyIdentity !== undefined && s;
    });

    const refused = async (ref: string, params: Record<string, unknown> | undefined, reason: RegExp): Promise<string> => {
      let message = '';
      await assert.rejects(f.control.setStrategy(symbol, ref, params, origin), (err: unknown) => {
        assert.ok(err instanceof StrategyRefused, `a StrategyRefused, got ${String(err)}`);
        assert.match(err.message, reason);
        message = err.message;
        return true;
      });
      return message;
    };
    const unknown = await refused('no-such-strategy', undefined, /^strategy no-such-strategy: not found: not a built-in \(rules, .*\)/);
    const badParams = await refused(TAGGED, { hold: 0 }, /^tagged-entry parameters: hold: .*>=1/);
    const badTypes = await refused(badFile, undefined, /does not type-check: line 5:\d+: Type 'string' is not assignable to type 'number'/);
    // A symbol the portfolio does not trade: refused by the control's symbol lookup (as /stop), before the portfolio is asked.
    await assert.rejects(f.control.setStrategy('DOGE/USDT', TAGGED, undefined, origin), (err: unknown) => err instanceof UnknownSymbolError && /unknown symbol DOGE\/USDT: known symbols are XRP\/USDT/.test(err.message));

    // Nothing changed: the rules still decide, later candles too, and no switch reached the symbol.
    const later = await f.waitFor('more decisions', async () => {
      const s = await f.state(symbol);
      return s.decisions >= before.decisions + 2 && s;
    });
    assert.equal(later.strategy, 'rules');
    assert.equal(later.strategyIdentity, before.strategyIdentity, 'the same strategy, version and parameters');
    assert.equal(later.pendingStrategy, undefined);
    assert.deepEqual(await f.symbolMessages(), [], 'no setStrategy signal reached the symbol');
    const steps = timeline(await historyEvents(env.client, f.harness.workflowId(symbol)));
    assert.ok(reads(steps).every((s) => s.signal?.strategy?.name === 'rules'), 'every candle answered by the rules');

    // Audited with the reason, by the worker that tried to load each one; nothing set.
    const audit = await f.harness.db.ledger.auditTrail({ event: 'strategy.refused' });
    assert.deepEqual(
      audit.map((a) => [a.payload.symbol, a.payload.ref, a.payload.params, a.payload.by, a.payload.error]),
      [
        [symbol, 'no-such-strategy', null, origin.by, unknown],
        [symbol, TAGGED, { hold: 0 }, origin.by, badParams],
        [symbol, badFile, null, origin.by, badTypes],
      ],
    );
    assert.deepEqual(await f.harness.db.ledger.auditTrail({ event: 'strategy.set' }), []);

    // A valid strategy for a symbol whose workflow is not running: refused, and no strategy.set row
    // (the audit is written only once the symbol has been told).
    await env.client.workflow.getHandle(f.harness.workflowId(symbol)).terminate('strategy switch test: not running');
    await assert.rejects(f.control.setStrategy(symbol, TAGGED, undefined, origin), (err: unknown) => err instanceof StrategyRefused && /XRP\/USDT's workflow is not running.*nothing changed/.test(err.message));
    assert.deepEqual(await f.harness.db.ledger.auditTrail({ event: 'strategy.set' }), []);
    await replays(env, portfolioWorkflowId(f.account));
  });

  it("the Telegram bot's /strategy switches a paper symbol from rules: reply, entry order, strategyChanged alert in the admins' chat, audit", async () => {
    api = await BotApiStandin.start({ token: TOKEN });
    const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'test' });
    alerts = new AlertDispatcher({ log, sink: telegramAlertSink(new Telegram(TOKEN, { apiRoot: api.apiRoot })), adminIds: [ADMIN], queue: { sendIntervalMs: 10 } });
    const symbol = 'SYN/USDT';
    h = await paperHarness([symbol]);
    const harness = h;
    worker = await harness.startWorker(createAlertActivities(alerts));
    const defaults = RiskConfig.parse({});
    const input: PortfolioInput = {
      account: harness.account,
      exchange: harness.exchange,
      mode: harness.mode,
      symbols: [harness.symbolInput(symbol, { candleDelayMs: PAPER_DELAY_MS })],
      taskQueue: harness.taskQueue,
      limits: { maxDrawdown: defaults.maxDrawdown, dailyLossLimit: defaults.dailyLossLimit },
      checkEveryMs: 2_000,
    };
    await env.client.workflow.start<typeof portfolioWorkflow>('portfolioWorkflow', { taskQueue: harness.taskQueue, workflowId: portfolioWorkflowId(harness.account), args: [input] });
    const control = new TradingControl(env.client, { account: harness.account, exchange: harness.exchange, queryTimeoutMs: 5_000, emergencyTimeoutMs: 30_000 });
    const state = (): Promise<SymbolStateView> => env.client.workflow.getHandle(harness.workflowId(symbol)).query(stateQuery);
    const before = await poll('the rules to decide', async () => {
      const s = await state().catch(() => undefined);
      return s?.strategyIdentity !== undefined && s;
    });
    const rulesLabel = before.strategyIdentity!.split(' ')[0];
    assert.match(rulesLabel, /^rules@/);

    const cfg = parseConfig({ TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_ADMIN_IDS: String(ADMIN), TELEGRAM_API_ROOT: api.apiRoot, SYMBOLS: symbol });
    bot = await startTelegramBot({ cfg, control, log, ledger: harness.db.ledger, alerts, rateLimitMs: 0 });
    await api.waitForPolling();
    const ask = (text: string, match: RegExp) => {
      const since = api!.messagesTo(ADMIN).length;
      api!.sendText(ADMIN, text);
      return api!.waitForMessage(ADMIN, match, { since });
    };

    // A refusal first: the reply says why, and nothing changes.
    const no = await ask(`/strategy ${symbol} no-such-strategy`, /^Refused/);
    assert.match(no.text, /^Refused, nothing changed: strategy no-such-strategy: not found/);

    const reply = await ask(`/strategy ${symbol} ${TAGGED} {"tag":"tg-switch","hold":1}`, /from the next candle/);
    const m = /^SYN\/USDT: strategy (.+) from the next candle\.$/.exec(reply.text);
    assert.ok(m, `the reply names the new identity: ${reply.text}`);
    const id = parseIdentity(m[1]);
    assert.deepEqual([id.name, id.version], ['tagged-entry', '1.0.0']);

    await poll('the new strategy to decide', async () => (await state()).strategyIdentity === m[1]);
    const entry = await poll('its entry order', async () => (await orderRows(harness)).find((o) => o.entryTag === 'tg-switch'));
    assert.deepEqual(entry.strategy, id, 'orders.strategy is the new identity');

    // The switch is alerted once, through the alert activity, to the admins' chat.
    const alerted = await api.waitForMessage(ADMIN, /strategy rules@/);
    assert.match(alerted.text, new RegExp(`SYN/USDT: strategy ${esc(rulesLabel)} -> tagged-entry@1\\.0\\.0 by telegram:${ADMIN} \\(/strategy via Telegram\\); it decided this candle`));
    const steps = timeline(await historyEvents(env.client, harness.workflowId(symbol)));
    const changed = alertsOf(steps).filter((a) => a.key.startsWith('strategy-changed/'));
    assert.deepEqual(changed.map((a) => a.key), [`strategy-changed/${symbol}/tagged-entry`], 'one strategyChanged alert');
    const sw = steps.filter((s) => s.kind === 'switch');
    assert.equal(sw.length, 1, 'one switch reached the symbol (the refused one did not)');
    const firstAfter = steps.find((s, i) => i > steps.indexOf(sw[0]) && s.kind === 'read') as Extract<Step, { kind: 'read' }>;
    assert.deepEqual(firstAfter.signal?.strategy, id, 'the next candle is answered by the new strategy');

    const set = await harness.db.ledger.auditTrail({ event: 'strategy.set' });
    assert.deepEqual(set.map((a) => [a.payload.ref, a.payload.params, a.payload.by]), [[TAGGED, { tag: 'tg-switch', hold: 1 }, `telegram:${ADMIN}`]]);
    assert.deepEqual((await harness.db.ledger.auditTrail({ event: 'strategy.refused' })).map((a) => a.payload.ref), ['no-such-strategy']);
    const commands = await poll('the command audit rows', async () => {
      const rows = await harness.db.ledger.auditTrail({ event: 'telegram.command' });
      return rows.length >= 2 && rows;
    });
    assert.deepEqual(commands.map((r) => [r.payload.command, r.actor]), [['strategy', `telegram:${ADMIN}`], ['strategy', `telegram:${ADMIN}`]]);

    await replays(env, harness.workflowId(symbol));
    await replays(env, portfolioWorkflowId(harness.account));
  });

  it('a strategy that throws, answers a NaN score or an invalid answer: trading goes on, no entries while failing, protective exits fill, one alert per incident and one on recovery', async () => {
    const modes = { 'THR/USDT': 'throw', 'NAN/USDT': 'nan', 'BAD/USDT': 'invalid' } as const;
    const reasons: Record<string, RegExp> = {
      throw: /^Error: flaky-answers: fails on phase [1-4] of 5$/,
      nan: /^invalid answer: score: .*NaN/,
      invalid: /^invalid answer: size: .*\(got 2\)$/,
    };
    const symbols = Object.keys(modes) as Array<keyof typeof modes>;
    // No cooldown or stop-loss guard after a stop-out: every healthy candle may enter.
    h = await paperHarness(symbols, { strategy: FLAKY, risk: { cooldownBarsAfterStopOut: 0, stoplossGuard: null } });
    const harness = h;
    worker = await harness.startWorker();
    const handles = await Promise.all(
      symbols.map((s) =>
        env.client.workflow.start<typeof symbolTraderWorkflow>('symbolTraderWorkflow', {
          workflowId: harness.workflowId(s),
          taskQueue: harness.taskQueue,
          args: [harness.symbolInput(s, { candleDelayMs: PAPER_DELAY_MS, engine: { ...harness.engine(s), strategyParams: { mode: modes[s] } } })],
        }),
      ),
    );
    const histories = () => Promise.all(handles.map(async (hd) => flakyRun(timeline(await historyEvents(env.client, hd.workflowId)))));
    // Until every symbol has been through two incidents and their recoveries, entered twice, and
    // had a stop or target fill while failing (a cycle is 5 candles of 1 s: 1 healthy, 4 failing).
    await poll(
      'incidents, entries and a protective exit on every symbol',
      async () => (await histories()).every((r) => r.recoveries >= 2 && r.entries.length >= 2 && r.exitsWhileFailing.length >= 1),
      45_000,
    );
    const seen = await histories();
    const finalStates = await Promise.all(handles.map((hd) => hd.query(stateQuery)));
    const statuses = await Promise.all(handles.map(async (hd) => (await hd.describe()).status.name));
    await Promise.all(handles.map((hd) => hd.terminate('test done')));
    const runs = await histories();

    const entryOrders = (await orderRows(harness)).filter((o) => o.clientOrderId.endsWith('-en'));
    assert.ok(entryOrders.length >= 2 * symbols.length, `every symbol entered (${entryOrders.length} entry orders)`);
    assert.ok(entryOrders.every((o) => o.entryTag === 'flaky' && o.strategy?.name === 'flaky-answers'), 'every entry order carries the strategy and its tag');
    for (const [k, s] of symbols.entries()) {
      const run = runs[k];
      const label = 'flaky-answers@1.0.0';
      // The fixture fails on phases 1-4 of every 5 candles, the same way whoever asks.
      for (const r of run.signalled) {
        const failing = Math.floor(r.candleTime / 1000) % 5 >= 1;
        assert.equal(r.signal.error !== undefined, failing, `${s}: candle ${r.candleTime} ${failing ? 'fails' : 'answers'}`);
        if (failing) {
          assert.match(r.signal.error!, reasons[modes[s]], `${s}: the reason`);
          assert.deepEqual([r.signal.enter, r.signal.exit], [false, false], `${s}: a failed answer neither enters nor exits`);
        }
        assert.equal(r.signal.strategy?.name, 'flaky-answers');
      }

      // One alert when a run of failing candles begins, one when it answers again: no more. (The
      // workflow was terminated at some point of a candle step: the last read's alert may not
      // have been sent yet.)
      const keys = (kinds: string[]) => kinds.map((kind) => `strategy-${kind}/${s}/${label}`);
      const sent = run.alerts.map((a) => a.key);
      const due = keys(run.incidents);
      const dueBeforeLast = keys(flakyIncidents(run.signalled.slice(0, -1)).incidents);
      assert.ok(isDeepStrictEqual(sent, due) || isDeepStrictEqual(sent, dueBeforeLast), `${s}: one alert per incident and one per recovery: sent ${sent.join(', ')}; due ${due.join(', ')}`);
      assert.ok(run.longestIncident >= 2, `${s}: an incident spans several candles (${run.longestIncident}) and is still one alert`);
      const failedAlert = run.alerts.find((a) => a.key.startsWith('strategy-failed/'))!;
      assert.equal(failedAlert.severity, 'warning');
      assert.match(failedAlert.text, new RegExp(`^Strategy ${label} failed on ${esc(s)} \\(paper\\): .+\\. No new entries on ${esc(s)} until it answers again; protective exits continue\\.$`));
      const recovered = run.alerts.find((a) => a.key.startsWith('strategy-recovered/'))!;
      assert.equal(recovered.text, `Strategy ${label} answers again on ${s} (paper): entries allowed.`);

      // Entries only on candles it answered; the stops and targets of those entries fill on candles it failed.
      assert.deepEqual(run.entries.filter((e) => e.error !== undefined), [], `${s}: no entry on a candle the strategy failed`);
      assert.ok(run.exitsWhileFailing.length >= 1, `${s}: a stop or target filled while the strategy was failing`);
      const trades = (await harness.db.ledger.trades()).filter((t) => t.symbol === s);
      assert.ok(trades.some((t) => t.exitReason === 'stop_loss' || t.exitReason === 'take_profit'), `${s}: a trade closed by its protective orders, in the ledger`);

      // It kept trading throughout: still running and active, every candle read decided (but the
      // one whose step may still have been under way).
      const fin = finalStates[k];
      assert.equal(statuses[k], 'RUNNING');
      assert.equal(fin.tradingStatus, 'active');
      assert.ok(fin.decisions >= seen[k].signalled.length - 1, `${s}: every candle decided (${fin.decisions} decisions, ${seen[k].signalled.length} reads)`);
      assert.equal(fin.strategyIdentity?.split(' ')[0], label);
      await replays(env, handles[k].workflowId);
    }
  });
});

/** Where an alert is due: a run of failing candles begins, or it answers again after one; and the longest run. */
function flakyIncidents(signalled: Array<{ signal: StrategySignal }>): { incidents: Array<'failed' | 'recovered'>; longestIncident: number } {
  const incidents: Array<'failed' | 'recovered'> = [];
  let failing = false;
  let run = 0;
  let longestIncident = 0;
  for (const r of signalled) {
    const failed = r.signal.error !== undefined;
    if (failed !== failing) incidents.push(failed ? 'failed' : 'recovered');
    failing = failed;
    run = failed ? run + 1 : 0;
    longestIncident = Math.max(longestIncident, run);
  }
  return { incidents, longestIncident };
}

/** What a symbol running flaky-answers went through, from its history. */
function flakyRun(steps: Step[]) {
  const signalled = reads(steps).flatMap((r) => (r.signal ? [{ candleTime: r.candleTime, signal: r.signal }] : []));
  const { incidents, longestIncident } = flakyIncidents(signalled);
  // Entries with the answer of the candle they were decided on; protective fills with the answer
  // of the read that first reported them.
  const entries: Array<{ clientOrderId: string; error?: string }> = [];
  const exitsWhileFailing: string[] = [];
  const seen = new Set<string>();
  let last: Extract<Step, { kind: 'read' }> | undefined;
  for (const st of steps) {
    if (st.kind === 'read') {
      last = st;
      for (const f of st.fills) {
        if (seen.has(f.clientOrderId)) continue;
        seen.add(f.clientOrderId);
        if ((f.tag === 'stop' || f.tag === 'target') && st.signal?.error !== undefined) exitsWhileFailing.push(f.clientOrderId);
      }
    }
    if (st.kind === 'orders') {
      for (const i of st.intents.filter((x) => x.tag === 'entry')) entries.push({ clientOrderId: i.clientOrderId, ...(last?.signal?.error !== undefined ? { error: last.signal.error } : {}) });
    }
  }
  const alerts = alertsOf(steps).filter((a) => a.key.startsWith('strategy-'));
  return { signalled, incidents, longestIncident, entries, exitsWhileFailing, alerts, recoveries: incidents.filter((k) => k === 'recovered').length };
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
