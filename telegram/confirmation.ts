import crypto from 'node:crypto';

/**
 * The one-time confirmation a dangerous command waits for (/emergency, /retrain): per admin, at
 * most one pending, valid for a fixed time, used up by the first attempt whatever its outcome,
 * so a wrong code cancels it and an old button is dead once a newer request replaced it.
 * Confirmations are per user: in a group of admins, nobody confirms someone else's request.
 *
 * No clock of its own (every method takes `now`) and the secrets are injectable, so the state
 * machine is tested without a bot.
 */

export interface PendingConfirmation {
  /** In the inline buttons' callback data; never shown to the user. */
  nonce: string;
  /** Six digits the user can type back instead of pressing the button. */
  code: string;
  expiresAt: number;
  /** Where the prompt was sent, and which message it is, to edit it once it is used. */
  chatId: number;
  messageId?: number;
  text: string;
}

/** none: nothing pending for this user; expired: too late; mismatch: wrong code or a stale button (the pending one is cancelled). */
export type ConfirmationRefusal = 'none' | 'expired' | 'mismatch';

export type ConfirmationTake = { ok: true; pending: PendingConfirmation } | { ok: false; why: ConfirmationRefusal };

export interface ConfirmationSecrets {
  nonce(): string;
  code(): string;
}

export const randomSecrets: ConfirmationSecrets = {
  nonce: () => crypto.randomBytes(9).toString('base64url'),
  code: () => String(crypto.randomInt(0, 1_000_000)).padStart(6, '0'),
};

export class OneTimeConfirmations {
  // One entry per admin at most, replaced by the next request: the admin list bounds the map.
  private readonly pending = new Map<number, PendingConfirmation>();

  constructor(
    readonly ttlMs: number,
    private readonly secrets: ConfirmationSecrets = randomSecrets,
  ) {}

  /** A new confirmation for `userId`; any earlier one of theirs is void from now on. */
  open(userId: number, chatId: number, now: number): PendingConfirmation {
    const p: PendingConfirmation = { nonce: this.secrets.nonce(), code: this.secrets.code(), expiresAt: now + this.ttlMs, chatId, text: '' };
    this.pending.set(userId, p);
    return p;
  }

  /** Takes the pending confirmation if `matches` accepts it; any attempt consumes it. */
  take(userId: number, now: number, matches: (p: PendingConfirmation) => boolean): ConfirmationTake {
    const p = this.pending.get(userId);
    if (!p) return { ok: false, why: 'none' };
    this.pending.delete(userId);
    if (now > p.expiresAt) return { ok: false, why: 'expired' };
    if (!matches(p)) return { ok: false, why: 'mismatch' };
    return { ok: true, pending: p };
  }
}

/** The typed code, compared in constant time (a code guessed by timing would be no confirmation). */
export const codeIs =
  (code: string) =>
  (p: PendingConfirmation): boolean =>
    p.code.length === code.length && crypto.timingSafeEqual(Buffer.from(p.code), Buffer.from(code));

export const nonceIs =
  (nonce: string) =>
  (p: PendingConfirmation): boolean =>
    p.nonce === nonce;
