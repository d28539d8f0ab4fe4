import assert from 'node:assert/strict';
import { AccessControl, CommandRateLimiter, type Arrival, type Caller } from '../../telegram/access';
import { OneTimeConfirmations, codeIs, nonceIs, randomSecrets } from '../../telegram/confirmation';
import { confirmationRefused } from '../../telegram/format';

/**
 * The bot's pure parts, without a bot: who is admitted (allow-list on the sender, rate limits,
 * staleness) and the one-time confirmation state machine behind /emergency and /retrain. The
 * end-to-end behaviour through telegraf is in telegram.test.ts.
 */

const ADMIN = 424_242;
const ADMIN_2 = 515_151;
const STRANGER = 999_001;

const privateChat = (id: number): Caller => ({ id, chatId: id, chatType: 'private' });
const inGroup = (id: number): Caller => ({ id, chatId: -100_777, chatType: 'supergroup' });
const text = (caller: Caller, sentAtMs?: number): Arrival => ({ caller, button: false, command: false, sentAtMs });
const cmd = (caller: Caller, sentAtMs?: number): Arrival => ({ caller, button: false, command: true, sentAtMs });
const press = (caller: Caller): Arrival => ({ caller, button: true, command: false });

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

describe('AccessControl (pure)', () => {
  const access = () => new AccessControl({ adminIds: [ADMIN, ADMIN_2], rateLimitMs: 5_000, staleAfterMs: 120_000 });

  it('refuses an empty admin list: nobody could command the bot', () => {
    assert.throws(() => new AccessControl({ adminIds: [], rateLimitMs: 5_000, staleAfterMs: 120_000 }), /TELEGRAM_ADMIN_IDS is empty/);
  });

  it('authority is the sender, not the chat: an admin in a group is obeyed, a stranger in it is refused', () => {
    const a = access();
    assert.deepEqual(a.admit(cmd(inGroup(ADMIN), 0), 0), { verdict: 'command' });
    assert.deepEqual(a.admit(cmd(inGroup(STRANGER), 0), 0), { verdict: 'refuse', suppressedBefore: 0 });
    assert.equal(a.isAdmin(ADMIN_2), true);
    assert.equal(a.isAdmin(STRANGER), false);
  });

  it("a stranger's attempts (command, button, private text) are refused once per window; group chatter is no attempt", () => {
    const a = access();
    assert.deepEqual(a.admit(text(inGroup(STRANGER)), 0), { verdict: 'ignore', why: 'stranger chatter' });
    assert.deepEqual(a.admit(text(privateChat(STRANGER)), 0), { verdict: 'refuse', suppressedBefore: 0 });
    assert.deepEqual(a.admit(press(privateChat(STRANGER)), 1_000), { verdict: 'ignore', why: 'stranger rate-limited' });
    assert.deepEqual(a.admit(cmd(privateChat(STRANGER), 2_000), 2_000), { verdict: 'ignore', why: 'stranger rate-limited' });
    assert.deepEqual(a.admit(press(privateChat(STRANGER)), 5_000), { verdict: 'refuse', suppressedBefore: 2 }, 'the next refusal counts what was ignored');
  });

  it("an admin's button goes to the confirmation; plain text in private gets one hint per window, in a group nothing", () => {
    const a = access();
    assert.deepEqual(a.admit(press(privateChat(ADMIN)), 0), { verdict: 'button' });
    assert.deepEqual(a.admit(text(privateChat(ADMIN), 0), 0), { verdict: 'hint' });
    assert.deepEqual(a.admit(text(privateChat(ADMIN), 0), 1), { verdict: 'ignore', why: 'hint rate-limited' });
    assert.deepEqual(a.admit(text(inGroup(ADMIN_2), 0), 0), { verdict: 'ignore', why: 'not a command' });
  });

  it('a command older than the staleness limit (sent while the bot was offline) is not executed', () => {
    const a = access();
    const now = 1_000_000_000;
    assert.deepEqual(a.admit(cmd(privateChat(ADMIN), now - 120_000), now), { verdict: 'command' }, 'exactly at the limit still counts');
    assert.deepEqual(a.admit(cmd(privateChat(ADMIN), now - 120_001), now), { verdict: 'stale', ageMs: 120_001 });
  });

  it('commands take a window per admin; answers to mistakes have their own window and take none', () => {
    const a = access();
    assert.equal(a.mayAnswerMistake(ADMIN, 0), true);
    assert.equal(a.mayAnswerMistake(ADMIN, 1), false, 'one answer to mistakes per window');
    assert.deepEqual(a.takeCommandWindow(ADMIN, 2), { allowed: true }, 'a typo did not use up the command window');
    assert.deepEqual(a.takeCommandWindow(ADMIN, 1_000), { allowed: false, retryInMs: 4_002, tell: true });
    assert.deepEqual(a.takeCommandWindow(ADMIN, 1_500), { allowed: false, retryInMs: 3_502, tell: false });
    assert.deepEqual(a.takeCommandWindow(ADMIN_2, 1_500), { allowed: true }, 'admins are limited separately');
    assert.deepEqual(a.takeCommandWindow(ADMIN, 5_002), { allowed: true });
  });

  it('a zero rate limit lets every command through', () => {
    const a = new AccessControl({ adminIds: [ADMIN], rateLimitMs: 0, staleAfterMs: 120_000 });
    for (let t = 0; t < 5; t++) assert.deepEqual(a.takeCommandWindow(ADMIN, 0), { allowed: true });
  });
});

