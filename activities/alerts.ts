import { ApplicationFailure } from '@temporalio/common';
import { Telegram, TelegramError } from 'telegraf';
import { z } from 'zod';
import type { AppConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import {
  ALERT_SEVERITIES,
  AlertQueue,
  formatAlert,
  type Alert,
  type AlertQueueOptions,
  type AlertQueueStats,
  type AlertSeverity,
  type PushOutcome,
  type QueuedAlert,
} from '../lib/alerts';
import type { AlertActivities } from '../lib/contracts/activities';

/**
 * Alerts from workflows and activities to the admins' Telegram chats.
 *
 * `sendAlert` (the activity) only enqueues and returns: trading never waits on Telegram. One
 * sender loop per process drains the queue (most important first, throttled) through a Telegram
 * client. A send that fails is dropped with a counter and a log line, and the loop backs off
 * while Telegram is down; alerts arriving meanwhile wait in the bounded queue (overflow is
 * dropped, again counted and logged). Every alert is also logged when raised, so the log holds
 * the full record even when Telegram never sees it.
 */

export const AlertInput = z.object({
  severity: z.enum(ALERT_SEVERITIES as [AlertSeverity, ...AlertSeverity[]], { error: `severity: expected one of ${ALERT_SEVERITIES.join(', ')}` }),
  key: z.string().trim().min(1, 'key: must not be empty').max(200, 'key: at most 200 characters'),
  text: z.string().trim().min(1, 'text: must not be empty').max(4000, 'text: at most 4000 characters'),
});
export type AlertInput = z.infer<typeof AlertInput>;

/** Where alerts go: one chat at a time. The Telegram client satisfies it via telegramAlertSink. */
export interface AlertSink {
  sendMessage(chatId: number, text: string, signal: AbortSignal): Promise<unknown>;
}

/** A sink over telegraf's Telegram client (the bot's own `bot.telegram`, or one made from the token). */
export function telegramAlertSink(telegram: Telegram): AlertSink {
  return {
    sendMessage: (chatId, text, signal) =>
      // callApi, not sendMessage: it is the only entry point that takes an abort signal.
      telegram.callApi('sendMessage', { chat_id: chatId, text, link_preview_options: { is_disabled: true } }, { signal: signal as never }),
  };
}

export interface AlertDispatcherOptions {
  log: Logger;
  sink?: AlertSink;
  /** Telegram user ids; a private chat's id is the user's id. */
  adminIds?: number[];
  queue?: Partial<AlertQueueOptions>;
  /** One Telegram call at most this long (default 10 s). */
  sendTimeoutMs?: number;
  /** Pause after a failed send, doubling up to maxMs (defaults 5 s and 60 s). */
  backoff?: { initialMs: number; maxMs: number };
  /** Shown in every alert of this process, e.g. `REPLAY` when a replay (a fire drill) raises them. */
  source?: string;
  now?: () => number;
}

export interface AlertDispatcherStats extends AlertQueueStats {
  /** Alerts raised while no Telegram sink was configured (logged only). */
  loggedOnly: number;
  telegramDown: boolean;
  consecutiveFailures: number;
}

export type EnqueueOutcome = PushOutcome | { status: 'logged-only' };

const LOG_LEVEL: Record<AlertSeverity, 'error' | 'warn' | 'info'> = { critical: 'error', warning: 'warn', info: 'info' };

export class AlertDispatcher {
  readonly queue: AlertQueue;
  private sink: AlertSink | undefined;
  private adminIds: number[];
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly sendTimeoutMs: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private readonly source: string | undefined;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private wakeUp: (() => void) | undefined;
  private downUntil = 0;
  private failures = 0;
  private loggedOnly = 0;
  private inFlight = false;
  private idleWaiters: (() => void)[] = [];

  constructor(opts: AlertDispatcherOptions) {
    this.log = opts.log.child({ component: 'alerts' });
    this.queue = new AlertQueue(opts.queue);
    this.now = opts.now ?? Date.now;
    this.sendTimeoutMs = opts.sendTimeoutMs ?? 10_000;
    this.backoff = opts.backoff ?? { initialMs: 5_000, maxMs: 60_000 };
    this.adminIds = opts.adminIds ?? [];
    this.source = opts.source;
    if (opts.sink) this.attach(opts.sink, this.adminIds);
  }

  /** Starts delivering to these chats (e.g. when the bot comes up after the worker). */
  attach(sink: AlertSink, adminIds: number[]): void {
    if (adminIds.length === 0) throw new Error('alerts need at least one admin chat id (TELEGRAM_ADMIN_IDS)');
    this.sink = sink;
    this.adminIds = [...adminIds];
    this.stopping = false;
    this.loop ??= this.run().finally(() => (this.loop = undefined));
    this.wake();
  }

  get delivering(): boolean {
    return this.sink !== undefined;
  }

  /** Synchronous and never throws on a valid alert: callers on the trading path must not wait. */
  enqueue(alert: Alert): EnqueueOutcome {
    const fields = { alert: alert.key, severity: alert.severity };
    this.log[LOG_LEVEL[alert.severity]]({ ...fields, text: alert.text, ...(this.source ? { source: this.source } : {}) }, 'alert raised');
    if (!this.sink) {
      this.loggedOnly += 1;
      return { status: 'logged-only' };
    }
    const outcome = this.queue.push(alert, this.now());
    if (outcome.status === 'dropped') {
      this.log.warn({ ...fields, droppedFull: this.queue.stats().droppedFull, capacity: this.queue.options.capacity }, 'alert dropped: queue full of alerts at least as important');
    } else if (outcome.status === 'queued') {
      if (outcome.evicted) {
        this.log.warn({ alert: outcome.evicted.key, severity: outcome.evicted.severity, evicted: this.queue.stats().evicted, for: alert.key }, 'alert dropped: evicted by a more important one (queue full)');
      }
      this.wake();
    }
    return outcome;
  }

  stats(): AlertDispatcherStats {
    return { ...this.queue.stats(), loggedOnly: this.loggedOnly, telegramDown: this.now() < this.downUntil, consecutiveFailures: this.failures };
  }

  /** Resolves true once nothing waits or is being sent; false if that takes longer than timeoutMs. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (this.isIdle()) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** Stops the sender loop (waiting alerts stay in the queue, uncounted as sent). */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
    await this.loop;
  }

  private isIdle(): boolean {
    return this.queue.size === 0 && !this.inFlight;
  }

  private wake(): void {
    this.wakeUp?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => done(), ms) : undefined;
      // The loop must never keep a process alive on its own.
      timer?.unref();
      const done = () => {
        if (timer) clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      this.wakeUp = done;
    });
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
      const now = this.now();
      if (now < this.downUntil) {
        await this.sleep(this.downUntil - now);
        continue;
      }
      const wait = this.queue.waitMs(now);
      if (wait > 0) {
        await this.sleep(wait);
        continue;
      }
      const stale: QueuedAlert[] = [];
      const entry = this.queue.take(now, stale);
      for (const s of stale) {
        this.log.warn({ alert: s.key, severity: s.severity, ageMs: now - s.lastAt, droppedStale: this.queue.stats().droppedStale }, 'alert dropped: stale (waited too long for Telegram)');
      }
      if (!entry) continue;
      this.inFlight = true;
      try {
        await this.deliver(entry);
      } finally {
        this.inFlight = false;
      }
    }
  }

  private async deliver(entry: QueuedAlert): Promise<void> {
    const text = formatAlert(entry, this.source);
    let delivered = 0;
    let transportError: unknown;
    for (const chatId of this.adminIds) {
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), this.sendTimeoutMs);
      try {
        await this.sink!.sendMessage(chatId, text, ac.signal);
        delivered += 1;
      } catch (err) {
        if (isChatError(err)) {
          // This admin cannot be reached (never opened a chat with the bot, or blocked it);
          // Telegram itself is fine.
          this.log.error({ chatId, err: describeError(err), alert: entry.key }, 'alert not delivered to this admin: they must open a chat with the bot and send /start');
        } else {
          transportError = err;
          break;
        }
      } finally {
        clearTimeout(timer);
      }
    }
    const now = this.now();
    if (delivered > 0) {
      this.queue.recordSent(entry, now);
      this.failures = 0;
      this.downUntil = 0;
      return;
    }
    this.queue.recordFailed(entry, now);
    if (transportError !== undefined) {
      this.failures += 1;
      const retryAfter = transportError instanceof TelegramError ? transportError.parameters?.retry_after : undefined;
      const pause = retryAfter !== undefined ? retryAfter * 1000 : Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (this.failures - 1));
      this.downUntil = now + pause;
      this.log.warn(
        { alert: entry.key, severity: entry.severity, err: describeError(transportError), droppedSendFailed: this.queue.stats().droppedSendFailed, retryInMs: pause },
        'alert dropped: Telegram unreachable',
      );
    } else {
      this.log.warn({ alert: entry.key, severity: entry.severity, droppedSendFailed: this.queue.stats().droppedSendFailed }, 'alert dropped: no admin chat accepted it');
    }
  }
}

