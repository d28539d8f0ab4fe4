import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Telegram } from 'telegraf';
import { AlertDispatcher, telegramAlertSink } from '../../activities/alerts';
import { TradingControl } from '../../control/trading-control';
import { parseConfig } from '../../infra/config';
import { createLogger } from '../../infra/logger';
import type { Ledger } from '../../ledger';
import { startTelegramBot, type TelegramBot, type TelegramBotOptions } from '../../telegram/bot';
import { BotApiStandin, type BotMessage } from '../../testkit/bot-api-standin';
import { freshDatabase, type TestDatabase } from '../../testkit/db';
import { parseEvery, upsertRetrainSchedule } from '../../client/commands/schedule';
import { NotARetrainSchedule, triggerRetrainNow } from '../../control/retrain';
import { DEFAULT_RETRAIN_SCHEDULE_ID, RETRAIN_WORKFLOW_TYPE, TRAINING_TASK_QUEUE } from '../../lib/contracts/retrain';
import { sharedDevServerEnv } from '../../testkit/temporal';
import { HOLDING_WINDOWS, LOSING_WINDOWS, startTradingFixture, type FixtureOptions, type TradingFixture } from '../../testkit/trading-fixture';
import type { EmergencyCloseResult, SymbolStateView } from '../../lib/contracts/trading';

/**
 * End to end: the REAL telegraf bot long-polls a local Bot API stand-in; its commands reach the
 * REAL trading workflows (portfolioWorkflow and its symbolTraderWorkflows, replaying recorded
 * candles through the real trading activities, paper exchange and ledger on PostgreSQL) on a
 * Temporal dev server, through TradingControl. Alerts from the workflows go through the real
 * sendAlert activity and AlertDispatcher to the stand-in. See testkit/trading-fixture.ts
 * for the replayed windows: by default BTC/USDT and ETH/USDT enter on their first decision and
 * hold, XRP/USDT stays flat.
 */

const TOKEN = '123456789:TELEGRAM_e2e_test_token_abcdefgh';
const ADMIN = 424_242;
const ADMIN_2 = 515_151;
const STRANGER = 999_001;
const SYMBOLS = ['BTC/USDT', 'ETH/USDT', 'XRP/USDT'];

