import crypto from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { Markup, Telegraf, type Context } from 'telegraf';
import { z } from 'zod';
import type { AppConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import type { Ledger } from '../ledger/ledger';
import type { Trade } from '../ledger/types';
import { telegramAlertSink, type AlertDispatcher } from '../activities/alerts';
import { TELEGRAM_TEXT_LIMIT } from '../lib/alerts';
import {
  EmergencyCloseIncomplete,
  EmergencyCloseTimeout,
  TARGET_STATUS,
  TradingControl,
  UnknownSymbolError,
  type StatusAction,
  type TradingStatusReport,
} from '../control/trading-control';
import type { EmergencyCloseResult, MessageOrigin, TradingStatus } from '../lib/contracts/trading';

/**
 * The Telegram kill switch: a telegraf bot (long polling; the Bot API root is configurable, so
 * it runs against a self-hosted Bot API server or a test stand-in) whose commands are Temporal
 * client calls through TradingControl.
 *
 * Who may command: Telegram user ids in TELEGRAM_ADMIN_IDS, checked on `from.id` of every
 * message and button press, never on the chat id (a group must not hand control to its
 * members). Anyone else gets a refusal, a log line and an audit row, and causes no Temporal call.
 *
 * Rate limit: one command per user per 5 s, kept in a Map of user id -> last accepted time (a
 * dozen lines; no limiter package is installed and none is needed for one fixed window). A
 * limited user is told once per window; further messages in it are ignored silently, so a
 * flood cannot make the bot flood Telegram back. Emergency confirmations are exempt (they are
 * one-time codes; a wrong one cancels the confirmation), and so are typos: an unknown command or
 * bad arguments reach nothing, so they cost no window (their answers are limited separately).
 *
 * Updates are handled detached from telegraf's polling loop (telegraf awaits every handler of a
 * batch before it polls again): a slow /status must never delay a /stop sent after it.
 */

export interface TelegramBotOptions {
  cfg: AppConfig;
  control: TradingControl;
  log: Logger;
  /** For audit rows and /trades, /profit, /balance, /metrics' win rate; optional. */
  ledger?: Ledger;
  /** The process's alert dispatcher: shown in /metrics; given the bot's client if it has none. */
  alerts?: AlertDispatcher;
  /** Per-user minimum interval between commands (default 5000 ms; 0 disables). */
  rateLimitMs?: number;
  /** How long an /emergency confirmation stays valid (default 60 s). */
  confirmTtlMs?: number;
  /** Commands older than this (sent while the bot was offline) are not executed (default 120 s). */
  staleAfterMs?: number;
  /** How long /stop, /resume, /reduceonly wait to see the new status by query (default 5 s). */
  confirmStatusMs?: number;
  now?: () => number;
}

export interface TelegramBot {
  readonly username: string;
  /** Settles when polling ends (stop(), or a fatal polling error such as a second bot on the token). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

// --- arguments ------------------------------------------------------------------------------

const SymbolArg = z.string().regex(/^[A-Za-z0-9]{1,20}([/:_-][A-Za-z0-9]{1,20}){0,2}$/, 'expected a symbol such as BTC/USDT');
const NoArgs = z.array(z.string()).max(0, 'takes no arguments');
const OptionalSymbol = z
  .array(SymbolArg)
  .max(1, 'takes at most one symbol')
  .transform((a) => a[0] as string | undefined);
const TradesCount = z
  .array(z.string().regex(/^\d+$/, 'expected a number of trades').transform(Number).pipe(z.number().int().min(1, 'at least 1').max(50, 'at most 50')))
  .max(1, 'takes at most one number')
  .transform((a) => a[0] ?? 10);
const ConfirmCode = z
  .array(z.string().regex(/^\d{6}$/, 'the confirmation code has 6 digits'))
  .max(1, 'takes at most the confirmation code')
  .transform((a) => a[0] as string | undefined);

// --- the rate limiter -----------------------------------------------------------------------

export class CommandRateLimiter {
  private readonly last = new Map<number, { at: number; told: boolean; suppressed: number }>();
  constructor(readonly intervalMs: number) {}

  /** `tell`: first refusal in this window (answer it); `suppressed`: refused since the last accepted one. */
  check(userId: number, now: number): { allowed: true; suppressed: number } | { allowed: false; retryInMs: number; tell: boolean } {
    if (this.last.size > 10_000) {
      for (const [id, e] of this.last) if (now - e.at >= this.intervalMs) this.last.delete(id);
    }
    const e = this.last.get(userId);
    if (!e || now - e.at >= this.intervalMs) {
      this.last.set(userId, { at: now, told: false, suppressed: 0 });
      return { allowed: true, suppressed: e?.suppressed ?? 0 };
    }
    const tell = !e.told;
    e.told = true;
    e.suppressed += 1;
    return { allowed: false, retryInMs: this.intervalMs - (now - e.at), tell };
  }
}

// --- formatting -----------------------------------------------------------------------------

const STATUS_ICON: Record<TradingStatus, string> = { active: '🟢', paused: '⏸', 'reduce-only': '🟡', halted: '🛑' };
const num = (x: number, digits = 8) => String(Number(x.toFixed(digits)));
const money = (x: number) => x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
const signed = (x: number) => `${x >= 0 ? '+' : ''}${money(x)}`;
const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
const utc = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';

const ACTION_WORDS: Record<StatusAction, { done: string; icon: string; note: string }> = {
  pause: { done: 'paused', icon: '⏸', note: 'No new entries; stop-loss and take-profit exits keep working. /resume to undo.' },
  resume: { done: 'resumed', icon: '▶️', note: 'New entries allowed again.' },
  reduceOnly: { done: 'set to reduce-only', icon: '🟡', note: 'Only exits from now on; open positions may be closed, never increased. /resume to undo.' },
};

function formatStatus(r: TradingStatusReport, cfg: AppConfig): string {
  const lines = [`durable-trader · ${r.exchange} · ${cfg.mode} · account ${r.account}`];
  if (r.portfolio) {
    const k = r.portfolio.killSwitch;
    lines.push(k.tripped ? `🛑 Kill switch TRIPPED${k.reason ? `: ${k.reason}` : ''}${k.by ? ` (by ${k.by}${k.at ? `, ${utc(k.at)}` : ''})` : ''}` : 'Kill switch: armed (not tripped)');
    if (r.portfolio.equity !== null) {
      lines.push(`Equity ${money(r.portfolio.equity)}${r.portfolio.peakEquity !== null ? `, peak ${money(r.portfolio.peakEquity)}` : ''}${r.portfolio.drawdown !== null ? `, drawdown ${pct(r.portfolio.drawdown)}` : ''}`);
    }
  } else {
    lines.push(`⚠️ Portfolio: ${r.portfolioError ?? 'not running'} (commands go to each symbol directly)`);
  }
  lines.push('');
  if (r.symbols.length === 0 && r.unreachable.length === 0) lines.push('No symbol workflow is running.');
  for (const s of r.symbols) {
    const pos = s.position
      ? `LONG ${num(s.position.qty)} @ ${num(s.position.entryPrice)}${s.position.unrealizedPnl !== null ? ` (uPnL ${signed(s.position.unrealizedPnl)})` : ''}`
      : 'flat';
    const last = s.lastDecision ? `last ${s.lastDecision.action} (${s.lastDecision.reason}) ${utc(s.lastDecision.candleTime)}` : 'no decision yet';
    lines.push(`${STATUS_ICON[s.tradingStatus]} ${s.symbol}: ${s.tradingStatus}${s.statusReason ? ` (${s.statusReason})` : ''} · ${pos} · ${last} · realized ${signed(s.realizedPnl)} over ${s.tradesClosed} trades`);
  }
  for (const u of r.unreachable) lines.push(`❓ ${u.symbol}: not answering (${u.error})`);
  const running = new Set([...r.symbols.map((s) => s.symbol), ...r.unreachable.map((u) => u.symbol)]);
  const idle = (r.portfolio?.symbols ?? []).filter((s) => !running.has(s));
  if (idle.length > 0) lines.push(`Not running: ${idle.map((s) => `${s} (requested ${r.portfolio!.requestedStatus[s] ?? '?'})`).join(', ')}`);
  return lines.join('\n');
}

function formatEmergency(results: EmergencyCloseResult[], failures: { symbol: string; error: string }[] = []): string {
  const closed = results.flatMap((r) => r.closed);
  const lines = [
    closed.length > 0
      ? `🛑 Emergency close done: ${closed.length} position${closed.length === 1 ? '' : 's'} closed.`
      : '🛑 Emergency close done: there was no open position to close.',
  ];
  for (const c of closed) lines.push(`• ${c.symbol}: sold ${num(c.qty)} @ ${num(c.exitPrice)} (entry ${num(c.entryPrice)}), PnL ${signed(c.pnl)} [${c.clientOrderId}]`);
  const flat = results.filter((r) => r.closed.length === 0 && !(r as { error?: string }).error).map((r) => r.symbol);
  if (flat.length > 0) lines.push(`Already flat: ${flat.join(', ')}`);
  const canceled = results.reduce((a, r) => a + r.canceledOrders, 0);
  if (canceled > 0) lines.push(`Working orders canceled: ${canceled}`);
  const errors = [...failures, ...results.flatMap((r) => ((r as { error?: string }).error ? [{ symbol: r.symbol, error: (r as { error?: string }).error! }] : []))];
  for (const f of errors) lines.push(`⚠️ ${f.symbol}: NOT closed (${f.error}) — check it now`);
  lines.push(`Status: ${results.map((r) => `${r.symbol} ${r.tradingStatus}`).join(', ') || 'no symbol answered'}. /resume to trade again.`);
  return lines.join('\n');
}

function winRate(trades: Trade[]): string {
  if (trades.length === 0) return 'no closed trades';
  const wins = trades.filter((t) => Number(t.pnl) > 0).length;
  return `${((wins / trades.length) * 100).toFixed(1)}% (${wins}/${trades.length})`;
}

/** Splits at line breaks into messages Telegram accepts. */
function chunks(text: string, limit = TELEGRAM_TEXT_LIMIT): string[] {
  const out: string[] = [];
  let cur = '';
  for (const line of text.split('\n')) {
    const piece = line.length > limit ? line.slice(0, limit - 1) + '…' : line;
    if (cur && cur.length + 1 + piece.length > limit) {
      out.push(cur);
      cur = piece;
    } else cur = cur ? `${cur}\n${piece}` : piece;
  }
  if (cur || out.length === 0) out.push(cur || '(empty)');
  return out;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// --- the bot --------------------------------------------------------------------------------

interface Caller {
  id: number;
  username?: string;
  chatId: number;
  chatType: string;
}

interface CommandRun {
  ctx: Context;
  caller: Caller;
  origin: MessageOrigin;
  reply(text: string): Promise<void>;
}

interface CommandSpec<A = unknown> {
  usage: string;
  description: string;
  args: z.ZodType<A, string[]>;
  /** Audited as `telegram.command` (state changes and emergency requests). */
  audited?: boolean;
  run(c: CommandRun, args: A): Promise<void>;
}

interface PendingEmergency {
  nonce: string;
  code: string;
  expiresAt: number;
  chatId: number;
  messageId?: number;
  text: string;
}

const cmd = <A>(spec: CommandSpec<A>): CommandSpec => spec as CommandSpec;

export async function startTelegramBot(opts: TelegramBotOptions): Promise<TelegramBot> {
  const tcfg = opts.cfg.telegram;
  if (!tcfg) throw new Error('the Telegram bot needs TELEGRAM_BOT_TOKEN and TELEGRAM_ADMIN_IDS');
  if (tcfg.adminIds.length === 0) throw new Error('TELEGRAM_ADMIN_IDS is empty: nobody could command the bot');
  const { control, ledger, alerts, cfg } = opts;
  const log = opts.log.child({ component: 'telegram' });
  const now = opts.now ?? Date.now;
  const admins = new Set(tcfg.adminIds);
  const confirmTtlMs = opts.confirmTtlMs ?? 60_000;
  const staleAfterMs = opts.staleAfterMs ?? 120_000;
  const confirmStatusMs = opts.confirmStatusMs ?? 5_000;
  const commandLimiter = new CommandRateLimiter(opts.rateLimitMs ?? 5_000);
  const strangerLimiter = new CommandRateLimiter(opts.rateLimitMs ?? 5_000);
  const hintLimiter = new CommandRateLimiter(opts.rateLimitMs ?? 5_000);
  const pending = new Map<number, PendingEmergency>();
  const inFlight = new Set<Promise<void>>();

  const bot = new Telegraf(tcfg.botToken, { telegram: tcfg.apiRoot ? { apiRoot: tcfg.apiRoot } : {} });

  const track = (p: Promise<unknown>): void => {
    const t = p.then(
      () => undefined,
      (err: unknown) => log.error({ err }, 'telegram handler failed'),
    );
    inFlight.add(t);
    void t.finally(() => inFlight.delete(t));
  };

  const audit = async (event: string, caller: Caller, payload: Record<string, unknown>): Promise<void> => {
    if (!ledger) return;
    try {
      await ledger.withActor(`telegram:${caller.id}`).audit(event, { userId: caller.id, username: caller.username ?? null, chatId: caller.chatId, chatType: caller.chatType, ...payload });
    } catch (err) {
      // The audit must not stop the kill switch; the log line still records it.
      log.error({ err, event, userId: caller.id }, 'could not write the audit row');
    }
  };

  const ledgerOrSay = async (reply: (t: string) => Promise<void>, what: string): Promise<Ledger | undefined> => {
    if (!ledger) await reply(`${what} is not available: this bot runs without a ledger connection (set DATABASE_URL for the telegram worker).`);
    return ledger;
  };

  const changeStatus = async (c: CommandRun, action: StatusAction, symbol: string | undefined): Promise<void> => {
    const res = await control[action](symbol, c.origin);
    const words = ACTION_WORDS[action];
    const running = new Set((await control.listSymbols()).map((s) => s.symbol));
    const watch = res.symbols.filter((s) => running.has(s) && !res.failures.some((f) => f.symbol === s));
    const seen = watch.length > 0 ? await control.waitForStatus(watch, TARGET_STATUS[action], confirmStatusMs) : {};
    const confirmed = watch.filter((s) => seen[s] === TARGET_STATUS[action]);
    const lines = [`${words.icon} ${symbol ? res.symbols[0] : 'All symbols'} ${words.done}${confirmed.length > 0 ? `: ${confirmed.join(', ')} confirmed` : ''}.`, words.note];
    for (const s of watch.filter((x) => seen[x] !== TARGET_STATUS[action])) {
      lines.push(`⚠️ ${s}: still ${seen[s]} after ${Math.round(confirmStatusMs / 1000)} s${action === 'resume' && seen[s] !== 'unreachable' ? ' (a tripped kill switch lifts only with /resume for all symbols)' : ''}`);
    }
    for (const s of res.symbols.filter((x) => !running.has(x))) lines.push(`${s}: not running; the portfolio applies it when it starts.`);
    for (const f of res.failures) lines.push(`⚠️ ${f.symbol}: not reached (${f.error})`);
    if (res.via === 'direct') lines.push('(The portfolio workflow is not running: sent to each symbol workflow directly.)');
    await c.reply(lines.join('\n'));
  };

  const requestEmergency = async (c: CommandRun): Promise<void> => {
    let open = '';
    try {
      const positions = await control.positions();
      open = positions.length > 0 ? `Open now: ${positions.map((p) => `${p.symbol} ${num(p.qty)}`).join(', ')}.` : 'No position is open right now (every symbol is halted all the same).';
    } catch (err) {
      open = `(Could not read the positions: ${errorText(err)}.)`;
    }
    const p: PendingEmergency = {
      nonce: crypto.randomBytes(9).toString('base64url'),
      code: String(crypto.randomInt(0, 1_000_000)).padStart(6, '0'),
      expiresAt: now() + confirmTtlMs,
      chatId: c.caller.chatId,
      text: '',
    };
    const secs = Math.round(confirmTtlMs / 1000);
    p.text = [
      '🚨 EMERGENCY CLOSE: closes every open position at market, cancels working orders and halts every symbol.',
      open,
      `Confirm within ${secs} s: press the button, or send /emergency ${p.code}`,
    ].join('\n');
    pending.set(c.caller.id, p);
    const sent = await c.ctx.reply(
      p.text,
      Markup.inlineKeyboard([[Markup.button.callback('🚨 Confirm: close everything', `em:ok:${p.nonce}`)], [Markup.button.callback('Cancel', `em:no:${p.nonce}`)]]),
    );
    p.messageId = sent.message_id;
    log.warn({ userId: c.caller.id }, 'emergency close requested; waiting for confirmation');
  };

  /** Takes the pending confirmation if `check` accepts it; any attempt consumes it. */
  const takePending = (userId: number, check: (p: PendingEmergency) => boolean): { ok: true; p: PendingEmergency } | { ok: false; why: string } => {
    const p = pending.get(userId);
    if (!p) return { ok: false, why: 'No emergency close is waiting for your confirmation: send /emergency first.' };
    pending.delete(userId);
    if (now() > p.expiresAt) return { ok: false, why: `That confirmation expired (${Math.round(confirmTtlMs / 1000)} s): send /emergency again.` };
    if (!check(p)) return { ok: false, why: 'Wrong confirmation: nothing was closed and the confirmation is cancelled. Send /emergency again.' };
    return { ok: true, p };
  };

  const executeEmergency = async (c: CommandRun, p: PendingEmergency, how: 'button' | 'code'): Promise<void> => {
    log.warn({ userId: c.caller.id, how }, 'emergency close confirmed: closing every position');
    await audit('telegram.emergency', c.caller, { how, stage: 'confirmed' });
    if (p.messageId !== undefined) {
      await bot.telegram
        .editMessageText(p.chatId, p.messageId, undefined, `${p.text}\n\n✅ Confirmed by ${c.caller.username ? '@' + c.caller.username : c.caller.id} (${how}); closing…`)
        .catch((err: unknown) => log.debug({ err }, 'could not edit the confirmation message'));
    }
    try {
      const results = await control.emergency(c.origin, { updateId: `telegram-emergency-${p.nonce}` });
      await c.reply(formatEmergency(results));
      await audit('telegram.emergency', c.caller, { how, stage: 'done', closed: results.flatMap((r) => r.closed.map((x) => x.symbol)) });
    } catch (err) {
      if (err instanceof EmergencyCloseIncomplete) await c.reply(formatEmergency(err.results, err.failures));
      else if (err instanceof EmergencyCloseTimeout) await c.reply(`⚠️ ${err.message}`);
      else throw err;
      await audit('telegram.emergency', c.caller, { how, stage: 'failed', error: errorText(err) });
    }
  };

  const COMMANDS: Record<string, CommandSpec> = {
    start: cmd({ usage: '/start', description: 'what this bot does', args: NoArgs, run: (c) => c.reply(helpText(c.caller)) }),
    help: cmd({ usage: '/help', description: 'the commands', args: NoArgs, run: (c) => c.reply(helpText(c.caller)) }),
    status: cmd({
      usage: '/status',
      description: 'kill switch, equity and every symbol: status, position, last decision',
      args: NoArgs,
      run: async (c) => c.reply(formatStatus(await control.status(), cfg)),
    }),
    stop: cmd({
      usage: '/stop [SYMBOL]',
      description: 'pause new entries (all symbols, or one); protective exits keep working',
      args: OptionalSymbol,
      audited: true,
      run: (c, symbol) => changeStatus(c, 'pause', symbol),
    }),
    resume: cmd({ usage: '/resume [SYMBOL]', description: 'allow entries again (all symbols re-arms a tripped kill switch)', args: OptionalSymbol, audited: true, run: (c, symbol) => changeStatus(c, 'resume', symbol) }),
    reduceonly: cmd({ usage: '/reduceonly [SYMBOL]', description: 'exits only: positions may be closed, never increased', args: OptionalSymbol, audited: true, run: (c, symbol) => changeStatus(c, 'reduceOnly', symbol) }),
    positions: cmd({
      usage: '/positions',
      description: 'open positions with stops, targets and unrealized PnL',
      args: NoArgs,
      run: async (c) => {
        const ps = await control.positions();
        if (ps.length === 0) return c.reply('No open positions.');
        const lines = ps.map(
          (p) =>
            `• ${p.symbol}: LONG ${num(p.qty)} @ ${num(p.entryPrice)} since ${utc(p.entryTime)}; mark ${p.markPrice !== null ? num(p.markPrice) : '-'}, uPnL ${p.unrealizedPnl !== null ? signed(p.unrealizedPnl) : '-'}; stop ${p.stopPrice !== null ? num(p.stopPrice) : '-'}, target ${p.targetPrice !== null ? num(p.targetPrice) : '-'}`,
        );
        return c.reply([`${ps.length} open position${ps.length === 1 ? '' : 's'}:`, ...lines].join('\n'));
      },
    }),
    metrics: cmd({
      usage: '/metrics',
      description: 'PnL, win rate, drawdown, exposure',
      args: NoArgs,
      run: async (c) => {
        const r = await control.status();
        const realized = r.symbols.reduce((a, s) => a + s.realizedPnl, 0);
        const closedTrades = r.symbols.reduce((a, s) => a + s.tradesClosed, 0);
        const open = r.symbols.flatMap((s) => (s.position ? [s.position] : []));
        const unrealized = open.reduce((a, p) => a + (p.unrealizedPnl ?? 0), 0);
        const exposure = open.reduce((a, p) => a + p.qty * (p.markPrice ?? p.entryPrice), 0);
        const equity = r.portfolio?.equity ?? null;
        const lines = [
          `📊 Metrics · ${r.exchange} · ${cfg.mode}`,
          `Realized PnL: ${signed(realized)} over ${closedTrades} closed trade${closedTrades === 1 ? '' : 's'}`,
          `Unrealized PnL: ${signed(unrealized)} on ${open.length} open position${open.length === 1 ? '' : 's'}`,
          `Exposure: ${money(exposure)}${equity ? ` (${pct(exposure / equity)} of equity ${money(equity)})` : ''}`,
          `Drawdown: ${r.portfolio?.drawdown != null ? pct(r.portfolio.drawdown) : 'n/a (portfolio not running)'}`,
        ];
        if (ledger) lines.push(`Win rate: ${winRate(await ledger.trades())} (ledger)`);
        else lines.push('Win rate: n/a (no ledger connection)');
        if (alerts) {
          const a = alerts.stats();
          lines.push(`Alerts: ${a.sent} sent, ${a.waiting} waiting, ${a.droppedFull + a.evicted + a.droppedSendFailed + a.droppedStale} dropped${a.telegramDown ? ' (Telegram unreachable)' : ''}`);
        }
        return c.reply(lines.join('\n'));
      },
    }),
    trades: cmd({
      usage: '/trades [N]',
      description: 'the last N closed trades (default 10, at most 50)',
      args: TradesCount,
      run: async (c, n) => {
        const l = await ledgerOrSay(c.reply, '/trades');
        if (!l) return;
        const trades = (await l.trades()).slice(-n);
        if (trades.length === 0) return c.reply('No closed trades yet.');
        return c.reply(
          [`Last ${trades.length} closed trade${trades.length === 1 ? '' : 's'}:`, ...trades.map((t) => `• ${t.symbol} ${num(Number(t.qty))}: ${t.entryPrice} -> ${t.exitPrice}, PnL ${signed(Number(t.pnl))} (${t.exitReason ?? 'exit'}, ${utc(t.exitTime.getTime())})`)].join('\n'),
        );
      },
    }),
    profit: cmd({
      usage: '/profit',
      description: 'realized PnL (today, 7 days, all), win rate, best and worst trade',
      args: NoArgs,
      run: async (c) => {
        const l = await ledgerOrSay(c.reply, '/profit');
        if (!l) return;
        const trades = await l.trades();
        const t = now();
        const sum = (ts: Trade[]) => ts.reduce((a, x) => a + Number(x.pnl), 0);
        const dayStart = new Date(t);
        dayStart.setUTCHours(0, 0, 0, 0);
        const today = trades.filter((x) => x.exitTime.getTime() >= dayStart.getTime());
        const week = trades.filter((x) => x.exitTime.getTime() >= t - 7 * 86_400_000);
        const sorted = [...trades].sort((a, b) => Number(a.pnl) - Number(b.pnl));
        const lines = [
          '💵 Profit (realized, net of fees)',
          `Today (UTC): ${signed(sum(today))} over ${today.length} trade${today.length === 1 ? '' : 's'}`,
          `7 days: ${signed(sum(week))} over ${week.length}`,
          `All time: ${signed(sum(trades))} over ${trades.length}; win rate ${winRate(trades)}`,
        ];
        if (sorted.length > 0) lines.push(`Best ${sorted.at(-1)!.symbol} ${signed(Number(sorted.at(-1)!.pnl))}, worst ${sorted[0].symbol} ${signed(Number(sorted[0].pnl))}`);
        return c.reply(lines.join('\n'));
      },
    }),
    balance: cmd({
      usage: '/balance',
      description: 'equity and cash (ledger snapshot), against the initial capital',
      args: NoArgs,
      run: async (c) => {
        const initial = cfg.risk.initialCapital;
        const last = ledger ? (await ledger.equityCurve({ since: new Date(now() - 30 * 86_400_000) })).at(-1) : undefined;
        if (!last) {
          // No ledger snapshot: the portfolio workflow's equity (from the ledger's trades) is the answer.
          const p = await control.portfolioState().catch(() => null);
          if (p?.equity == null) return c.reply(`No equity figure yet (no ledger snapshot; portfolio ${p ? 'has not checked yet' : 'not running'}). Initial capital: ${money(initial)}.`);
          return c.reply(
            [`💰 Equity ${money(p.equity)} (portfolio workflow; peak ${money(p.peakEquity ?? p.equity)}, drawdown ${pct(p.drawdown ?? 0)})`, `Initial capital ${money(initial)}: ${signed(p.equity - initial)} (${pct((p.equity - initial) / initial)})`].join('\n'),
          );
        }
        const eq = Number(last.equity);
        return c.reply(
          [`💰 Equity ${money(eq)}, cash ${money(Number(last.cash))} (snapshot ${utc(last.ts.getTime())})`, `Initial capital ${money(initial)}: ${signed(eq - initial)} (${pct((eq - initial) / initial)})`].join('\n'),
        );
      },
    }),
    retrain: cmd({
      usage: '/retrain',
      description: 'start a model retrain (not available yet)',
      args: NoArgs,
      run: (c) => c.reply('Retraining is not available yet: the training worker and its RetrainWorkflow are not part of this build. Nothing was started.'),
    }),
    emergency: cmd({
      usage: '/emergency',
      description: 'close EVERY position at market and halt (asks for confirmation)',
      args: ConfirmCode,
      audited: true,
      run: async (c, code) => {
        if (code === undefined) return requestEmergency(c);
        const t = takePending(c.caller.id, (p) => crypto.timingSafeEqual(Buffer.from(p.code), Buffer.from(code)));
        if (!t.ok) {
          log.warn({ userId: c.caller.id }, 'emergency confirmation by code refused');
          return c.reply(`❌ ${t.why}`);
        }
        return executeEmergency(c, t.p, 'code');
      },
    }),
  };

  const helpText = (caller: Caller): string =>
    [
      `durable-trader kill switch (${control.exchange}, ${cfg.mode}). You are admin ${caller.id}.`,
      '',
      ...Object.values(COMMANDS).map((s) => `${s.usage} — ${s.description}`),
      '',
      `SYMBOL is e.g. ${cfg.symbols[0] ?? 'BTC/USDT'} (case and separator do not matter). One command per ${Math.round(commandLimiter.intervalMs / 1000)} s.`,
    ].join('\n');

  const callerOf = (ctx: Context): Caller | undefined => {
    if (!ctx.from || ctx.from.is_bot) return undefined;
    const chat = ctx.chat ?? ctx.callbackQuery?.message?.chat;
    return { id: ctx.from.id, username: ctx.from.username, chatId: chat?.id ?? ctx.from.id, chatType: chat?.type ?? 'private' };
  };

  const runOf = (ctx: Context, caller: Caller, command: string): CommandRun => ({
    ctx,
    caller,
    origin: { by: `telegram:${caller.id}`, reason: `${command} via Telegram${caller.username ? ` by @${caller.username}` : ''}` },
    reply: async (text: string) => {
      for (const part of chunks(text)) await ctx.reply(part, { link_preview_options: { is_disabled: true } });
    },
  });

  /** `/cmd@bot args` -> { name, args }; null when the text is not a command for this bot. */
  const parseCommand = (text: string): { name: string; args: string[] } | null => {
    const m = /^\/([A-Za-z0-9_]{1,64})(?:@([A-Za-z0-9_]+))?(?:\s+([\s\S]*))?$/.exec(text.trim());
    if (!m) return null;
    if (m[2] && m[2].toLowerCase() !== bot.botInfo?.username.toLowerCase()) return null;
    return { name: m[1].toLowerCase(), args: (m[3] ?? '').split(/\s+/).filter(Boolean) };
  };

  const refuse = async (ctx: Context, caller: Caller, what: string): Promise<void> => {
    const rl = strangerLimiter.check(caller.id, now());
    if (!rl.allowed) {
      log.debug({ userId: caller.id }, 'unauthorized Telegram message ignored (rate-limited)');
      return;
    }
    log.warn({ userId: caller.id, username: caller.username, chatId: caller.chatId, chatType: caller.chatType, what, suppressedBefore: rl.suppressed }, 'unauthorized Telegram user refused');
    await audit('telegram.unauthorized', caller, { what, suppressedBefore: rl.suppressed });
    const text = `⛔ Not authorized. This bot only takes commands from its admins. Your Telegram user id is ${caller.id}; an admin can add it to TELEGRAM_ADMIN_IDS.`;
    if (ctx.callbackQuery) await ctx.answerCbQuery('Not authorized', { show_alert: true });
    else await ctx.reply(text);
  };

  const onCallback = async (ctx: Context, caller: Caller): Promise<void> => {
    const data = ctx.callbackQuery && 'data' in ctx.callbackQuery ? ctx.callbackQuery.data : '';
    const m = /^em:(ok|no):([A-Za-z0-9_-]{1,32})$/.exec(data);
    if (!m) return void (await ctx.answerCbQuery('Unknown button'));
    const c = runOf(ctx, caller, '/emergency');
    const t = takePending(caller.id, (p) => p.nonce === m[2]);
    if (!t.ok) {
      await ctx.answerCbQuery(t.why.replace(/ Send \/emergency.*$/, ''), { show_alert: true });
      return c.reply(`❌ ${t.why}`);
    }
    if (m[1] === 'no') {
      await ctx.answerCbQuery('Cancelled');
      await audit('telegram.emergency', caller, { how: 'button', stage: 'cancelled' });
      if (t.p.messageId !== undefined) await bot.telegram.editMessageText(t.p.chatId, t.p.messageId, undefined, `${t.p.text}\n\nCancelled: nothing was closed.`).catch(() => undefined);
      return;
    }
    await ctx.answerCbQuery('Closing every position…');
    await executeEmergency(c, t.p, 'button');
  };

  const onCommand = async <A>(c: CommandRun, name: string, spec: CommandSpec<A>, args: A, rawArgs: string[]): Promise<void> => {
    log.info({ userId: c.caller.id, command: name, args: rawArgs }, 'telegram command');
    let outcome = 'ok';
    try {
      await spec.run(c, args);
    } catch (err) {
      outcome = 'error';
      if (err instanceof UnknownSymbolError) {
        outcome = 'unknown_symbol';
        await c.reply(err.known.length > 0 ? `Unknown symbol ${err.symbol}. Known symbols: ${err.known.join(', ')}. Example: /${name} ${err.known[0]}` : `Unknown symbol ${err.symbol}: no symbol workflow is running.`);
      } else {
        log.error({ err, command: name, userId: c.caller.id }, 'telegram command failed');
        await c.reply(`⚠️ /${name} failed: ${errorText(err)}`);
      }
    } finally {
      if (spec.audited) await audit('telegram.command', c.caller, { command: name, args: rawArgs, outcome });
    }
  };

  // Every update passes here first; nothing below runs for a stranger.
  bot.use((ctx) => {
    const caller = callerOf(ctx);
    if (!caller) return;
    const text = ctx.message && 'text' in ctx.message ? ctx.message.text : undefined;
    const command = text !== undefined ? parseCommand(text) : null;
    if (!admins.has(caller.id)) {
      // In a group only what is addressed to the bot counts as an attempt; chatter is not.
      if (ctx.callbackQuery || command || caller.chatType === 'private') track(refuse(ctx, caller, ctx.callbackQuery ? 'button' : (text ?? '(non-text message)').slice(0, 100)));
      return;
    }
    if (ctx.callbackQuery) return track(onCallback(ctx, caller));
    if (!ctx.message) return;
    if (!command) {
      if (caller.chatType === 'private' && hintLimiter.check(caller.id, now()).allowed) track(ctx.reply('Send /help for the commands.'));
      return;
    }
    const c = runOf(ctx, caller, `/${command.name}`);
    const ageMs = now() - ctx.message.date * 1000;
    if (ageMs > staleAfterMs) {
      log.warn({ userId: caller.id, command: command.name, ageMs }, 'stale Telegram command ignored');
      return track(c.reply(`Ignored /${command.name} sent at ${utc(ctx.message.date * 1000)}: the bot was offline then. Send it again if you still want it.`));
    }
    // A typo costs no rate-limit window (it reaches nothing); its answers are limited on their own.
    const spec = COMMANDS[command.name];
    const parsed = spec?.args.safeParse(command.args);
    if (!spec || !parsed?.success) {
      if (hintLimiter.check(caller.id, now()).allowed) {
        track(c.reply(spec ? `Usage: ${spec.usage} — ${parsed!.error!.issues.map((i) => i.message).join('; ')}` : `Unknown command /${command.name}. Send /help for the list.`));
      }
      return;
    }
    const isConfirmation = command.name === 'emergency' && command.args.length > 0;
    if (!isConfirmation) {
      const rl = commandLimiter.check(caller.id, now());
      if (!rl.allowed) {
        log.info({ userId: caller.id, command: command.name, retryInMs: rl.retryInMs }, 'telegram command rate-limited');
        if (rl.tell) track(c.reply(`⏳ Too fast: one command per ${Math.round(commandLimiter.intervalMs / 1000)} s. /${command.name} was ignored; try again in ${Math.ceil(rl.retryInMs / 1000)} s.`));
        return;
      }
    }
    track(onCommand(c, command.name, spec, parsed.data, command.args));
  });
  bot.catch((err) => log.error({ err }, 'telegram update failed'));

  // getMe first: a wrong token or an unreachable API root fails here, at start-up.
  bot.botInfo = await bot.telegram.getMe();
  await bot.telegram
    .setMyCommands(Object.entries(COMMANDS).map(([command, s]) => ({ command, description: s.description.slice(0, 256) })))
    .catch((err: unknown) => log.warn({ err }, 'could not register the command menu (setMyCommands)'));
  let attached = false;
  if (alerts && !alerts.delivering) {
    alerts.attach(telegramAlertSink(bot.telegram), tcfg.adminIds);
    attached = true;
  }
  const done = bot.launch({ allowedUpdates: ['message', 'callback_query'] }).catch((err: unknown) => {
    log.error({ err }, 'Telegram polling stopped with an error (another bot instance on this token?)');
    throw err;
  });
  done.catch(() => undefined);
  log.info({ bot: bot.botInfo.username, admins: tcfg.adminIds.length, apiRoot: tcfg.apiRoot ?? 'https://api.telegram.org' }, 'Telegram bot polling');

  let stopped = false;
  return {
    username: bot.botInfo.username,
    done,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        bot.stop('shutdown');
      } catch {
        // not running any more (polling already failed)
      }
      await done.catch(() => undefined);
      await Promise.race([Promise.all([...inFlight]), new Promise((r) => setTimeout(r, 10_000).unref())]);
      if (attached) await alerts!.stop();
      log.info('Telegram bot stopped');
    },
  };
}
