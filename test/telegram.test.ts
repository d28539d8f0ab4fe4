import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Telegram } from 'telegraf';
import { AlertDispatcher, telegramAlertSink } from '../activities/alerts';
import type { TradingControl } from '../client/control';
import { parseConfig } from '../infra/config';
import { createLogger } from '../infra/logger';
import { CommandRateLimiter, startTelegramBot, type TelegramBot, type TelegramBotOptions } from '../workers/telegram';
import { BotApiStandin, type BotMessage } from './helpers/bot-api-standin';
import { freshDatabase, type TestDatabase } from './helpers/db';
import { devServerEnv } from './helpers/temporal';
import { startTradingFixture, type TradingFixture } from './workflows/trading-fixture';

/**
 * End to end: the REAL telegraf bot long-polls a local Bot API stand-in; its commands reach
 * running trading workflows on a real Temporal dev server through TradingControl; audit rows
 * land in a real PostgreSQL ledger. The workflows are the test double of
 * test/workflows/trading-double.ts unless TRADING_FIXTURE=real.
 */

const TOKEN = '123456789:TELEGRAM_e2e_test_token_abcdefgh';
const ADMIN = 424_242;
const ADMIN_2 = 515_151;
const STRANGER = 999_001;
const SYMBOLS = ['BTC/USDT', 'ETH/USDT', 'SOL/USDT'];

describe('CommandRateLimiter (pure)', () => {
  it('allows one command per window per user, tells once, and counts the rest', () => {
    const rl = new CommandRateLimiter(5_000);
    assert.deepEqual(rl.check(1, 0), { allowed: true, suppressed: 0 });
    assert.deepEqual(rl.check(1, 1_000), { allowed: false, retryInMs: 4_000, tell: true });
    assert.deepEqual(rl.check(1, 2_000), { allowed: false, retryInMs: 3_000, tell: false });
    assert.deepEqual(rl.check(2, 2_000), { allowed: true, suppressed: 0 }, 'users are limited separately');
    assert.deepEqual(rl.check(1, 5_000), { allowed: true, suppressed: 2 });
  });
});