/** 400/403 from Telegram: the chat is wrong or closed, not the service. */
function isChatError(err: unknown): boolean {
  return err instanceof TelegramError && (err.code === 400 || err.code === 403);
}

function describeError(err: unknown): string {
  if (err instanceof TelegramError) return `Telegram ${err.code}: ${err.description}`;
  if (err instanceof Error) return err.name === 'AbortError' ? 'timed out' : err.message;
  return String(err);
}

/** The process's dispatcher from the config: delivering when TELEGRAM_BOT_TOKEN is set, logging only otherwise. */
export function createAlertDispatcher(cfg: Pick<AppConfig, 'telegram'>, log: Logger, opts: Omit<AlertDispatcherOptions, 'log' | 'sink' | 'adminIds'> = {}): AlertDispatcher {
  const t = cfg.telegram;
  if (!t) return new AlertDispatcher({ ...opts, log });
  const telegram = new Telegram(t.botToken, t.apiRoot ? { apiRoot: t.apiRoot } : {});
  return new AlertDispatcher({ ...opts, log, sink: telegramAlertSink(telegram), adminIds: t.adminIds });
}

/** The activity workflows call: validates, enqueues, returns at once. */
export function createAlertActivities(dispatcher: AlertDispatcher): AlertActivities {
  return {
    async sendAlert(input: AlertInput): Promise<{ status: EnqueueOutcome['status'] }> {
      const parsed = AlertInput.safeParse(input);
      if (!parsed.success) {
        // A malformed alert is a bug in the caller; retrying cannot fix it.
        throw ApplicationFailure.nonRetryable(`invalid alert: ${parsed.error.issues.map((i) => i.message).join('; ')}`, 'InvalidAlert');
      }
      return { status: dispatcher.enqueue(parsed.data).status };
    },
  };
}

export type { AlertActivities };
