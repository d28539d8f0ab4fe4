import { Markup } from 'telegraf';
import { EmergencyCloseIncomplete, EmergencyCloseTimeout } from '../control/trading-control';
import type { BotServices, CommandRun, ConfirmedCommand } from './command';
import { closePrompt } from './command';
import { OneTimeConfirmations, codeIs, nonceIs, type PendingConfirmation } from './confirmation';
import { confirmationRefused, confirmedBy, emergencyPrompt, errorText, formatEmergency } from './format';

/**
 * /emergency: close EVERY position at market and halt, after a one-time confirmation (the inline
 * button, or `/emergency <code>` with the six digits the prompt shows), within the confirmation
 * time, by the admin who asked. The close itself is the portfolio's emergency update, sent with
 * an update id derived from the confirmation, so a retried call cannot close twice.
 * Audited as `telegram.emergency` at each stage (confirmed, done / failed, cancelled).
 */
export class EmergencyClose implements ConfirmedCommand {
  readonly command = '/emergency';
  readonly buttonPrefix = 'em';
  readonly confirmations: OneTimeConfirmations;

  constructor(
    private readonly s: BotServices,
    ttlMs: number,
  ) {
    this.confirmations = new OneTimeConfirmations(ttlMs);
  }

  async request(c: CommandRun): Promise<void> {
    const positions = await this.s.control.positions().catch((error: unknown) => ({ error }));
    const p = this.confirmations.open(c.caller.id, c.caller.chatId, this.s.now());
    p.text = emergencyPrompt(positions, p.code, this.confirmations.ttlMs);
    const sent = await c.ctx.reply(
      p.text,
      Markup.inlineKeyboard([[Markup.button.callback('🚨 Confirm: close everything', `em:ok:${p.nonce}`)], [Markup.button.callback('Cancel', `em:no:${p.nonce}`)]]),
    );
    p.messageId = sent.message_id;
    this.s.log.warn({ userId: c.caller.id }, 'emergency close requested; waiting for confirmation');
  }

  async confirmByCode(c: CommandRun, code: string): Promise<void> {
    const t = this.confirmations.take(c.caller.id, this.s.now(), codeIs(code));
    if (!t.ok) {
      this.s.log.warn({ userId: c.caller.id }, 'emergency confirmation by code refused');
      return c.reply(`❌ ${confirmationRefused('emergency', t.why, this.confirmations.ttlMs)}`);
    }
    return this.execute(c, t.pending, 'code');
  }

  async onButton(c: CommandRun, confirmed: boolean, nonce: string): Promise<void> {
    const t = this.confirmations.take(c.caller.id, this.s.now(), nonceIs(nonce));
    if (!t.ok) {
      await c.ctx.answerCbQuery(confirmationRefused('emergency', t.why, this.confirmations.ttlMs, true), { show_alert: true });
      return c.reply(`❌ ${confirmationRefused('emergency', t.why, this.confirmations.ttlMs)}`);
    }
    if (!confirmed) {
      await c.ctx.answerCbQuery('Cancelled');
      await this.s.audit('telegram.emergency', c.caller, { how: 'button', stage: 'cancelled' });
      return closePrompt(this.s, t.pending, 'Cancelled: nothing was closed.');
    }
    await c.ctx.answerCbQuery('Closing every position…');
    return this.execute(c, t.pending, 'button');
  }

  private async execute(c: CommandRun, p: PendingConfirmation, how: 'button' | 'code'): Promise<void> {
    this.s.log.warn({ userId: c.caller.id, how }, 'emergency close confirmed: closing every position');
    await this.s.audit('telegram.emergency', c.caller, { how, stage: 'confirmed' });
    await closePrompt(this.s, p, confirmedBy(c.caller, how, 'closing'));
    try {
      const results = await this.s.control.emergency(c.origin, { updateId: `telegram-emergency-${p.nonce}` });
      await c.reply(formatEmergency(results));
      await this.s.audit('telegram.emergency', c.caller, { how, stage: 'done', closed: results.flatMap((r) => r.closed.map((x) => x.symbol)) });
    } catch (err) {
      if (err instanceof EmergencyCloseIncomplete) await c.reply(formatEmergency(err.results, err.failures));
      else if (err instanceof EmergencyCloseTimeout) await c.reply(`⚠️ ${err.message}`);
      else throw err;
      await this.s.audit('telegram.emergency', c.caller, { how, stage: 'failed', error: errorText(err) });
    }
  }
}