// The bot's number formats, to build the exact lines expected from what the workflows report.
const num = (x: number) => String(Number(x.toFixed(8)));
const money = (x: number) => x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const signed = (x: number) => `${x >= 0 ? '+' : ''}${money(x)}`;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('Telegram kill switch end to end (real telegraf, Bot API stand-in, real trading workflows on a Temporal dev server, PostgreSQL)', function () {
  this.timeout(120_000); // the real telegraf bot, the shared dev server and PostgreSQL, real trading workflows
  let env: TestWorkflowEnvironment;
  let api: BotApiStandin;
  let fx: TradingFixture | undefined;
  let alerts: AlertDispatcher;
  let bot: TelegramBot | undefined;
  const controlCalls: string[] = [];
  const lines: string[] = [];
  const log = createLogger({ level: 'info', name: 'test', destination: { write: (l: string) => void lines.push(l) } });

  before(async () => {
    env = await sharedDevServerEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  beforeEach(async () => {
    lines.length = 0;
    controlCalls.length = 0;
    api = await BotApiStandin.start({ token: TOKEN });
    alerts = new AlertDispatcher({
      log,
      sink: telegramAlertSink(new Telegram(TOKEN, { apiRoot: api.apiRoot })),
      adminIds: [ADMIN, ADMIN_2],
      queue: { sendIntervalMs: 10 },
    });
  });
  afterEach(async () => {
    await bot?.stop();
    bot = undefined;
    await alerts.stop();
    await fx?.stop();
    fx = undefined;
    await api.stop();
  });

  /** The real workflows, replaying; the bot's ledger is theirs, as in `trader up`. */
  const trading = async (opts: Partial<FixtureOptions> = {}): Promise<TradingFixture> => {
    fx = await startTradingFixture(env, { alerts, ...opts });
    const replayed = (opts.windows ?? HOLDING_WINDOWS).map((w) => w.file.split('_')[1].replace('-', '/')).sort();
    assert.deepEqual(fx.symbols, replayed, 'one symbol workflow per replayed file');
    return fx;
  };
  const ledger = (): Ledger => fx!.harness.db.ledger;

  /** Counts every TradingControl call: "no Temporal call" is measured, not assumed. */
  const counted = (control: TradingControl): TradingControl =>
    new Proxy(control, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof v !== 'function') return v;
        return (...args: unknown[]) => {
          controlCalls.push(String(prop));
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });

  /** The bot on the running fixture, or (for tests that must reach no workflow) on an account nobody runs. */
  const startBot = async (opts: Partial<TelegramBotOptions> = {}) => {
    const cfg = parseConfig({
      TELEGRAM_BOT_TOKEN: TOKEN,
      TELEGRAM_ADMIN_IDS: `${ADMIN},${ADMIN_2}`,
      TELEGRAM_API_ROOT: api.apiRoot,
      SYMBOLS: (fx?.symbols ?? SYMBOLS).join(','),
    });
    const control = fx?.control ?? new TradingControl(env.client, { account: 'nobody', exchange: 'nowhere' });
    bot = await startTelegramBot({ cfg, control: counted(control), log, ledger: fx ? ledger() : undefined, alerts, rateLimitMs: 0, confirmStatusMs: 10_000, ...opts });
    await api.waitForPolling();
    return bot;
  };

  /** Sends text as `from` and returns the next bot message to `chat` that matches. */
  const ask = async (from: number, text: string, match: RegExp, group?: { id: number; type: 'supergroup' }): Promise<BotMessage> => {
    const chat = group?.id ?? from;
    const since = api.messagesTo(chat).length;
    api.sendText(from, text, group);
    return api.waitForMessage(chat, match, { since });
  };

  const states = () => Promise.all(fx!.symbols.map((s) => fx!.state(s)));
  const statuses = async () => Object.fromEntries((await states()).map((s) => [s.symbol, s.tradingStatus]));
  const allStatus = (status: string) => Object.fromEntries(fx!.symbols.map((s) => [s, status]));
  /** Open positions as symbol -> "qty@entry": the same while nobody closes them. */
  const positionsOf = (ss: SymbolStateView[]) => Object.fromEntries(ss.filter((s) => s.position).map((s) => [s.symbol, `${s.position!.qty}@${s.position!.entryPrice}`]));
  const openPositions = async () => positionsOf(await states());
  const audits = (event: string) => ledger().auditTrail({ event });
  /** The line the bot writes for each position an emergency close closed. */
  const closedLines = (results: EmergencyCloseResult[]) =>
    results.flatMap((r) => r.closed).map((c) => `• ${c.symbol}: sold ${num(c.qty)} @ ${num(c.exitPrice)} (entry ${num(c.entryPrice)}), PnL ${signed(c.pnl)} [${c.clientOrderId}]`);

  it('starts against the configured API root, registers its command menu and answers /help', async () => {
    const b = await startBot();
    assert.equal(b.username, api.bot.username);
    const menu = api.callsOf('setMyCommands')[0]?.payload.commands as { command: string }[];
    assert.deepEqual(
      menu.map((c) => c.command),
      ['start', 'help', 'status', 'stop', 'resume', 'reduceonly', 'strategy', 'positions', 'metrics', 'trades', 'profit', 'balance', 'retrain', 'emergency'],
    );
    const help = await ask(ADMIN, '/help', /kill switch/);
    assert.match(help.text, /\/emergency — close EVERY position/);
    assert.match(help.text, /You are admin 424242/);
    assert.deepEqual(controlCalls, [], '/help needs no Temporal call');
  });

  it("an admin's /stop pauses every symbol (checked by query) and /resume resumes them", async () => {
    await trading();
    await startBot();
    const stop = await ask(ADMIN, '/stop', /All symbols paused/);
    assert.match(stop.text, /BTC\/USDT, ETH\/USDT, XRP\/USDT confirmed/);
    assert.match(stop.text, /stop-loss and take-profit exits keep working/);
    assert.deepEqual(await statuses(), allStatus('paused'));
    assert.match((await fx!.state('ETH/USDT')).statusReason ?? '', /by telegram:424242/, 'the workflow knows who stopped it');
    // Paused is not halted: the symbols keep taking candles (protective exits need them).
    const before = await states();
    await fx!.waitFor('a candle processed while paused', async () => (await states()).every((s, i) => s.decisions > before[i].decisions && s.tradingStatus === 'paused'));

    await ask(ADMIN, '/resume', /All symbols resumed/);
    assert.deepEqual(await statuses(), allStatus('active'));

    const one = await ask(ADMIN, '/stop ethusdt', /ETH\/USDT paused/);
    assert.doesNotMatch(one.text, /All symbols/);
    assert.deepEqual(await statuses(), { 'BTC/USDT': 'active', 'ETH/USDT': 'paused', 'XRP/USDT': 'active' });

    await ask(ADMIN, '/reduceonly BTC/USDT', /BTC\/USDT set to reduce-only/);
    assert.equal((await fx!.state('BTC/USDT')).tradingStatus, 'reduce-only');
    assert.deepEqual(await fx!.portfolioSignals(), ['portfolioPause', 'portfolioResume', 'portfolioPause', 'portfolioReduceOnly'], 'every command went through the portfolio');
    // The audit row is written once the command's reply is out: wait for the last one.
    const rows = await fx!.waitFor('four audit rows', async () => {
      const r = await audits('telegram.command');
      return r.length >= 4 ? r : undefined;
    });
    assert.deepEqual(rows.map((r) => [r.payload.command, r.payload.outcome, r.actor]), [
      ['stop', 'ok', 'telegram:424242'],
      ['resume', 'ok', 'telegram:424242'],
      ['stop', 'ok', 'telegram:424242'],
      ['reduceonly', 'ok', 'telegram:424242'],
    ]);
  });

  it('an unknown symbol or bad arguments get a helpful reply and change nothing', async () => {
    await trading();
    await startBot();
    const unknown = await ask(ADMIN, '/stop DOGE/USDT', /Unknown symbol/);
    assert.equal(unknown.text, 'Unknown symbol DOGE/USDT. Known symbols: BTC/USDT, ETH/USDT, XRP/USDT. Example: /stop BTC/USDT');
    await ask(ADMIN, '/stop BTC/USDT ETH/USDT', /^Usage: \/stop \[SYMBOL\] — takes at most one symbol$/);
    await ask(ADMIN, '/resume $$$', /^Usage: \/resume \[SYMBOL\] — expected a symbol such as BTC\/USDT$/);
    await ask(ADMIN, '/trades many', /^Usage: \/trades \[N\] — expected a number of trades$/);
    await ask(ADMIN, '/trades 500', /^Usage: \/trades \[N\] — at most 50$/);
    await ask(ADMIN, '/launch', /^Unknown command \/launch\. Send \/help/);
    await ask(ADMIN, 'hello', /^Send \/help for the commands\.$/);
    assert.deepEqual(await fx!.portfolioSignals(), [], 'nothing reached the portfolio');
    assert.deepEqual(await fx!.symbolMessages(), [], 'nothing reached a symbol');
    assert.deepEqual(await statuses(), allStatus('active'));
  });

  it("a stranger's /stop changes nothing, gets a refusal, is logged and audited, and causes no Temporal call", async () => {
    await trading();
    const held = positionsOf(await fx!.waitForPositions(['BTC/USDT', 'ETH/USDT']));
    await startBot();
    const refusal = await ask(STRANGER, '/stop', /Not authorized/);
    assert.match(refusal.text, /Your Telegram user id is 999001/);
    // A group the bot is in: the chat is shared, the sender is still a stranger.
    const group = { id: -100_777, type: 'supergroup' as const };
    let since = api.messagesTo(group.id).length;
    api.sendText(STRANGER, `/emergency@${api.bot.username}`, group);
    await api.waitForMessage(group.id, /Not authorized/, { since });
    // A forged press on an emergency button.
    api.pressButton(STRANGER, { message_id: 1, chat_id: STRANGER, text: 'x', history: [] }, 'em:ok:forged');
    await api.waitFor('the forged button to be refused', () => api.callsOf('answerCallbackQuery').find((c) => c.payload.text === 'Not authorized'));
    await api.waitForAllTaken();

    assert.deepEqual(controlCalls, [], 'no TradingControl (Temporal) call for a stranger');
    assert.deepEqual(await fx!.portfolioSignals(), [], 'no signal or update reached the portfolio');
    assert.deepEqual(await fx!.symbolMessages(), [], 'no signal or update reached a symbol');
    assert.deepEqual(await statuses(), allStatus('active'));
    assert.deepEqual(await openPositions(), held, 'the positions are untouched');
    assert.deepEqual(await fx!.killSwitchCloses(), [], 'the kill switch never ran');
    const rows = await audits('telegram.unauthorized');
    assert.deepEqual(rows.map((r) => [r.payload.userId, r.payload.chatType, r.payload.what, r.actor]), [
      [STRANGER, 'private', '/stop', 'telegram:999001'],
      [STRANGER, 'supergroup', `/emergency@${api.bot.username}`, 'telegram:999001'],
      [STRANGER, 'private', 'button', 'telegram:999001'],
    ]);
    assert.ok(lines.some((l) => /unauthorized Telegram user refused/.test(l) && l.includes('999001')), 'a log line names the stranger');

    // An admin in that same group is obeyed: authorization is by user, not by chat.
    since = api.messagesTo(group.id).length;
    api.sendText(ADMIN, `/status@${api.bot.username}`, group);
    await api.waitForMessage(group.id, /Kill switch: armed/, { since });
    // Chatter in a group and commands for another bot are not attempts.
    api.sendText(STRANGER, 'nice bot', group);
    api.sendText(ADMIN, '/stop@some_other_bot', group);
    await api.waitForAllTaken();
    assert.equal((await audits('telegram.unauthorized')).length, 3);
    assert.deepEqual(await fx!.portfolioSignals(), []);
  });

  it('a flood is rate-limited: one command per 5 s, one "too fast" reply, one Temporal signal', async () => {
    await trading();
    await startBot({ rateLimitMs: 5_000 });
    // A typo first: it reaches nothing, so it does not use up the window.
    await ask(ADMIN, '/stpo', /^Unknown command \/stpo/);
    const since = api.messagesTo(ADMIN).length;
    for (let i = 0; i < 8; i++) api.sendText(ADMIN, '/stop');
    await api.waitForMessage(ADMIN, /All symbols paused/, { since });
    await api.waitForAllTaken();
    await new Promise((r) => setTimeout(r, 300));
    const replies = api.messagesTo(ADMIN).slice(since).map((m) => m.text);
    assert.equal(replies.filter((t) => /^⏳ Too fast: one command per 5 s\. \/stop was ignored; try again in [1-5] s\.$/.test(t)).length, 1, `one rate-limit reply: ${JSON.stringify(replies)}`);
    assert.equal(replies.length, 2, `exactly two replies in all: ${JSON.stringify(replies)}`);
    assert.deepEqual(await fx!.portfolioSignals(), ['portfolioPause'], 'one signal for eight commands');
    assert.deepEqual((await fx!.symbolMessages()).sort(), ['BTC/USDT:pause', 'ETH/USDT:pause', 'XRP/USDT:pause'], 'one pause per symbol, fanned out by the portfolio');
    assert.equal((await audits('telegram.command')).length, 1);
    // Another admin is limited separately.
    await ask(ADMIN_2, '/status', /Kill switch/);
    // Strangers flooding get one refusal per window, and one audit row.
    const s2 = api.messagesTo(STRANGER).length;
    for (let i = 0; i < 5; i++) api.sendText(STRANGER, '/stop');
    await api.waitForAllTaken();
    await api.waitForMessage(STRANGER, /Not authorized/, { since: s2 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(api.messagesTo(STRANGER).length - s2, 1);
    assert.equal((await audits('telegram.unauthorized')).length, 1);
  });

  it('/emergency without confirmation closes nothing; with the button it closes every position, lists them, and a critical alert follows', async () => {
    await trading();
    const held = positionsOf(await fx!.waitForPositions(['BTC/USDT', 'ETH/USDT']));
    assert.deepEqual(Object.keys(held), ['BTC/USDT', 'ETH/USDT'], 'XRP/USDT is flat in its window');
    await startBot();
    const ask1 = await ask(ADMIN, '/emergency', /EMERGENCY CLOSE/);
    const open = (await states()).filter((s) => s.position).map((s) => `${s.symbol} ${num(s.position!.qty)}`);
    assert.match(ask1.text, new RegExp(esc(`Open now: ${open.join(', ')}.`)));
    const code = /send \/emergency (\d{6})/.exec(ask1.text)?.[1];
    assert.ok(code, 'the confirmation offers a code');
    const buttons = ask1.reply_markup?.inline_keyboard?.flat() ?? [];
    assert.deepEqual(buttons.map((b) => b.text), ['🚨 Confirm: close everything', 'Cancel']);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await openPositions(), held, 'asking is not confirming');

    // A wrong code cancels the confirmation; the old button is then dead too.
    const wrong = code === '000000' ? '111111' : '000000';
    await ask(ADMIN, `/emergency ${wrong}`, /Wrong confirmation: nothing was closed/);
    api.pressButton(ADMIN, ask1, buttons[0].callback_data!);
    await api.waitForMessage(ADMIN, /No emergency close is waiting for your confirmation/);
    assert.deepEqual(await openPositions(), held);
    assert.equal(controlCalls.includes('emergency'), false, 'no emergency call was made');

    // In a group of admins, another admin cannot confirm someone else's request.
    const group = { id: -100_888, type: 'supergroup' as const };
    const ask2 = await ask(ADMIN, '/emergency', /EMERGENCY CLOSE/, group);
    const confirm = ask2.reply_markup!.inline_keyboard!.flat()[0].callback_data!;
    api.pressButton(ADMIN_2, ask2, confirm);
    await api.waitForMessage(group.id, /No emergency close is waiting for your confirmation/);
    assert.deepEqual(await openPositions(), held);
    assert.deepEqual(await fx!.killSwitchCloses(), [], 'nothing was closed before the confirmation');
    assert.deepEqual(await fx!.symbolMessages(), [], 'no symbol saw an emergency update before the confirmation');

    const since = api.messagesTo(group.id).length;
    api.pressButton(ADMIN, ask2, confirm);
    const done = await api.waitForMessage(group.id, /Emergency close done/, { since });
    // The reply lists exactly what the portfolio's kill switch closed (its audit row), and that
    // is every position that was open.
    const [close] = await fx!.killSwitchCloses();
    assert.ok(close, 'the portfolio audited the emergency close');
    assert.equal(close.by, 'telegram:424242');
    const closed = close.results.flatMap((r) => r.closed);
    assert.deepEqual(Object.fromEntries(closed.map((c) => [c.symbol, `${c.qty}@${c.entryPrice}`])), held, 'every open position was closed');
    assert.match(done.text, /2 positions closed/);
    for (const line of closedLines(close.results)) assert.ok(done.text.includes(line), `the reply lists ${line}:\n${done.text}`);
    assert.match(done.text, /Already flat: XRP\/USDT/);
    assert.deepEqual(await openPositions(), {}, 'every position is closed');
    assert.deepEqual(await ledger().openPositions(), [], 'the ledger agrees');
    for (const c of closed) {
      const order = await ledger().getOrder(c.clientOrderId);
      assert.equal(order?.status, 'filled', `the emergency exit ${c.clientOrderId} is filled in the ledger`);
    }
    assert.deepEqual(await statuses(), allStatus('halted'));
    assert.deepEqual((await fx!.symbolMessages()).sort(), ['BTC/USDT:emergencyClose', 'ETH/USDT:emergencyClose', 'XRP/USDT:emergencyClose']);
    const confirmation = api.messagesTo(group.id).find((m) => m.message_id === ask2.message_id)!;
    assert.match(confirmation.text, /Confirmed by 424242 \(button\); closing…$/);
    assert.equal(confirmation.reply_markup, undefined, 'the buttons are gone');

    // The portfolio's kill switch raised a critical alert that reached every admin chat.
    for (const chat of [ADMIN, ADMIN_2]) await api.waitForMessage(chat, new RegExp(`^🚨 CRITICAL: Kill switch tripped for ${fx!.account}: /emergency via Telegram .*\\(by telegram:424242\\)`));
    const trail = await audits('telegram.emergency');
    assert.deepEqual(trail.map((r) => r.payload.stage), ['confirmed', 'done']);
    assert.deepEqual(trail[1].payload.closed, ['BTC/USDT', 'ETH/USDT']);
  });

  it('/emergency confirmed by code works; an expired confirmation does nothing', async () => {
    await trading();
    const held = positionsOf(await fx!.waitForPositions(['BTC/USDT', 'ETH/USDT']));
    await startBot({ confirmTtlMs: 400 });
    const first = await ask(ADMIN, '/emergency', /Confirm within/);
    await new Promise((r) => setTimeout(r, 600));
    api.pressButton(ADMIN, first, first.reply_markup!.inline_keyboard![0][0].callback_data!);
    await api.waitForMessage(ADMIN, /That confirmation expired/);
    assert.deepEqual(await openPositions(), held);
    assert.deepEqual(await fx!.killSwitchCloses(), []);

    const second = await ask(ADMIN, '/emergency', /EMERGENCY CLOSE/);
    const code = /send \/emergency (\d{6})/.exec(second.text)![1];
    const done = await ask(ADMIN, `/emergency ${code}`, /Emergency close done/);
    const [close] = await fx!.killSwitchCloses();
    assert.deepEqual(Object.fromEntries(close.results.flatMap((r) => r.closed).map((c) => [c.symbol, `${c.qty}@${c.entryPrice}`])), held);
    for (const line of closedLines(close.results)) assert.ok(done.text.includes(line), `the reply lists ${line}`);
    assert.deepEqual(await openPositions(), {});
    // The code is single-use.
    await ask(ADMIN, `/emergency ${code}`, /No emergency close is waiting/);
    assert.equal((await fx!.killSwitchCloses()).length, 1, 'one emergency close in all');
  });

  it('a kill switch tripped by the portfolio (MAX_DRAWDOWN) closes every position and sends a critical alert to every admin; /resume re-arms it', async () => {
    // ETH/USDT is stopped out at a loss on its third candle; BTC/USDT holds. A 0.01 % limit
    // makes that loss a drawdown breach the next time the portfolio checks.
    await trading({ windows: LOSING_WINDOWS, limits: { maxDrawdown: 0.0001 }, checkEveryMs: 300 });
    await startBot();
    const alert = new RegExp(`^🚨 CRITICAL: Kill switch tripped for ${fx!.account}: drawdown \\d+\\.\\d\\d % reached MAX_DRAWDOWN 0\\.01 % \\(by portfolio\\)`);
    for (const chat of [ADMIN, ADMIN_2]) await api.waitForMessage(chat, alert, { timeoutMs: 30_000 });
    const [loss] = await ledger().trades();
    assert.ok(loss && loss.symbol === 'ETH/USDT' && Number(loss.pnl) < 0, `the breach came from a losing trade: ${JSON.stringify(loss)}`);

    const close = await fx!.waitFor('the kill switch to close the positions', async () => (await fx!.killSwitchCloses())[0]);
    assert.equal(close.by, 'portfolio');
    assert.deepEqual(close.results.flatMap((r) => r.closed).map((c) => c.symbol), ['BTC/USDT'], 'the open BTC position was closed');
    assert.deepEqual(await openPositions(), {});
    assert.deepEqual(await ledger().openPositions(), []);
    assert.deepEqual(await statuses(), { 'BTC/USDT': 'halted', 'ETH/USDT': 'halted' });
    const status = await ask(ADMIN, '/status', /Kill switch/);
    assert.match(status.text, /🛑 Kill switch TRIPPED: drawdown .* \(by portfolio, /);
    assert.match(status.text, /🛑 BTC\/USDT: halted/);
    assert.equal(api.messagesTo(ADMIN).filter((m) => alert.test(m.text)).length, 1, 'one alert, not one per check');

    await ask(ADMIN, '/resume', /All symbols resumed/);
    assert.deepEqual(await statuses(), { 'BTC/USDT': 'active', 'ETH/USDT': 'active' });
    assert.equal((await fx!.control.portfolioState())?.killSwitch.tripped, false, 'the kill switch is re-armed');
  });

  it('/status, /positions, /metrics, /trades, /profit, /balance and /retrain answer from the workflows and the ledger', async () => {
    // ETH/USDT closes a (losing) trade on its third candle while BTC/USDT holds a position.
    await trading({ windows: LOSING_WINDOWS });
    await fx!.waitFor('a closed ETH trade and an open BTC position', async () => {
      const [btc, eth] = await states();
      return btc.position !== null && eth.tradesClosed === 1 && eth.position === null;
    });
    // The portfolio writes an equity snapshot per check (every 2 s here); /balance reads the last one.
    await fx!.waitFor('an equity snapshot of the account', async () => (await ledger().latestEquitySnapshot(fx!.account)) !== null);
    await startBot();
    const [btc, eth] = await states();
    const pos = btc.position!;

    const status = await ask(ADMIN, '/status', /Kill switch/);
    assert.match(status.text, /Kill switch: armed \(not tripped\)/);
    assert.match(status.text, new RegExp(`🟢 BTC/USDT: active · LONG ${esc(num(pos.qty))} @ ${esc(num(pos.entryPrice))} \\(uPnL [+-][\\d,]+\\.\\d\\d\\) · last \\w+ `));
    assert.match(status.text, new RegExp(`🟢 ETH/USDT: active · flat · last \\w+ .* · realized ${esc(signed(eth.realizedPnl))} over 1 trades`));
    assert.match(status.text, /Equity [\d,]+\.\d\d, peak 10,000\.00, drawdown \d+\.\d\d%/);

    const positions = await ask(ADMIN, '/positions', /open positions?:/);
    assert.match(positions.text, /^1 open position:/);
    assert.match(positions.text, new RegExp(`• BTC/USDT: LONG ${esc(num(pos.qty))} @ ${esc(num(pos.entryPrice))} since .* stop ${esc(num(pos.stopPrice!))}, target ${esc(num(pos.targetPrice!))}$`, 'm'));

    const metrics = await ask(ADMIN, '/metrics', /Metrics/);
    assert.match(metrics.text, new RegExp(`Realized PnL: ${esc(signed(eth.realizedPnl))} over 1 closed trade\\b`));
    assert.match(metrics.text, /Unrealized PnL: [+-][\d,]+\.\d\d on 1 open position\b/);
    assert.match(metrics.text, /Win rate: 0\.0% \(0\/1\) \(ledger\)/);

    const [trade] = await ledger().trades();
    assert.equal(trade.symbol, 'ETH/USDT');
    const trades = await ask(ADMIN, '/trades 5', /closed trade/);
    assert.match(trades.text, /^Last 1 closed trade:/);
    assert.ok(
      trades.text.includes(`• ETH/USDT ${num(Number(trade.qty))}: ${trade.entryPrice} -> ${trade.exitPrice}, PnL ${signed(Number(trade.pnl))} (${trade.exitReason}, `),
      `the ledger's trade is listed:\n${trades.text}`,
    );
    const profit = await ask(ADMIN, '/profit', /Profit/);
    assert.match(profit.text, new RegExp(`All time: ${esc(signed(Number(trade.pnl)))} over 1; win rate 0\\.0% \\(0/1\\)`));
    // A snapshot of the test's own is the newest (the portfolio's checks are in the past): its figures come back.
    await ledger().snapshotEquity({ account: fx!.account, equity: '10020', cash: '9500', exposure: '520', peakEquity: '10050', drawdown: '0.0029850746', ts: new Date(Date.now() + 60_000) });
    const balance = await ask(ADMIN, '/balance', /Equity/);
    assert.match(balance.text, /💰 Equity 10,020\.00, cash 9,500\.00, exposure 520\.00 \(snapshot .* UTC\)\nDrawdown 0\.30% from peak 10,050\.00/);
    assert.match(balance.text, /Initial capital 10,000\.00: \+20\.00 \(0\.20%\)/);
    // No retrain schedule exists on this server: /retrain says how to make one and starts nothing (its own test below).
    await ask(ADMIN, '/retrain', /^No retrain schedule "retrain" exists, so nothing was started\. Create it .* `trader schedule retrain --every 7d`/);
    assert.deepEqual(await fx!.portfolioSignals(), [], 'reading changes nothing');
    assert.deepEqual(await fx!.symbolMessages(), []);
  });

  it("/retrain: without a schedule it says how to make one; an admin's confirmed /retrain triggers the schedule `trader schedule retrain` made and names the run it started; never two at once; audited", async () => {
    // The bot alone (no trading workflows needed) with a ledger of its own for the audit rows.
    const db: TestDatabase = await freshDatabase();
    const schedule = env.client.schedule.getHandle(DEFAULT_RETRAIN_SCHEDULE_ID);
    const taken = async () => (await schedule.describe()).info.numActionsTaken;
    try {
      await startBot({ ledger: db.ledger });
      const none = await ask(ADMIN, '/retrain', /No retrain schedule/);
      assert.equal(none.text, 'No retrain schedule "retrain" exists, so nothing was started. Create it where the stack runs with `trader schedule retrain --every 7d` (a training worker runs it: trader up, or trader worker --queue training); then /retrain runs it now.');
      assert.equal(none.reply_markup, undefined, 'nothing to confirm');

      // The schedule exactly as `trader schedule retrain --every 7d` makes it. No training worker
      // polls the queue here: a triggered run stays Running, which is what the test needs.
      await upsertRetrainSchedule(env.client, { everyMs: parseEvery('7d'), input: { data: [] } });
      await ask(STRANGER, '/retrain', /Not authorized/);
      await ask(ADMIN, '/retrain confirm', /^❌ No retrain is waiting for your confirmation: send \/retrain first\.$/);
      await ask(ADMIN, '/retrain now', /^Usage: \/retrain \[confirm\] — the only argument is 'confirm'$/);
      const prompt = await ask(ADMIN, '/retrain', /RETRAIN NOW/);
      assert.match(prompt.text, /runs schedule "retrain" once \(every 1w, next run \d{4}-\d\d-\d\d \d\d:\d\d UTC\)/);
      assert.match(prompt.text, /It has not run yet\.\nConfirm within 60 s: press the button, or send \/retrain confirm$/);
      assert.deepEqual(prompt.reply_markup?.inline_keyboard?.flat().map((b) => b.text), ['🧠 Confirm: retrain now', 'Cancel']);
      // Another admin's confirmation is not the asker's.
      await ask(ADMIN_2, '/retrain confirm', /No retrain is waiting for your confirmation/);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await taken(), 0, 'asking is not confirming; nothing started for a stranger or another admin');

      const started = await ask(ADMIN, '/retrain confirm', /Retrain started/);
      const first = /^🧠 Retrain started: workflow (\S+) \(schedule "retrain"\)\.$/m.exec(started.text)?.[1];
      assert.ok(first, `the reply names the run:\n${started.text}`);
      let d = await schedule.describe();
      assert.equal(d.info.numActionsTaken, 1, 'one run started');
      assert.equal(d.info.recentActions.at(-1)?.action.workflow.workflowId, first, 'the run named is the one the schedule started');
      const wf = await env.client.workflow.getHandle(first).describe();
      assert.equal(wf.type, RETRAIN_WORKFLOW_TYPE);
      assert.equal(wf.taskQueue, TRAINING_TASK_QUEUE);
      assert.equal(wf.status.name, 'RUNNING');
      assert.equal(wf.runId, d.info.recentActions.at(-1)?.action.workflow.firstExecutionRunId);
      const used = api.messagesTo(ADMIN).find((m) => m.message_id === prompt.message_id)!;
      assert.match(used.text, /✅ Confirmed by 424242 \(command\); starting…$/);
      assert.equal(used.reply_markup, undefined, 'the buttons are gone');

      // One retrain at a time: a second /retrain names the running one and asks for nothing.
      const busy = await ask(ADMIN, '/retrain', /already running/);
      assert.equal(busy.text, `🧠 A retrain is already running: ${first}. Nothing new was started (one retrain at a time).`);
      assert.equal(busy.reply_markup, undefined);
      assert.equal(await taken(), 1);
      // And the control function, called directly, refuses to double it too.
      assert.deepEqual(await triggerRetrainNow(env.client), { outcome: 'already-running', scheduleId: 'retrain', workflowId: first });
      assert.equal(await taken(), 1);

      await env.client.workflow.getHandle(first).terminate('test: make room for the next run');
      for (let i = 0; i < 50 && (await schedule.describe()).info.runningActions.length > 0; i++) await new Promise((r) => setTimeout(r, 100));

      // The Cancel button starts nothing and kills the prompt.
      const toCancel = await ask(ADMIN, '/retrain', /RETRAIN NOW/);
      assert.match(toCancel.text, new RegExp(`Last run: ${esc(first)} \\(`));
      const [confirmButton, cancelButton] = toCancel.reply_markup!.inline_keyboard!.flat().map((b) => b.callback_data!);
      api.pressButton(ADMIN, toCancel, cancelButton);
      await api.waitFor('the prompt to say cancelled', () => api.messagesTo(ADMIN).find((m) => m.message_id === toCancel.message_id && /Cancelled: no retrain was started\.$/.test(m.text)));
      api.pressButton(ADMIN, toCancel, confirmButton);
      await api.waitForMessage(ADMIN, /^❌ No retrain is waiting for your confirmation/);
      assert.equal(await taken(), 1, 'cancelled is not started');

      // The Confirm button, on a paused schedule: pausing stops the timetable, not an operator.
      await schedule.pause('test');
      const byButton = await ask(ADMIN, '/retrain', /RETRAIN NOW/);
      assert.match(byButton.text, /runs schedule "retrain" once \(paused\)/);
      const since = api.messagesTo(ADMIN).length;
      api.pressButton(ADMIN, byButton, byButton.reply_markup!.inline_keyboard![0][0].callback_data!);
      const second = await api.waitForMessage(ADMIN, /Retrain started/, { since });
      const secondId = /workflow (\S+) \(schedule "retrain", which stays paused\)/.exec(second.text)?.[1];
      assert.ok(secondId, second.text);
      d = await schedule.describe();
      assert.equal(d.info.numActionsTaken, 2);
      assert.equal(d.info.recentActions.at(-1)?.action.workflow.workflowId, secondId);
      assert.equal(d.state.paused, true, 'still paused');
      assert.equal((await env.client.workflow.getHandle(secondId).describe()).type, RETRAIN_WORKFLOW_TYPE);

      // Audited like every command, and the trigger's outcome on its own row.
      // A command's row is written after its reply: wait for the last, and compare in a fixed order.
      let rows = await db.ledger.auditTrail({ event: 'telegram.command' });
      for (let i = 0; i < 50 && rows.length < 8; i++) {
        await new Promise((r) => setTimeout(r, 100));
        rows = await db.ledger.auditTrail({ event: 'telegram.command' });
      }
      assert.deepEqual(rows.map((r) => [r.actor, r.payload.command, (r.payload.args as string[]).join(' '), r.payload.outcome].join(' | ')).sort(), [
        ...Array(5).fill('telegram:424242 | retrain |  | ok'),
        ...Array(2).fill('telegram:424242 | retrain | confirm | ok'),
        'telegram:515151 | retrain | confirm | ok',
      ], 'the bad-argument /retrain reached nothing and is not a command row; the stranger is on telegram.unauthorized');
      const retrains = await db.ledger.auditTrail({ event: 'telegram.retrain' });
      assert.deepEqual(retrains.map((r) => [r.payload.how, r.payload.stage, r.payload.workflowId ?? null]), [
        ['command', 'started', first],
        ['button', 'cancelled', null],
        ['button', 'started', secondId],
      ]);
      assert.deepEqual((await db.ledger.auditTrail({ event: 'telegram.unauthorized' })).map((r) => r.payload.what), ['/retrain']);
    } finally {
      const d = await schedule.describe().catch(() => null);
      for (const a of d?.info.runningActions ?? []) await env.client.workflow.getHandle(a.workflow.workflowId).terminate('test over').catch(() => undefined);
      await schedule.delete().catch(() => undefined);
      await db.drop();
    }
  });

  it('control/retrain: a schedule of that id that starts something else is not triggered', async () => {
    const scheduleId = `not-retrain-${process.pid}`;
    await env.client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: '7d' }] },
      action: { type: 'startWorkflow', workflowType: 'symbolTraderWorkflow', taskQueue: 'nowhere', args: [] },
    });
    try {
      await assert.rejects(triggerRetrainNow(env.client, { scheduleId }), (err: unknown) => err instanceof NotARetrainSchedule && /starts symbolTraderWorkflow, not retrainWorkflow: nothing was triggered/.test(err.message));
      assert.equal((await env.client.schedule.getHandle(scheduleId).describe()).info.numActionsTaken, 0);
      assert.deepEqual(await triggerRetrainNow(env.client, { scheduleId: `missing-${process.pid}` }), { outcome: 'no-schedule', scheduleId: `missing-${process.pid}` });
    } finally {
      await env.client.schedule.getHandle(scheduleId).delete();
    }
  });

  it('a command sent while the bot was offline is not executed', async () => {
    await startBot();
    const since = api.messagesTo(ADMIN).length;
    api.sendText(ADMIN, '/stop', undefined, { date: Math.floor(Date.now() / 1000) - 600 });
    await api.waitForMessage(ADMIN, /^Ignored \/stop sent at .*: the bot was offline then/, { since });
    assert.deepEqual(controlCalls, [], 'no Temporal call');
  });

  it('stop() ends long polling and the bot takes no more updates', async () => {
    const b = await startBot();
    await b.stop();
    await b.done;
    bot = undefined;
    const polls = api.calls.length;
    api.sendText(ADMIN, '/stop');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(api.pendingUpdates, 1, 'the update stays unconfirmed');
    assert.equal(api.calls.length, polls, 'no call after stop');
  });
});
