import type { AlertDispatcherStats } from '../activities/alerts';
import type { StatusAction, StatusChangeResult, TradingStatusReport } from '../control/trading-control';
import type { RetrainScheduleView, RetrainTrigger } from '../control/retrain';
import type { EquitySnapshot, Trade, TradeSummary, TradeTotals } from '../ledger/types';
import { TELEGRAM_TEXT_LIMIT } from '../lib/alerts';
import { msToTimeframe } from '../lib/candles';
import type { AppConfig } from '../infra/config';
import type { EmergencyCloseResult, OpenPositionView, PortfolioStateView, TradingStatus } from '../lib/contracts/trading';
import type { ConfirmationRefusal } from './confirmation';

/**
 * Every reply the bot writes, as pure functions of what the workflows and the ledger answered.
 * Plain text (no Markdown/HTML parse mode: symbols, ids and reasons come from outside and would
 * need escaping), money with two decimals, quantities and prices as the exchange gave them.
 */

type TradingMode = AppConfig['mode'];

const STATUS_ICON: Record<TradingStatus, string> = { active: '🟢', paused: '⏸', 'reduce-only': '🟡', halted: '🛑' };
export const num = (x: number, digits = 8) => String(Number(x.toFixed(digits)));
export const money = (x: number) => x.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
export const signed = (x: number) => `${x >= 0 ? '+' : ''}${money(x)}`;
export const pct = (x: number) => `${(x * 100).toFixed(2)}%`;
export const utc = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
const seconds = (ms: number) => `${Math.round(ms / 1000)} s`;

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Splits at line breaks into messages Telegram accepts. */
export function chunks(text: string, limit = TELEGRAM_TEXT_LIMIT): string[] {
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

// --- help and access --------------------------------------------------------------------------

export function helpText(o: { exchange: string; mode: TradingMode; adminId: number; commands: { usage: string; description: string }[]; exampleSymbol: string; rateLimitMs: number }): string {
  return [
    `durable-trader kill switch (${o.exchange}, ${o.mode}). You are admin ${o.adminId}.`,
    '',
    ...o.commands.map((s) => `${s.usage} — ${s.description}`),
    '',
    `SYMBOL is e.g. ${o.exampleSymbol} (case and separator do not matter). One command per ${Math.round(o.rateLimitMs / 1000)} s.`,
  ].join('\n');
}

export const notAuthorized = (userId: number) => `⛔ Not authorized. This bot only takes commands from its admins. Your Telegram user id is ${userId}; an admin can add it to TELEGRAM_ADMIN_IDS.`;
export const HINT = 'Send /help for the commands.';
export const staleCommand = (name: string, sentAtMs: number) => `Ignored /${name} sent at ${utc(sentAtMs)}: the bot was offline then. Send it again if you still want it.`;
export const tooFast = (name: string, rateLimitMs: number, retryInMs: number) => `⏳ Too fast: one command per ${Math.round(rateLimitMs / 1000)} s. /${name} was ignored; try again in ${Math.ceil(retryInMs / 1000)} s.`;
export const usage = (spec: { usage: string }, problems: string[]) => `Usage: ${spec.usage} — ${problems.join('; ')}`;
export const unknownCommand = (name: string) => `Unknown command /${name}. Send /help for the list.`;
export const unknownSymbol = (command: string, symbol: string, known: string[]) =>
  known.length > 0 ? `Unknown symbol ${symbol}. Known symbols: ${known.join(', ')}. Example: /${command} ${known[0]}` : `Unknown symbol ${symbol}: no symbol workflow is running.`;
export const commandFailed = (command: string, err: unknown) => `⚠️ /${command} failed: ${errorText(err)}`;
export const noLedger = (what: string) => `${what} is not available: this bot runs without a ledger connection (set DATABASE_URL for the telegram worker).`;

// --- status and status changes ----------------------------------------------------------------

export function formatStatus(r: TradingStatusReport, mode: TradingMode): string {
  const lines = [`durable-trader · ${r.exchange} · ${mode} · account ${r.account}`];
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

const ACTION_WORDS: Record<StatusAction, { done: string; icon: string; note: string }> = {
  pause: { done: 'paused', icon: '⏸', note: 'No new entries; stop-loss and take-profit exits keep working. /resume to undo.' },
  resume: { done: 'resumed', icon: '▶️', note: 'New entries allowed again.' },
  reduceOnly: { done: 'set to reduce-only', icon: '🟡', note: 'Only exits from now on; open positions may be closed, never increased. /resume to undo.' },
};

export interface StatusChangeSeen {
  /** The command named one symbol. */
  oneSymbol: boolean;
  result: StatusChangeResult;
  /** Symbols with a running workflow. */
  running: ReadonlySet<string>;
  /** Running symbols watched for the target status, and what each showed last. */
  watched: string[];
  seen: Record<string, TradingStatus | 'unreachable'>;
  target: TradingStatus;
  waitedMs: number;
}

export function formatStatusChange(s: StatusChangeSeen): string {
  const { action } = s.result;
  const words = ACTION_WORDS[action];
  const confirmed = s.watched.filter((x) => s.seen[x] === s.target);
  const lines = [`${words.icon} ${s.oneSymbol ? s.result.symbols[0] : 'All symbols'} ${words.done}${confirmed.length > 0 ? `: ${confirmed.join(', ')} confirmed` : ''}.`, words.note];
  for (const x of s.watched.filter((w) => s.seen[w] !== s.target)) {
    lines.push(`⚠️ ${x}: still ${s.seen[x]} after ${seconds(s.waitedMs)}${action === 'resume' && s.seen[x] !== 'unreachable' ? ' (a tripped kill switch lifts only with /resume for all symbols)' : ''}`);
  }
  for (const x of s.result.symbols.filter((y) => !s.running.has(y))) lines.push(`${x}: not running; the portfolio applies it when it starts.`);
  for (const f of s.result.failures) lines.push(`⚠️ ${f.symbol}: not reached (${f.error})`);
  if (s.result.via === 'direct') lines.push('(The portfolio workflow is not running: sent to each symbol workflow directly.)');
  return lines.join('\n');
}

// --- positions, metrics and the ledger ----------------------------------------------------------

export function formatPositions(ps: OpenPositionView[]): string {
  if (ps.length === 0) return 'No open positions.';
  const lines = ps.map(
    (p) =>
      `• ${p.symbol}: LONG ${num(p.qty)} @ ${num(p.entryPrice)} since ${utc(p.entryTime)}; mark ${p.markPrice !== null ? num(p.markPrice) : '-'}, uPnL ${p.unrealizedPnl !== null ? signed(p.unrealizedPnl) : '-'}; stop ${p.stopPrice !== null ? num(p.stopPrice) : '-'}, target ${p.targetPrice !== null ? num(p.targetPrice) : '-'}`,
  );
  return [`${plural(ps.length, 'open position')}:`, ...lines].join('\n');
}

export function winRate(t: TradeTotals): string {
  if (t.trades === 0) return 'no closed trades';
  return `${((t.wins / t.trades) * 100).toFixed(1)}% (${t.wins}/${t.trades})`;
}

/** `trades`: the ledger's closed trades in aggregate, or null without a ledger. */
export function formatMetrics(r: TradingStatusReport, mode: TradingMode, trades: TradeTotals | null, alerts: AlertDispatcherStats | null): string {
  const realized = r.symbols.reduce((a, s) => a + s.realizedPnl, 0);
  const closedTrades = r.symbols.reduce((a, s) => a + s.tradesClosed, 0);
  const open = r.symbols.flatMap((s) => (s.position ? [s.position] : []));
  const unrealized = open.reduce((a, p) => a + (p.unrealizedPnl ?? 0), 0);
  const exposure = open.reduce((a, p) => a + p.qty * (p.markPrice ?? p.entryPrice), 0);
  const equity = r.portfolio?.equity ?? null;
  const lines = [
    `📊 Metrics · ${r.exchange} · ${mode}`,
    `Realized PnL: ${signed(realized)} over ${plural(closedTrades, 'closed trade')}`,
    `Unrealized PnL: ${signed(unrealized)} on ${plural(open.length, 'open position')}`,
    `Exposure: ${money(exposure)}${equity ? ` (${pct(exposure / equity)} of equity ${money(equity)})` : ''}`,
    `Drawdown: ${r.portfolio?.drawdown != null ? pct(r.portfolio.drawdown) : 'n/a (portfolio not running)'}`,
  ];
  lines.push(trades ? `Win rate: ${winRate(trades)} (ledger)` : 'Win rate: n/a (no ledger connection)');
  if (alerts) {
    lines.push(`Alerts: ${alerts.sent} sent, ${alerts.waiting} waiting, ${alerts.droppedFull + alerts.evicted + alerts.droppedSendFailed + alerts.droppedStale} dropped${alerts.telegramDown ? ' (Telegram unreachable)' : ''}`);
  }
  return lines.join('\n');
}

/** The last closed trades, oldest first (the ledger's order). */
export function formatTrades(trades: Trade[]): string {
  if (trades.length === 0) return 'No closed trades yet.';
  return [
    `Last ${plural(trades.length, 'closed trade')}:`,
    ...trades.map((t) => `• ${t.symbol} ${num(Number(t.qty))}: ${t.entryPrice} -> ${t.exitPrice}, PnL ${signed(Number(t.pnl))} (${t.exitReason ?? 'exit'}, ${utc(t.exitTime.getTime())})`),
  ].join('\n');
}

/** `s`: the ledger's summary with `since` = [start of the UTC day, 7 days ago]. */
export function formatProfit(s: TradeSummary): string {
  const [today, week] = s.since;
  const lines = [
    '💵 Profit (realized, net of fees)',
    `Today (UTC): ${signed(Number(today.pnl))} over ${plural(today.trades, 'trade')}`,
    `7 days: ${signed(Number(week.pnl))} over ${week.trades}`,
    `All time: ${signed(Number(s.all.pnl))} over ${s.all.trades}; win rate ${winRate(s.all)}`,
  ];
  if (s.best && s.worst) lines.push(`Best ${s.best.symbol} ${signed(Number(s.best.pnl))}, worst ${s.worst.symbol} ${signed(Number(s.worst.pnl))}`);
  return lines.join('\n');
}

/** The windows formatProfit reports: the start of today (UTC) and 7 days before `now`. */
export function profitWindows(now: number): Date[] {
  const dayStart = new Date(now);
  dayStart.setUTCHours(0, 0, 0, 0);
  return [dayStart, new Date(now - 7 * 86_400_000)];
}

/** From the ledger's latest equity snapshot, else the portfolio workflow's equity (null: not running). */
export function formatBalance(initialCapital: number, snapshot: EquitySnapshot | null | undefined, portfolio: PortfolioStateView | null): string {
  const vsInitial = (eq: number) => `Initial capital ${money(initialCapital)}: ${signed(eq - initialCapital)} (${pct((eq - initialCapital) / initialCapital)})`;
  if (snapshot) {
    const eq = Number(snapshot.equity);
    const dd = snapshot.drawdown === null ? '' : `\nDrawdown ${pct(Number(snapshot.drawdown))}${snapshot.peakEquity === null ? '' : ` from peak ${money(Number(snapshot.peakEquity))}`}`;
    return [`💰 Equity ${money(eq)}, cash ${money(Number(snapshot.cash))}, exposure ${money(Number(snapshot.exposure))} (snapshot ${utc(snapshot.ts.getTime())})${dd}`, vsInitial(eq)].join('\n');
  }
  if (portfolio?.equity == null) return `No equity figure yet (no ledger snapshot; portfolio ${portfolio ? 'has not checked yet' : 'not running'}). Initial capital: ${money(initialCapital)}.`;
  return [`💰 Equity ${money(portfolio.equity)} (portfolio workflow; peak ${money(portfolio.peakEquity ?? portfolio.equity)}, drawdown ${pct(portfolio.drawdown ?? 0)})`, vsInitial(portfolio.equity)].join('\n');
}

// --- confirmations ------------------------------------------------------------------------------

/** Why a confirmation was not accepted; `button`: the short form for the button's pop-up. */
export function confirmationRefused(command: 'emergency' | 'retrain', why: ConfirmationRefusal, ttlMs: number, button = false): string {
  const nothing = command === 'emergency' ? 'nothing was closed' : 'nothing was started';
  const what = command === 'emergency' ? 'emergency close' : 'retrain';
  switch (why) {
    case 'none':
      return `No ${what} is waiting for your confirmation: send /${command} first.`;
    case 'expired':
      return `That confirmation expired (${seconds(ttlMs)}): send /${command} again.`;
    case 'mismatch':
      return `Wrong confirmation: ${nothing} and the confirmation is cancelled.${button ? '' : ` Send /${command} again.`}`;
  }
}

// --- emergency close ----------------------------------------------------------------------------

export function emergencyPrompt(positions: OpenPositionView[] | { error: unknown }, code: string, ttlMs: number): string {
  const open = Array.isArray(positions)
    ? positions.length > 0
      ? `Open now: ${positions.map((p) => `${p.symbol} ${num(p.qty)}`).join(', ')}.`
      : 'No position is open right now (every symbol is halted all the same).'
    : `(Could not read the positions: ${errorText(positions.error)}.)`;
  return [
    '🚨 EMERGENCY CLOSE: closes every open position at market, cancels working orders and halts every symbol.',
    open,
    `Confirm within ${seconds(ttlMs)}: press the button, or send /emergency ${code}`,
  ].join('\n');
}

export const confirmedBy = (who: { id: number; username?: string }, how: string, doing: string) => `✅ Confirmed by ${who.username ? '@' + who.username : who.id} (${how}); ${doing}…`;

export function formatEmergency(results: EmergencyCloseResult[], failures: { symbol: string; error: string }[] = []): string {
  const closed = results.flatMap((r) => r.closed);
  const lines = [closed.length > 0 ? `🛑 Emergency close done: ${plural(closed.length, 'position')} closed.` : '🛑 Emergency close done: there was no open position to close.'];
  for (const c of closed) lines.push(`• ${c.symbol}: sold ${num(c.qty)} @ ${num(c.exitPrice)} (entry ${num(c.entryPrice)}), PnL ${signed(c.pnl)} [${c.clientOrderId}]`);
  const errorOf = (r: EmergencyCloseResult) => (r as { error?: string }).error;
  const flat = results.filter((r) => r.closed.length === 0 && !errorOf(r)).map((r) => r.symbol);
  if (flat.length > 0) lines.push(`Already flat: ${flat.join(', ')}`);
  const canceled = results.reduce((a, r) => a + r.canceledOrders, 0);
  if (canceled > 0) lines.push(`Working orders canceled: ${canceled}`);
  const errors = [...failures, ...results.flatMap((r) => (errorOf(r) ? [{ symbol: r.symbol, error: errorOf(r)! }] : []))];
  for (const f of errors) lines.push(`⚠️ ${f.symbol}: NOT closed (${f.error}) — check it now`);
  lines.push(`Status: ${results.map((r) => `${r.symbol} ${r.tradingStatus}`).join(', ') || 'no symbol answered'}. /resume to trade again.`);
  return lines.join('\n');
}

// --- retrain ------------------------------------------------------------------------------------

const CREATE_SCHEDULE = 'trader schedule retrain --every 7d';

export const noRetrainSchedule = (scheduleId: string) =>
  `No retrain schedule "${scheduleId}" exists, so nothing was started. Create it where the stack runs with \`${CREATE_SCHEDULE}\` (a training worker runs it: trader up, or trader worker --queue training); then /retrain runs it now.`;

export const retrainAlreadyRunning = (workflowId: string) => `🧠 A retrain is already running: ${workflowId}. Nothing new was started (one retrain at a time).`;

export function retrainPrompt(s: RetrainScheduleView, ttlMs: number): string {
  const timetable = s.paused ? 'paused' : `every ${s.everyMs.map(msToTimeframe).join(', ') || '-'}${s.nextRunAt ? `, next run ${utc(s.nextRunAt.getTime())}` : ''}`;
  return [
    `🧠 RETRAIN NOW: runs schedule "${s.scheduleId}" once (${timetable}). It trains on the training worker, evaluates on held-out data, and promotes the new model only if it beats the champion.`,
    s.lastRun ? `Last run: ${s.lastRun.workflowId} (${utc(s.lastRun.takenAt.getTime())}).` : 'It has not run yet.',
    `Confirm within ${seconds(ttlMs)}: press the button, or send /retrain confirm`,
  ].join('\n');
}

export function formatRetrainTrigger(t: RetrainTrigger): string {
  switch (t.outcome) {
    case 'started':
      return [
        `🧠 Retrain started: workflow ${t.workflowId} (schedule "${t.scheduleId}"${t.paused ? ', which stays paused' : ''}).`,
        'A training worker must poll the training queue (trader up, or trader worker --queue training). The traders reload only a promoted model; follow the run in the Temporal UI.',
      ].join('\n');
    case 'already-running':
      return retrainAlreadyRunning(t.workflowId);
    case 'no-schedule':
      return noRetrainSchedule(t.scheduleId);
    case 'unconfirmed':
      return `⚠️ Schedule "${t.scheduleId}" was triggered, but no new run showed up on it within ${seconds(t.waitedMs)}. Check \`trader schedule list\` before sending /retrain again.`;
  }
}
