import type { Context, Telegram } from 'telegraf';
import type { z } from 'zod';
import type { AlertDispatcher } from '../activities/alerts';
import type { TradingControl } from '../control/trading-control';
import type { AppConfig } from '../infra/config';
import type { Logger } from '../infra/logger';
import type { Ledger } from '../ledger/ledger';
import type { MessageOrigin } from '../lib/contracts/trading';
import type { Caller } from './access';
import type { PendingConfirmation } from './confirmation';

/** What one bot command is, what it gets when it runs, and the services it may use. */

export interface BotServices {
  cfg: AppConfig;
  control: TradingControl;
  log: Logger;
  /** For audit rows and the ledger commands; absent when the bot runs without DATABASE_URL. */
  ledger?: Ledger;
  alerts?: AlertDispatcher;
  now(): number;
  /** The bot's Bot API client, to edit a confirmation prompt after it is used. */
  telegram: Telegram;
  /** Writes an audit row as `telegram:<user id>`; never throws (the kill switch must not wait on it). */
  audit(event: string, caller: Caller, payload: Record<string, unknown>): Promise<void>;
}

export interface CommandRun {
  ctx: Context;
  caller: Caller;
  /** Who asked, as the workflows record it. */
  origin: MessageOrigin;
  /** Answers in the caller's chat, split into messages Telegram accepts. */
  reply(text: string): Promise<void>;
}

export interface CommandSpec<A = unknown> {
  usage: string;
  description: string;
  args: z.ZodType<A, string[]>;
  /** Audited as `telegram.command` (state changes and requests that need confirmation). */
  audited?: boolean;
  /** True for the arguments that confirm a pending request: one-time, so they take no rate-limit window. */
  confirms?(args: A): boolean;
  run(c: CommandRun, args: A): Promise<void>;
}

/** A command whose confirmation can also come from its inline buttons (callback data `<prefix>:ok|no:<nonce>`). */
export interface ConfirmedCommand {
  /** The command the buttons confirm, e.g. `/emergency` (the origin the workflows record). */
  readonly command: string;
  readonly buttonPrefix: string;
  onButton(c: CommandRun, confirmed: boolean, nonce: string): Promise<void>;
}

export const command = <A>(spec: CommandSpec<A>): CommandSpec => spec as CommandSpec;

/** Replaces a used confirmation prompt (and so its buttons) with what became of it. */
export async function closePrompt(s: BotServices, p: PendingConfirmation, outcome: string): Promise<void> {
  if (p.messageId === undefined) return;
  await s.telegram.editMessageText(p.chatId, p.messageId, undefined, `${p.text}\n\n${outcome}`).catch((err: unknown) => s.log.debug({ err }, 'could not edit the confirmation message'));
}
