import { Markup } from 'telegraf';
import { retrainScheduleView, triggerRetrainNow } from '../control/retrain';
import type { BotServices, CommandRun, ConfirmedCommand } from './command';
import { closePrompt } from './command';
import { OneTimeConfirmations, nonceIs, type PendingConfirmation } from './confirmation';
import { commandFailed, confirmationRefused, confirmedBy, errorText, formatRetrainTrigger, noRetrainSchedule, retrainAlreadyRunning, retrainPrompt } from './format';

/**
 * /retrain: run the retrain Schedule (`trader schedule retrain`) once, now, after a one-step
 * confirmation (the inline button or `/retrain confirm`, by the admin who asked, within the
 * confirmation time). A retrain costs an hour of CPU on the training worker and may promote a
 * new model to every trader, so a stray tap must not start one. Without a schedule, or with a
 * run already in progress, the bot says so and asks for nothing. The reply names the workflow
 * the trigger started. Audited as `telegram.retrain` (cancelled, or the trigger's outcome).
 */
export class RetrainNow implements ConfirmedCommand {
  readonly command = '/retrain';
  readonly buttonPrefix = 'rt';
  readonly confirmations: OneTimeConfirmations;

  constructor(
    private readonly s: BotServices,
    ttlMs: number,
    readonly scheduleId: string,
  ) {
    this.confirmations = new OneTimeConfirmations(ttlMs);
  }

  async request(c: CommandRun): Promise<void> {
    const view = await retrainScheduleView(this.s.control.client, this.scheduleId);
    if (!view) return c.reply(noRetrainSchedule(this.scheduleId));
    if (view.running.length > 0) return c.reply(retrainAlreadyRunning(view.running[0]));
    const p = this.confirmations.open(c.caller.id, c.caller.chatId, this.s.now());
    p.text = retrainPrompt(view, this.confirmations.ttlMs);
    const sent = await c.ctx.reply(p.text, Markup.inlineKeyboard([[Markup.button.callback('🧠 Confirm: retrain now', `rt:ok:${p.nonce}`), Markup.button.callback('Cancel', `rt:no:${p.nonce}`)]]));
    p.messageId = sent.message_id;
    this.s.log.info({ userId: c.caller.id, scheduleId: this.scheduleId }, 'retrain requested; waiting for confirmation');
  }

  /** `/retrain confirm`: the word carries no secret; what makes it safe is that only the asker's own pending request is taken. */
  async confirmByCommand(c: CommandRun): Promise<void> {
    const t = this.confirmations.take(c.caller.id, this.s.now(), () => true);
    if (!t.ok) return c.reply(`❌ ${confirmationRefused('retrain', t.why, this.confirmations.ttlMs)}`);
    return this.start(c, t.pending, 'command');
  }

  async onButton(c: CommandRun, confirmed: boolean, nonce: string): Promise<void> {
    const t = this.confirmations.take(c.caller.id, this.s.now(), nonceIs(nonce));
    if (!t.ok) {
      await c.ctx.answerCbQuery(confirmationRefused('retrain', t.why, this.confirmations.ttlMs, true), { show_alert: true });
      return c.reply(`❌ ${confirmationRefused('retrain', t.why, this.confirmations.ttlMs)}`);
    }
    if (!confirmed) {
      await c.ctx.answerCbQuery('Cancelled');
      await this.s.audit('telegram.retrain', c.caller, { how: 'button', stage: 'cancelled', scheduleId: this.scheduleId });
      return closePrompt(this.s, t.pending, 'Cancelled: no retrain was started.');
    }
    await c.ctx.answerCbQuery('Starting the retrain…');
    // A button press is no command run: its failure is answered here, not by the command table.
    await this.start(c, t.pending, 'button').catch((err: unknown) => c.reply(commandFailed('retrain', err)));
  }

  private async start(c: CommandRun, p: PendingConfirmation, how: 'button' | 'command'): Promise<void> {
    await closePrompt(this.s, p, confirmedBy(c.caller, how, 'starting'));
    try {
      const r = await triggerRetrainNow(this.s.control.client, { scheduleId: this.scheduleId });
      this.s.log.info({ userId: c.caller.id, how, ...r }, 'retrain triggered from Telegram');
      await this.s.audit('telegram.retrain', c.caller, { how, stage: r.outcome, scheduleId: this.scheduleId, ...('workflowId' in r ? { workflowId: r.workflowId } : {}) });
      await c.reply(formatRetrainTrigger(r));
    } catch (err) {
      this.s.log.error({ err, userId: c.caller.id }, 'retrain trigger failed');
      await this.s.audit('telegram.retrain', c.caller, { how, stage: 'failed', scheduleId: this.scheduleId, error: errorText(err) });
      throw err;
    }
  }
}