describe('Telegram kill switch end to end (real telegraf, Bot API stand-in, Temporal dev server, PostgreSQL)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let api: BotApiStandin;
  let db: TestDatabase;
  let fx: TradingFixture;
  let alerts: AlertDispatcher;
  let bot: TelegramBot | undefined;
  const controlCalls: string[] = [];
  const lines: string[] = [];
  const log = createLogger({ level: 'info', name: 'test', destination: { write: (l: string) => void lines.push(l) } });

  before(async () => {
    env = await devServerEnv();
  });
  after(async () => {
    await env?.teardown();
  });

  beforeEach(async () => {
    lines.length = 0;
    controlCalls.length = 0;
    api = await BotApiStandin.start({ token: TOKEN });
    db = await freshDatabase();
    alerts = new AlertDispatcher({
      log,
      sink: telegramAlertSink(new Telegram(TOKEN, { apiRoot: api.apiRoot })),
      adminIds: [ADMIN, ADMIN_2],
      queue: { sendIntervalMs: 10 },
    });
    fx = await startTradingFixture(env, {
      alerts,
      symbols: [
        { symbol: 'BTC/USDT', position: { qty: 0.01, entryPrice: 50_000, markPrice: 51_000 } },
        { symbol: 'ETH/USDT', position: { qty: 0.5, entryPrice: 3_000, markPrice: 2_900 } },
        { symbol: 'SOL/USDT' },
      ],
    });
  });
  afterEach(async () => {
    await bot?.stop();
    bot = undefined;
    await alerts.stop();
    await fx.stop();
    await api.stop();
    await db.drop();
  });

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

  const startBot = async (opts: Partial<TelegramBotOptions> = {}) => {
    const cfg = parseConfig({
      TELEGRAM_BOT_TOKEN: TOKEN,
      TELEGRAM_ADMIN_IDS: `${ADMIN},${ADMIN_2}`,
      TELEGRAM_API_ROOT: api.apiRoot,
      SYMBOLS: SYMBOLS.join(','),
    });
    bot = await startTelegramBot({ cfg, control: counted(fx.control), log, ledger: db.ledger, alerts, rateLimitMs: 0, confirmStatusMs: 10_000, ...opts });
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

  const statuses = async () => Object.fromEntries(await Promise.all(SYMBOLS.map(async (s) => [s, (await fx.state(s)).tradingStatus])));
  const openPositions = async () => (await Promise.all(SYMBOLS.map((s) => fx.state(s)))).filter((s) => s.position).map((s) => s.symbol);
  const audits = (event: string) => db.ledger.auditTrail({ event });

  it('starts against the configured API root, registers its command menu and answers /help', async () => {
    const b = await startBot();
    assert.equal(b.username, api.bot.username);
    const menu = api.callsOf('setMyCommands')[0]?.payload.commands as { command: string }[];
    assert.deepEqual(
      menu.map((c) => c.command),
      ['start', 'help', 'status', 'stop', 'resume', 'reduceonly', 'positions', 'metrics', 'trades', 'profit', 'balance', 'retrain', 'emergency'],
    );
    const help = await ask(ADMIN, '/help', /kill switch/);
    assert.match(help.text, /\/emergency — close EVERY position/);
    assert.match(help.text, /You are admin 424242/);
  });

  it("an admin's /stop pauses every symbol (checked by query) and /resume resumes them", async () => {
    await startBot();
    const stop = await ask(ADMIN, '/stop', /All symbols paused/);
    assert.match(stop.text, /BTC\/USDT, ETH\/USDT, SOL\/USDT confirmed/);
    assert.match(stop.text, /protective|stop-loss and take-profit exits keep working/);
    assert.deepEqual(await statuses(), { 'BTC/USDT': 'paused', 'ETH/USDT': 'paused', 'SOL/USDT': 'paused' });
    assert.match((await fx.state('ETH/USDT')).statusReason ?? '', /by telegram:424242/, 'the workflow knows who stopped it');

    await ask(ADMIN, '/resume', /All symbols resumed/);
    assert.deepEqual(await statuses(), { 'BTC/USDT': 'active', 'ETH/USDT': 'active', 'SOL/USDT': 'active' });

    const one = await ask(ADMIN, '/stop ethusdt', /ETH\/USDT paused/);
    assert.doesNotMatch(one.text, /All symbols/);
    assert.deepEqual(await statuses(), { 'BTC/USDT': 'active', 'ETH/USDT': 'paused', 'SOL/USDT': 'active' });

    await ask(ADMIN, '/reduceonly BTC/USDT', /BTC\/USDT set to reduce-only/);
    assert.equal((await fx.state('BTC/USDT')).tradingStatus, 'reduce-only');
    const rows = await audits('telegram.command');
    assert.deepEqual(rows.map((r) => [r.payload.command, r.payload.outcome, r.actor]), [
      ['stop', 'ok', 'telegram:424242'],
      ['resume', 'ok', 'telegram:424242'],
      ['stop', 'ok', 'telegram:424242'],
      ['reduceonly', 'ok', 'telegram:424242'],
    ]);
  });

  it('an unknown symbol or bad arguments get a helpful reply and change nothing', async () => {
    await startBot();
    const unknown = await ask(ADMIN, '/stop DOGE/USDT', /Unknown symbol/);
    assert.equal(unknown.text, 'Unknown symbol DOGE/USDT. Known symbols: BTC/USDT, ETH/USDT, SOL/USDT. Example: /stop BTC/USDT');
    await ask(ADMIN, '/stop BTC/USDT ETH/USDT', /^Usage: \/stop \[SYMBOL\] — takes at most one symbol$/);
    await ask(ADMIN, '/resume $$$', /^Usage: \/resume \[SYMBOL\] — expected a symbol such as BTC\/USDT$/);
    await ask(ADMIN, '/trades many', /^Usage: \/trades \[N\] — expected a number of trades$/);
    await ask(ADMIN, '/trades 500', /^Usage: \/trades \[N\] — at most 50$/);
    await ask(ADMIN, '/launch', /^Unknown command \/launch\. Send \/help/);
    await ask(ADMIN, 'hello', /^Send \/help for the commands\.$/);
    assert.deepEqual(await fx.portfolioSignals(), [], 'nothing reached the portfolio');
    assert.deepEqual(await statuses(), { 'BTC/USDT': 'active', 'ETH/USDT': 'active', 'SOL/USDT': 'active' });
  });

  it("a stranger's /stop changes nothing, gets a refusal, is logged and audited, and causes no Temporal call", async () => {
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
    assert.deepEqual(await fx.portfolioSignals(), []);
    assert.deepEqual(await statuses(), { 'BTC/USDT': 'active', 'ETH/USDT': 'active', 'SOL/USDT': 'active' });
    assert.deepEqual(await openPositions(), ['BTC/USDT', 'ETH/USDT']);
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
    assert.deepEqual(await fx.portfolioSignals(), []);
  });

  it('a flood is rate-limited: one command per 5 s, one "too fast" reply, one Temporal signal', async () => {
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
    assert.deepEqual(await fx.portfolioSignals(), ['portfolioPause'], 'one signal for eight commands');
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
    await startBot();
    const ask1 = await ask(ADMIN, '/emergency', /EMERGENCY CLOSE/);
    assert.match(ask1.text, /Open now: BTC\/USDT 0\.01, ETH\/USDT 0\.5\./);
    const code = /send \/emergency (\d{6})/.exec(ask1.text)?.[1];
    assert.ok(code, 'the confirmation offers a code');
    const buttons = ask1.reply_markup?.inline_keyboard?.flat() ?? [];
    assert.deepEqual(buttons.map((b) => b.text), ['🚨 Confirm: close everything', 'Cancel']);
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(await openPositions(), ['BTC/USDT', 'ETH/USDT'], 'asking is not confirming');

    // A wrong code cancels the confirmation; the old button is then dead too.
    const wrong = code === '000000' ? '111111' : '000000';
    await ask(ADMIN, `/emergency ${wrong}`, /Wrong confirmation: nothing was closed/);
    api.pressButton(ADMIN, ask1, buttons[0].callback_data!);
    await api.waitForMessage(ADMIN, /No emergency close is waiting for your confirmation/);
    assert.deepEqual(await openPositions(), ['BTC/USDT', 'ETH/USDT']);
    assert.equal(controlCalls.includes('emergency'), false, 'no emergency call was made');

    // In a group of admins, another admin cannot confirm someone else's request.
    const group = { id: -100_888, type: 'supergroup' as const };
    const ask2 = await ask(ADMIN, '/emergency', /EMERGENCY CLOSE/, group);
    const confirm = ask2.reply_markup!.inline_keyboard!.flat()[0].callback_data!;
    api.pressButton(ADMIN_2, ask2, confirm);
    await api.waitForMessage(group.id, /No emergency close is waiting for your confirmation/);
    assert.deepEqual(await openPositions(), ['BTC/USDT', 'ETH/USDT']);

    const since = api.messagesTo(group.id).length;
    api.pressButton(ADMIN, ask2, confirm);
    const done = await api.waitForMessage(group.id, /Emergency close done/, { since });
    assert.match(done.text, /2 positions closed/);
    assert.match(done.text, /• BTC\/USDT: sold 0\.01 @ 51000 \(entry 50000\), PnL \+10\.00/);
    assert.match(done.text, /• ETH\/USDT: sold 0\.5 @ 2900 \(entry 3000\), PnL -50\.00/);
    assert.match(done.text, /Already flat: SOL\/USDT/);
    assert.deepEqual(await openPositions(), [], 'every position is closed');
    assert.deepEqual(await statuses(), { 'BTC/USDT': 'halted', 'ETH/USDT': 'halted', 'SOL/USDT': 'halted' });
    const confirmation = api.messagesTo(group.id).find((m) => m.message_id === ask2.message_id)!;
    assert.match(confirmation.text, /Confirmed by 424242 \(button\); closing…$/);
    assert.equal(confirmation.reply_markup, undefined, 'the buttons are gone');

    // The portfolio's kill switch raised a critical alert that reached every admin chat.
    for (const chat of [ADMIN, ADMIN_2]) await api.waitForMessage(chat, /^🚨 CRITICAL: Kill switch tripped for /);
    const trail = await audits('telegram.emergency');
    assert.deepEqual(trail.map((r) => r.payload.stage), ['confirmed', 'done']);
    assert.deepEqual(trail[1].payload.closed, ['BTC/USDT', 'ETH/USDT']);
  });

  it('/emergency confirmed by code works; an expired confirmation does nothing', async () => {
    await startBot({ confirmTtlMs: 400 });
    const first = await ask(ADMIN, '/emergency', /Confirm within 0 s|Confirm within/);
    await new Promise((r) => setTimeout(r, 600));
    api.pressButton(ADMIN, first, first.reply_markup!.inline_keyboard![0][0].callback_data!);
    await api.waitForMessage(ADMIN, /That confirmation expired/);
    assert.deepEqual(await openPositions(), ['BTC/USDT', 'ETH/USDT']);

    const second = await ask(ADMIN, '/emergency', /EMERGENCY CLOSE/);
    const code = /send \/emergency (\d{6})/.exec(second.text)![1];
    const done = await ask(ADMIN, `/emergency ${code}`, /Emergency close done/);
    assert.match(done.text, /2 positions closed/);
    assert.deepEqual(await openPositions(), []);
    // The code is single-use.
    await ask(ADMIN, `/emergency ${code}`, /No emergency close is waiting/);
  });

  it('/status, /positions, /metrics, /trades, /profit, /balance and /retrain answer from the workflows and the ledger', async () => {
    // One closed round trip and an equity snapshot in the ledger.
    const l = db.ledger;
    await l.recordOrderIntent({ clientOrderId: 'seed-buy', exchange: 'binance', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: '0.01' });
    await l.recordFill({ clientOrderId: 'seed-buy', fillId: 'f1', qty: '0.01', price: '40000', fee: '0', ts: new Date(Date.now() - 3_600_000) });
    await l.recordOrderIntent({ clientOrderId: 'seed-sell', exchange: 'binance', symbol: 'BTC/USDT', side: 'sell', type: 'market', qty: '0.01', reason: 'take_profit' });
    await l.recordFill({ clientOrderId: 'seed-sell', fillId: 'f2', qty: '0.01', price: '42000', fee: '0', ts: new Date(Date.now() - 60_000) });
    await l.snapshotEquity({ equity: '10020', cash: '9500', ts: new Date(Date.now() - 30_000) });
    await startBot();

    const status = await ask(ADMIN, '/status', /Kill switch/);
    assert.match(status.text, /🟢 BTC\/USDT: active · LONG 0\.01 @ 50000 \(uPnL \+10\.00\)/);
    assert.match(status.text, /🟢 SOL\/USDT: active · flat/);
    assert.match(status.text, /Equity 10,000\.00, peak 10,000\.00, drawdown 0\.00%/);

    const positions = await ask(ADMIN, '/positions', /open positions?:/);
    assert.match(positions.text, /^2 open positions:/);
    assert.match(positions.text, /• ETH\/USDT: LONG 0\.5 @ 3000 .* uPnL -50\.00; stop 2940, target 3120/);

    const metrics = await ask(ADMIN, '/metrics', /Metrics/);
    assert.match(metrics.text, /Unrealized PnL: -40\.00 on 2 open positions/);
    assert.match(metrics.text, /Exposure: 1,960\.00 \(19\.60% of equity 10,000\.00\)/);
    assert.match(metrics.text, /Win rate: 100\.0% \(1\/1\) \(ledger\)/);

    const trades = await ask(ADMIN, '/trades 5', /closed trade/);
    assert.match(trades.text, /• BTC\/USDT 0\.01: 40000 -> 42000, PnL \+20\.00/);
    const profit = await ask(ADMIN, '/profit', /Profit/);
    assert.match(profit.text, /All time: \+20\.00 over 1; win rate 100\.0% \(1\/1\)/);
    const balance = await ask(ADMIN, '/balance', /Equity/);
    assert.match(balance.text, /💰 Equity 10,020\.00, cash 9,500\.00/);
    assert.match(balance.text, /Initial capital 10,000\.00: \+20\.00 \(0\.20%\)/);
    await ask(ADMIN, '/retrain', /^Retraining is not available yet/);
    assert.deepEqual(await fx.portfolioSignals(), [], 'reading changes nothing');
  });

  it('a command sent while the bot was offline is not executed', async () => {
    await startBot();
    const since = api.messagesTo(ADMIN).length;
    api.sendText(ADMIN, '/stop', undefined, { date: Math.floor(Date.now() / 1000) - 600 });
    await api.waitForMessage(ADMIN, /^Ignored \/stop sent at .*: the bot was offline then/, { since });
    assert.deepEqual(await fx.portfolioSignals(), []);
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
