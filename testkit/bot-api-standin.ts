import type http from 'node:http';
import { readBody, sendJson, startLocalHttpServer, type LocalHttpServer } from './http-standin';

/**
 * A local stand-in for the Telegram Bot API, enough of it to drive the REAL telegraf bot
 * (pointed here with `telegram: { apiRoot }`): getMe, deleteWebhook, getUpdates (long poll, with
 * offsets confirming updates as Telegram does), sendMessage, editMessageText,
 * editMessageReplyMarkup, answerCallbackQuery, setMyCommands. Tests inject updates (a user's
 * text message, a press on an inline button) and read what the bot sent.
 *
 * Replies follow the Bot API's shapes ({ ok, result } / { ok: false, error_code, description });
 * an unknown method is a 404 as on the real server, so a bot calling something this stand-in
 * does not model fails loudly instead of passing by accident.
 */

export interface StandinUser {
  id: number;
  first_name?: string;
  username?: string;
}

export interface ApiCall {
  method: string;
  payload: Record<string, unknown>;
  at: number;
}

export interface BotMessage {
  message_id: number;
  chat_id: number;
  text: string;
  reply_markup?: { inline_keyboard?: { text: string; callback_data?: string }[][] };
  /** Every text this message had (sendMessage, then editMessageText). */
  history: string[];
}

interface Waiter {
  offset: number;
  limit: number;
  respond(updates: unknown[]): void;
}

type DownMode = false | 'error-502' | 'hang';

export class BotApiStandin {
  readonly calls: ApiCall[] = [];
  readonly bot = { id: 7_000_000_001, is_bot: true, first_name: 'Durable Trader', username: 'durable_trader_test_bot' };
  private readonly updates: { update_id: number }[] = [];
  private nextUpdateId = 1;
  private readonly messages = new Map<number, BotMessage[]>();
  private nextMessageId = new Map<number, number>();
  private readonly waiters = new Set<Waiter>();
  private listeners = new Set<() => void>();
  private down: DownMode = false;
  private readonly blocked = new Set<number>();
  private readonly hung = new Set<http.ServerResponse>();
  private server!: LocalHttpServer;
  apiRoot = '';

  private constructor(readonly token: string) {}

  static async start(opts: { token: string }): Promise<BotApiStandin> {
    const s = new BotApiStandin(opts.token);
    s.server = await startLocalHttpServer((req, res) => void s.handle(req, res));
    s.apiRoot = s.server.url;
    return s;
  }

  async stop(): Promise<void> {
    for (const w of this.waiters) w.respond([]);
    this.waiters.clear();
    for (const r of this.hung) r.destroy();
    await this.server.close();
  }

  /** 'error-502': every call answers 502 (Telegram down); 'hang': calls never answer; false: normal. */
  setDown(mode: DownMode): void {
    this.down = mode;
    // Calls left hanging fail now, as a dropped connection would.
    if (mode !== 'hang') for (const r of [...this.hung]) r.destroy();
  }

  /** sendMessage to this chat answers 403 (the user blocked the bot or never opened a chat). */
  blockChat(chatId: number): void {
    this.blocked.add(chatId);
  }

  // --- injecting updates ------------------------------------------------------------------

  /** A text message from `from` in a private chat with the bot (or the given group chat). */
  sendText(from: StandinUser | number, text: string, chat?: { id: number; type: 'group' | 'supergroup' | 'private' }, opts: { date?: number } = {}): number {
    const user = this.user(from);
    const entities = text.startsWith('/') ? [{ type: 'bot_command', offset: 0, length: text.split(/\s/)[0].length }] : undefined;
    return this.push({
      message: {
        message_id: this.nextId(chat?.id ?? user.id),
        from: user,
        chat: chat ? { id: chat.id, type: chat.type, title: 'test group' } : { id: user.id, type: 'private', first_name: user.first_name },
        date: opts.date ?? Math.floor(Date.now() / 1000),
        text,
        ...(entities ? { entities } : {}),
      },
    });
  }

