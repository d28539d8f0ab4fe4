import { Telegraf, type Context } from 'telegraf';
import { telegramAlertSink, type AlertDispatcher } from '../activities/alerts';
import { UnknownSymbolError, type TradingControl } from '../control/trading-control';
import type { AppConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import type { Ledger } from '../ledger/ledger';
import { DEFAULT_RETRAIN_SCHEDULE_ID } from '../lib/contracts/retrain';
import { AccessControl, callerOf, type Caller } from './access';
import type { BotServices, CommandRun, CommandSpec, ConfirmedCommand } from './command';
import { commandTable } from './commands';
import { EmergencyClose } from './emergency';
import { HINT, chunks, commandFailed, notAuthorized, staleCommand, tooFast, unknownCommand, unknownSymbol, usage } from './format';
import { RetrainNow } from './retrain';

/**
 * The Telegram kill switch: a telegraf bot (long polling; the Bot API root is configurable, so
 * it runs against a self-hosted Bot API server or a test stand-in) whose commands are Temporal
 * client calls through control/. This file assembles it: access control first on every update
 * (access.ts), then the command table (commands.ts) or a confirmation button (emergency.ts,
 * retrain.ts); replies are written by format.ts.
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
  /** How long an /emergency or /retrain confirmation stays valid (default 60 s). */
  confirmTtlMs?: number;
  /** Commands older than this (sent while the bot was offline) are not executed (default 120 s). */
  staleAfterMs?: number;
  /** How long /stop, /resume, /reduceonly wait to see the new status by query (default 5 s). */
  confirmStatusMs?: number;
  /** The Schedule /retrain triggers (default `retrain`, the id `trader schedule retrain` uses). */
  retrainScheduleId?: string;
  now?: () => number;
}

export interface TelegramBot {
  readonly username: string;
  /** Settles when polling ends (stop(), or a fatal polling error such as a second bot on the token). */
  readonly done: Promise<void>;
  stop(): Promise<void>;
}