describe('OneTimeConfirmations (pure)', () => {
  let seq = 0;
  const secrets = { nonce: () => `nonce${++seq}`, code: () => String(100_000 + seq) };
  const fresh = (ttlMs = 60_000) => new OneTimeConfirmations(ttlMs, secrets);

  it('the right code within the time is accepted once; the code is single-use', () => {
    const c = fresh();
    const p = c.open(ADMIN, ADMIN, 1_000);
    assert.equal(p.expiresAt, 61_000);
    assert.equal(p.chatId, ADMIN);
    const t = c.take(ADMIN, 61_000, codeIs(p.code));
    assert.ok(t.ok && t.pending === p, 'accepted at the last valid moment');
    assert.deepEqual(c.take(ADMIN, 61_000, codeIs(p.code)), { ok: false, why: 'none' });
  });

  it('a wrong code cancels the confirmation: the right one afterwards finds nothing', () => {
    const c = fresh();
    const p = c.open(ADMIN, ADMIN, 0);
    assert.deepEqual(c.take(ADMIN, 1, codeIs('000000')), { ok: false, why: 'mismatch' });
    assert.deepEqual(c.take(ADMIN, 2, codeIs(p.code)), { ok: false, why: 'none' });
    assert.deepEqual(c.take(ADMIN, 3, nonceIs(p.nonce)), { ok: false, why: 'none' }, 'its button is dead too');
  });

  it('expires after the confirmation time, and the late attempt uses it up', () => {
    const c = fresh(400);
    const p = c.open(ADMIN, ADMIN, 0);
    assert.deepEqual(c.take(ADMIN, 401, nonceIs(p.nonce)), { ok: false, why: 'expired' });
    assert.deepEqual(c.take(ADMIN, 402, nonceIs(p.nonce)), { ok: false, why: 'none' });
  });

  it("is per admin: another admin cannot confirm (or cancel) someone else's request", () => {
    const c = fresh();
    const p = c.open(ADMIN, -100_888, 0);
    assert.deepEqual(c.take(ADMIN_2, 1, nonceIs(p.nonce)), { ok: false, why: 'none' });
    const t = c.take(ADMIN, 2, nonceIs(p.nonce));
    assert.ok(t.ok, "the asker's own confirmation survived the other admin's press");
  });

  it('a new request replaces the old one: the old button no longer confirms, and pressing it cancels the new one', () => {
    const c = fresh();
    const old = c.open(ADMIN, ADMIN, 0);
    const now = c.open(ADMIN, ADMIN, 10);
    assert.notEqual(old.nonce, now.nonce);
    assert.deepEqual(c.take(ADMIN, 20, nonceIs(old.nonce)), { ok: false, why: 'mismatch' });
    assert.deepEqual(c.take(ADMIN, 21, nonceIs(now.nonce)), { ok: false, why: 'none' });
  });

  it('codes are compared whole: a prefix or a longer string is no match', () => {
    const p = fresh().open(ADMIN, ADMIN, 0);
    assert.equal(codeIs(p.code)(p), true);
    assert.equal(codeIs(p.code.slice(0, 5))(p), false);
    assert.equal(codeIs(`${p.code}0`)(p), false);
  });

  it('real secrets: six-digit codes, nonces that fit the callback data, different every time', () => {
    const codes = new Set<string>();
    const nonces = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const code = randomSecrets.code();
      const nonce = randomSecrets.nonce();
      assert.match(code, /^\d{6}$/);
      assert.match(nonce, /^[A-Za-z0-9_-]{12}$/, 'callback data is `em:ok:<nonce>` within 64 bytes');
      codes.add(code);
      nonces.add(nonce);
    }
    assert.equal(nonces.size, 200);
    assert.ok(codes.size > 190, `codes repeat rarely (${codes.size}/200 distinct)`);
  });

  it('the refusals tell the admin what to do next', () => {
    assert.equal(confirmationRefused('emergency', 'none', 60_000), 'No emergency close is waiting for your confirmation: send /emergency first.');
    assert.equal(confirmationRefused('retrain', 'expired', 60_000), 'That confirmation expired (60 s): send /retrain again.');
    assert.equal(confirmationRefused('emergency', 'mismatch', 60_000), 'Wrong confirmation: nothing was closed and the confirmation is cancelled. Send /emergency again.');
    assert.equal(confirmationRefused('retrain', 'mismatch', 60_000, true), 'Wrong confirmation: nothing was started and the confirmation is cancelled.', 'the button pop-up is short');
  });
});