  /** `from` presses an inline button with this callback data on a message the bot sent. */
  pressButton(from: StandinUser | number, message: BotMessage, data: string): number {
    const user = this.user(from);
    return this.push({
      callback_query: {
        id: `cq-${this.nextUpdateId}`,
        from: user,
        chat_instance: `ci-${message.chat_id}`,
        data,
        message: {
          message_id: message.message_id,
          from: this.bot,
          // Negative ids are groups, as on Telegram.
          chat: { id: message.chat_id, type: message.chat_id < 0 ? 'supergroup' : 'private' },
          date: Math.floor(Date.now() / 1000),
          text: message.text,
          ...(message.reply_markup ? { reply_markup: message.reply_markup } : {}),
        },
      },
    });
  }

  // --- reading what the bot did -----------------------------------------------------------

  messagesTo(chatId: number): BotMessage[] {
    return this.messages.get(chatId) ?? [];
  }

  callsOf(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  /** True once every injected update was confirmed by a later getUpdates offset. */
  get pendingUpdates(): number {
    return this.updates.length;
  }

  async waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v !== undefined && v !== false) return v;
      const left = deadline - Date.now();
      if (left <= 0) {
        const sent = [...this.messages.entries()].flatMap(([chat, ms]) => ms.map((m) => `  to ${chat}: ${m.text.slice(0, 200).replace(/\n/g, ' | ')}`));
        throw new Error(`bot API stand-in: timed out after ${timeoutMs} ms waiting for ${what}; calls so far: ${this.calls.map((c) => c.method).join(', ')}; messages sent:\n${sent.join('\n') || '  none'}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, Math.min(left, 200));
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.listeners.add(done);
      });
    }
  }

  /** The first message to `chatId` after index `since` (count of messages before) that matches. */
  waitForMessage(chatId: number, match: RegExp | ((m: BotMessage) => boolean), opts: { since?: number; timeoutMs?: number } = {}): Promise<BotMessage> {
    const test = typeof match === 'function' ? match : (m: BotMessage) => match.test(m.text);
    return this.waitFor(`a message to ${chatId} matching ${String(match)}`, () => this.messagesTo(chatId).slice(opts.since ?? 0).find(test), opts.timeoutMs);
  }

  /** Resolves once the bot is long-polling (it has asked for updates and waits). */
  waitForPolling(timeoutMs = 10_000): Promise<true> {
    return this.waitFor('the bot to long-poll getUpdates', () => this.waiters.size > 0 || undefined, timeoutMs);
  }

  /** Resolves once the bot confirmed (by offset) every update injected so far: it has taken them all. */
  waitForAllTaken(timeoutMs = 10_000): Promise<true> {
    return this.waitFor('the bot to take every update', () => (this.updates.length === 0 && this.waiters.size > 0) || undefined, timeoutMs);
  }

  // --- the server -------------------------------------------------------------------------

  private user(from: StandinUser | number): StandinUser & { is_bot: false; first_name: string } {
    const u = typeof from === 'number' ? { id: from } : from;
    return { is_bot: false, first_name: u.first_name ?? `user${u.id}`, ...u };
  }

  private nextId(chatId: number): number {
    const id = (this.nextMessageId.get(chatId) ?? 1000) + 1;
    this.nextMessageId.set(chatId, id);
    return id;
  }

  private push(update: Record<string, unknown>): number {
    const update_id = this.nextUpdateId++;
    this.updates.push({ update_id, ...update });
    for (const w of [...this.waiters]) this.serve(w);
    return update_id;
  }

  private serve(w: Waiter): boolean {
    const ready = this.updates.filter((u) => u.update_id >= w.offset).slice(0, w.limit);
    if (ready.length === 0) return false;
    this.waiters.delete(w);
    w.respond(ready);
    return true;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
    this.listeners.clear();
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const m = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(req.url ?? '');
    let body: string;
    try {
      body = await readBody(req);
    } catch {
      return; // the client went away before its request ended: nothing to answer
    }
    const reply = (status: number, json: unknown) => {
      if (res.writableEnded || res.destroyed) return;
      sendJson(res, status, json);
    };
    const fail = (code: number, description: string) => reply(code, { ok: false, error_code: code, description });
    if (!m) return fail(404, 'Not Found');
    const [, token, method] = m;
    if (token !== this.token) return fail(401, 'Unauthorized');
    let payload: Record<string, unknown>;
    try {
      payload = body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } catch {
      return fail(400, 'Bad Request: invalid JSON');
    }
    if (method !== 'getUpdates') {
      this.calls.push({ method, payload, at: Date.now() });
      this.notify();
    }
    if (this.down === 'error-502') return reply(502, { ok: false, error_code: 502, description: 'Bad Gateway' });
    if (this.down === 'hang') {
      this.hung.add(res);
      res.on('close', () => this.hung.delete(res));
      return;
    }
    const ok = (result: unknown) => reply(200, { ok: true, result });
    switch (method) {
      case 'getMe':
        return ok(this.bot);
      case 'deleteWebhook':
      case 'setMyCommands':
      case 'answerCallbackQuery':
        return ok(true);
      case 'getUpdates':
        return this.getUpdates(payload, req, ok);
      case 'sendMessage':
        return this.sendMessage(payload, ok, fail);
      case 'editMessageText':
      case 'editMessageReplyMarkup':
        return this.editMessage(method, payload, ok, fail);
      default:
        return fail(404, `Not Found: method ${method} is not modelled by the stand-in`);
    }
  }

  private getUpdates(payload: Record<string, unknown>, req: http.IncomingMessage, ok: (r: unknown) => void): void {
    const offset = Number(payload.offset ?? 0);
    // An offset confirms every update before it: Telegram forgets them.
    if (offset > 0) {
      while (this.updates.length > 0 && this.updates[0].update_id < offset) this.updates.shift();
    }
    const w: Waiter = { offset, limit: Number(payload.limit ?? 100), respond: ok };
    if (this.serve(w)) return;
    const timeoutS = Number(payload.timeout ?? 0);
    if (timeoutS <= 0) return ok([]);
    // The bot aborts its poll when it stops. The socket is kept alive across polls, so the
    // listener goes with the poll it belongs to (else they pile up, one per poll).
    const aborted = () => {
      clearTimeout(t);
      this.waiters.delete(w);
    };
    w.respond = (updates) => {
      req.socket.off('close', aborted);
      ok(updates);
    };
    this.waiters.add(w);
    this.notify();
    const t = setTimeout(() => {
      if (this.waiters.delete(w)) w.respond([]);
    }, timeoutS * 1000);
    req.socket.on('close', aborted);
  }

  private sendMessage(payload: Record<string, unknown>, ok: (r: unknown) => void, fail: (code: number, d: string) => void): void {
    const chatId = Number(payload.chat_id);
    const text = payload.text;
    if (!Number.isFinite(chatId)) return fail(400, 'Bad Request: chat_id is empty');
    if (this.blocked.has(chatId)) return fail(403, 'Forbidden: bot was blocked by the user');
    if (typeof text !== 'string' || text.length === 0) return fail(400, 'Bad Request: message text is empty');
    if (text.length > 4096) return fail(400, 'Bad Request: message is too long');
    const msg: BotMessage = {
      message_id: this.nextId(chatId),
      chat_id: chatId,
      text,
      reply_markup: payload.reply_markup as BotMessage['reply_markup'],
      history: [text],
    };
    this.messages.set(chatId, [...this.messagesTo(chatId), msg]);
    this.notify();
    ok({ message_id: msg.message_id, from: this.bot, chat: { id: chatId, type: chatId < 0 ? 'supergroup' : 'private' }, date: Math.floor(Date.now() / 1000), text, reply_markup: msg.reply_markup });
  }

  private editMessage(method: string, payload: Record<string, unknown>, ok: (r: unknown) => void, fail: (code: number, d: string) => void): void {
    const chatId = Number(payload.chat_id);
    const msg = this.messagesTo(chatId).find((x) => x.message_id === Number(payload.message_id));
    if (!msg) return fail(400, 'Bad Request: message to edit not found');
    if (method === 'editMessageText') {
      if (typeof payload.text !== 'string' || payload.text.length === 0) return fail(400, 'Bad Request: message text is empty');
      msg.text = payload.text;
      msg.history.push(payload.text);
    }
    // Editing without reply_markup removes the inline keyboard, as Telegram does.
    msg.reply_markup = payload.reply_markup as BotMessage['reply_markup'];
    this.notify();
    ok({ message_id: msg.message_id, from: this.bot, chat: { id: chatId, type: 'private' }, date: Math.floor(Date.now() / 1000), text: msg.text, reply_markup: msg.reply_markup });
  }
}