export async function startTelegramBot(opts: TelegramBotOptions): Promise<TelegramBot> {
  const tcfg = opts.cfg.telegram;
  if (!tcfg) throw new Error('the Telegram bot needs TELEGRAM_BOT_TOKEN and TELEGRAM_ADMIN_IDS');
  const log = opts.log.child({ component: 'telegram' });
  const now = opts.now ?? Date.now;
  const access = new AccessControl({ adminIds: tcfg.adminIds, rateLimitMs: opts.rateLimitMs ?? 5_000, staleAfterMs: opts.staleAfterMs ?? 120_000 });
  const confirmTtlMs = opts.confirmTtlMs ?? 60_000;
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

  const services: BotServices = {
    cfg: opts.cfg,
    control: opts.control,
    log,
    ledger: opts.ledger,
    alerts: opts.alerts,
    now,
    telegram: bot.telegram,
    audit: async (event, caller, payload) => {
      if (!opts.ledger) return;
      try {
        await opts.ledger.withActor(`telegram:${caller.id}`).audit(event, { userId: caller.id, username: caller.username ?? null, chatId: caller.chatId, chatType: caller.chatType, ...payload });
      } catch (err) {
        // The audit must not stop the kill switch; the log line still records it.
        log.error({ err, event, userId: caller.id }, 'could not write the audit row');
      }
    },
  };
  const emergency = new EmergencyClose(services, confirmTtlMs);
  const retrain = new RetrainNow(services, confirmTtlMs, opts.retrainScheduleId ?? DEFAULT_RETRAIN_SCHEDULE_ID);
  const COMMANDS = commandTable(services, { emergency, retrain, confirmStatusMs: opts.confirmStatusMs ?? 5_000, rateLimitMs: access.rateLimitMs });
  const BUTTONS = new Map<string, ConfirmedCommand>([emergency, retrain].map((f) => [f.buttonPrefix, f]));

  const runOf = (ctx: Context, caller: Caller, name: string): CommandRun => ({
    ctx,
    caller,
    origin: { by: `telegram:${caller.id}`, reason: `${name} via Telegram${caller.username ? ` by @${caller.username}` : ''}` },
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

  const refuse = async (ctx: Context, caller: Caller, what: string, suppressedBefore: number): Promise<void> => {
    log.warn({ userId: caller.id, username: caller.username, chatId: caller.chatId, chatType: caller.chatType, what, suppressedBefore }, 'unauthorized Telegram user refused');
    await services.audit('telegram.unauthorized', caller, { what, suppressedBefore });
    if (ctx.callbackQuery) await ctx.answerCbQuery('Not authorized', { show_alert: true });
    else await ctx.reply(notAuthorized(caller.id));
  };

  const onButton = async (ctx: Context, caller: Caller): Promise<void> => {
    const data = ctx.callbackQuery && 'data' in ctx.callbackQuery ? ctx.callbackQuery.data : '';
    const m = /^([a-z]{2}):(ok|no):([A-Za-z0-9_-]{1,32})$/.exec(data);
    const flow = m ? BUTTONS.get(m[1]) : undefined;
    if (!m || !flow) return void (await ctx.answerCbQuery('Unknown button'));
    await flow.onButton(runOf(ctx, caller, flow.command), m[2] === 'ok', m[3]);
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
        await c.reply(unknownSymbol(name, err.symbol, err.known));
      } else {
        log.error({ err, command: name, userId: c.caller.id }, 'telegram command failed');
        await c.reply(commandFailed(name, err));
      }
    } finally {
      if (spec.audited) await services.audit('telegram.command', c.caller, { command: name, args: rawArgs, outcome });
    }
  };

  // Every update passes here first; nothing below the admission runs for a stranger.
  bot.use((ctx) => {
    const caller = callerOf(ctx);
    if (!caller) return;
    const text = ctx.message && 'text' in ctx.message ? ctx.message.text : undefined;
    const parsed = text !== undefined ? parseCommand(text) : null;
    if (!ctx.callbackQuery && !ctx.message) return;
    const admission = access.admit({ caller, button: !!ctx.callbackQuery, command: !!parsed, sentAtMs: ctx.message ? ctx.message.date * 1000 : undefined }, now());
    switch (admission.verdict) {
      case 'ignore':
        if (admission.why === 'stranger rate-limited') log.debug({ userId: caller.id }, 'unauthorized Telegram message ignored (rate-limited)');
        return;
      case 'refuse':
        return track(refuse(ctx, caller, ctx.callbackQuery ? 'button' : (text ?? '(non-text message)').slice(0, 100), admission.suppressedBefore));
      case 'button':
        return track(onButton(ctx, caller));
      case 'hint':
        return track(ctx.reply(HINT));
      case 'stale':
        log.warn({ userId: caller.id, command: parsed!.name, ageMs: admission.ageMs }, 'stale Telegram command ignored');
        return track(runOf(ctx, caller, `/${parsed!.name}`).reply(staleCommand(parsed!.name, ctx.message!.date * 1000)));
      case 'command':
        break;
    }
    const { name, args } = parsed!;
    const c = runOf(ctx, caller, `/${name}`);
    // A typo costs no rate-limit window (it reaches nothing); its answers are limited on their own.
    const spec = COMMANDS[name];
    const checked = spec?.args.safeParse(args);
    if (!spec || !checked?.success) {
      if (access.mayAnswerMistake(caller.id, now())) track(c.reply(spec ? usage(spec, checked!.error!.issues.map((i) => i.message)) : unknownCommand(name)));
      return;
    }
    if (!spec.confirms?.(checked.data)) {
      const window = access.takeCommandWindow(caller.id, now());
      if (!window.allowed) {
        log.info({ userId: caller.id, command: name, retryInMs: window.retryInMs }, 'telegram command rate-limited');
        if (window.tell) track(c.reply(tooFast(name, access.rateLimitMs, window.retryInMs)));
        return;
      }
    }
    track(onCommand(c, name, spec, checked.data, args));
  });
  bot.catch((err) => log.error({ err }, 'telegram update failed'));

  // getMe first: a wrong token or an unreachable API root fails here, at start-up.
  bot.botInfo = await bot.telegram.getMe();
  await bot.telegram
    .setMyCommands(Object.entries(COMMANDS).map(([name, s]) => ({ command: name, description: s.description.slice(0, 256) })))
    .catch((err: unknown) => log.warn({ err }, 'could not register the command menu (setMyCommands)'));
  let attached = false;
  if (opts.alerts && !opts.alerts.delivering) {
    opts.alerts.attach(telegramAlertSink(bot.telegram), tcfg.adminIds);
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
      if (attached) await opts.alerts!.stop();
      log.info('Telegram bot stopped');
    },
  };
}
