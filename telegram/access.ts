import type { Context } from 'telegraf';

/**
 * Who may command the bot, how often, and which messages are too old to act on.
 *
 * Authority: Telegram user ids in TELEGRAM_ADMIN_IDS, checked on `from.id` of every message and
 * button press, never on the chat id (a group must not hand control to its members). Anyone
 * else is refused (and the bot logs, audits and answers that), and causes no Temporal call. In
 * a group only what is addressed to the bot counts as an attempt; chatter is not.
 *
 * Rate limit: one command per user per window (5 s by default), kept in a Map of user id -> last
 * accepted time (a dozen lines; no limiter package is installed and none is needed for one
 * fixed window). A limited user is told once per window; further messages in it are ignored
 * silently, so a flood cannot make the bot flood Telegram back. Confirmations of a pending
 * request are exempt (they are one-time; a wrong one cancels), and so are typos: an unknown
 * command or bad arguments reach nothing, so they cost no window (their answers, and the
 * refusals to strangers, are limited on their own windows).
 *
 * Staleness: a command sent while the bot was offline (older than 2 minutes by default, by the
 * message's own date) is not executed: a /stop from yesterday must not halt trading today.
 */

/** The sender of an update: `id` decides authority, the chat only where the answer goes. */
export interface Caller {
  id: number;
  username?: string;
  chatId: number;
  chatType: string;
}

/** The human sender of a message or button press; undefined for bots and updates without a sender. */
export function callerOf(ctx: Context): Caller | undefined {
  if (!ctx.from || ctx.from.is_bot) return undefined;
  const chat = ctx.chat ?? ctx.callbackQuery?.message?.chat;
  return { id: ctx.from.id, username: ctx.from.username, chatId: chat?.id ?? ctx.from.id, chatType: chat?.type ?? 'private' };
}

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

/** An incoming update as far as access is concerned. */
export interface Arrival {
  caller: Caller;
  /** A press on an inline button. */
  button: boolean;
  /** A `/command` addressed to this bot (commands for another bot in a group are chatter). */
  command: boolean;
  /** The message's own send time (messages only). */
  sentAtMs?: number;
}

export type Admission =
  | { verdict: 'ignore'; why: 'stranger rate-limited' | 'stranger chatter' | 'not a command' | 'hint rate-limited' }
  /** A stranger's attempt: answer with a refusal (once per window), log and audit it. */
  | { verdict: 'refuse'; suppressedBefore: number }
  | { verdict: 'button' }
  /** An admin's plain text in a private chat: point at /help. */
  | { verdict: 'hint' }
  | { verdict: 'stale'; ageMs: number }
  /** An admin's fresh command: parse it, then take a command window unless it confirms something. */
  | { verdict: 'command' };

export type CommandWindow = { allowed: true } | { allowed: false; retryInMs: number; tell: boolean };

export interface AccessOptions {
  adminIds: readonly number[];
  /** Per-user minimum interval between commands; 0 disables. */
  rateLimitMs: number;
  staleAfterMs: number;
}

export class AccessControl {
  readonly rateLimitMs: number;
  private readonly admins: ReadonlySet<number>;
  private readonly staleAfterMs: number;
  private readonly commands: CommandRateLimiter;
  private readonly strangers: CommandRateLimiter;
  private readonly hints: CommandRateLimiter;

  constructor(opts: AccessOptions) {
    if (opts.adminIds.length === 0) throw new Error('TELEGRAM_ADMIN_IDS is empty: nobody could command the bot');
    this.admins = new Set(opts.adminIds);
    this.rateLimitMs = opts.rateLimitMs;
    this.staleAfterMs = opts.staleAfterMs;
    this.commands = new CommandRateLimiter(opts.rateLimitMs);
    this.strangers = new CommandRateLimiter(opts.rateLimitMs);
    this.hints = new CommandRateLimiter(opts.rateLimitMs);
  }

  isAdmin(userId: number): boolean {
    return this.admins.has(userId);
  }

  /** The first decision on every update; nothing past a refusal runs for a stranger. */
  admit(a: Arrival, now: number): Admission {
    if (!this.isAdmin(a.caller.id)) {
      if (!a.button && !a.command && a.caller.chatType !== 'private') return { verdict: 'ignore', why: 'stranger chatter' };
      const rl = this.strangers.check(a.caller.id, now);
      return rl.allowed ? { verdict: 'refuse', suppressedBefore: rl.suppressed } : { verdict: 'ignore', why: 'stranger rate-limited' };
    }
    if (a.button) return { verdict: 'button' };
    if (!a.command) {
      if (a.caller.chatType !== 'private') return { verdict: 'ignore', why: 'not a command' };
      return this.hints.check(a.caller.id, now).allowed ? { verdict: 'hint' } : { verdict: 'ignore', why: 'hint rate-limited' };
    }
    const ageMs = a.sentAtMs === undefined ? 0 : now - a.sentAtMs;
    if (ageMs > this.staleAfterMs) return { verdict: 'stale', ageMs };
    return { verdict: 'command' };
  }

  /** Whether to answer a typo or bad arguments now (at most once per window; they take no command window). */
  mayAnswerMistake(userId: number, now: number): boolean {
    return this.hints.check(userId, now).allowed;
  }

  /** Takes the user's command window: the command runs only if allowed. */
  takeCommandWindow(userId: number, now: number): CommandWindow {
    const rl = this.commands.check(userId, now);
    return rl.allowed ? { allowed: true } : { allowed: false, retryInMs: rl.retryInMs, tell: rl.tell };
  }
}
