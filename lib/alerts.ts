/**
 * The alert queue's pure part: what an alert is, the alerts the system raises, and a bounded
 * priority queue with deduplication and a send throttle. No I/O and no clock of its own (every
 * method takes `now`), so workflows may import the builders and tests drive time by hand.
 * The sender (activities/alerts.ts) owns the loop, the Telegram calls and the log lines.
 */

export type AlertSeverity = 'critical' | 'warning' | 'info';
/** Highest priority first. */
export const ALERT_SEVERITIES: readonly AlertSeverity[] = ['critical', 'warning', 'info'];

export interface Alert {
  severity: AlertSeverity;
  /** Alerts with the same key within the dedup window are one alert (e.g. `kill-switch/main`). */
  key: string;
  text: string;
}

export interface QueuedAlert extends Alert {
  /** When the first alert of this key was queued, and the latest one merged into it. */
  firstAt: number;
  lastAt: number;
  /** How many alerts this entry stands for (1 plus the duplicates merged while it waited). */
  repeats: number;
  /** Duplicates suppressed after the previous alert of this key was sent. */
  suppressedBefore: number;
}

export interface AlertQueueOptions {
  /** Alerts waiting at most; beyond it a lower-priority alert is evicted or the new one dropped. */
  capacity: number;
  /** A key seen again within this window is merged (still queued) or suppressed (already sent). */
  dedupWindowMs: number;
  /** Token bucket for sends: this many at once, then one per `sendIntervalMs`. */
  sendBurst: number;
  sendIntervalMs: number;
  /**
   * Info and warning alerts older than this when their turn comes are dropped as stale (after a
   * Telegram outage, an hour-old "trade opened" is noise). Critical alerts never go stale.
   */
  maxAgeMs: number;
}

// 20 sends a minute after a burst of 5: under Telegram's per-chat limits (about one message a
// second, 20 a minute in groups), so a flood of alerts never gets the bot itself rate-limited.
export const DEFAULT_ALERT_QUEUE_OPTIONS: AlertQueueOptions = {
  capacity: 200,
  dedupWindowMs: 5 * 60_000,
  sendBurst: 5,
  sendIntervalMs: 3_000,
  maxAgeMs: 15 * 60_000,
};

export type PushOutcome =
  | { status: 'queued'; evicted?: QueuedAlert }
  | { status: 'merged'; repeats: number }
  | { status: 'suppressed'; suppressed: number }
  | { status: 'dropped'; reason: 'full' };

export interface AlertQueueStats {
  queued: number;
  merged: number;
  suppressed: number;
  /** New alerts refused because the queue was full of alerts at least as important. */
  droppedFull: number;
  /** Queued alerts pushed out by a more important one. */
  evicted: number;
  sent: number;
  /** Alerts whose send failed (Telegram down or refusing): dropped, not retried. */
  droppedSendFailed: number;
  /** Info/warning alerts that waited longer than maxAgeMs. */
  droppedStale: number;
  waiting: number;
  waitingBySeverity: Record<AlertSeverity, number>;
}

const rank = (s: AlertSeverity): number => ALERT_SEVERITIES.indexOf(s);

interface KeyMemory {
  /** The queued entry of this key, while it waits. */
  pending?: QueuedAlert;
  /** Severity and time of the last send of this key. */
  sentAt?: number;
  sentSeverity?: AlertSeverity;
  suppressedSinceSend: number;
  touchedAt: number;
}

export class AlertQueue {
  readonly options: AlertQueueOptions;
  private readonly lanes: Record<AlertSeverity, QueuedAlert[]> = { critical: [], warning: [], info: [] };
  private readonly keys = new Map<string, KeyMemory>();
  private tokens: number;
  private tokensAt: number | undefined;
  private readonly counts = { queued: 0, merged: 0, suppressed: 0, droppedFull: 0, evicted: 0, sent: 0, droppedSendFailed: 0, droppedStale: 0 };

  constructor(options: Partial<AlertQueueOptions> = {}) {
    this.options = { ...DEFAULT_ALERT_QUEUE_OPTIONS, ...options };
    const o = this.options;
    if (!Number.isInteger(o.capacity) || o.capacity < 1) throw new RangeError(`alert queue capacity must be a positive integer, got ${o.capacity}`);
    if (!(o.dedupWindowMs >= 0)) throw new RangeError(`dedupWindowMs must be >= 0, got ${o.dedupWindowMs}`);
    if (!Number.isInteger(o.sendBurst) || o.sendBurst < 1) throw new RangeError(`sendBurst must be a positive integer, got ${o.sendBurst}`);
    if (!(o.sendIntervalMs >= 0)) throw new RangeError(`sendIntervalMs must be >= 0, got ${o.sendIntervalMs}`);
    if (!(o.maxAgeMs > 0)) throw new RangeError(`maxAgeMs must be > 0, got ${o.maxAgeMs}`);
    this.tokens = o.sendBurst;
  }

  get size(): number {
    return this.lanes.critical.length + this.lanes.warning.length + this.lanes.info.length;
  }

  push(alert: Alert, now: number): PushOutcome {
    this.forget(now);
    const mem = this.keys.get(alert.key);
    if (mem?.pending) {
      // Still waiting: one message for all of them, with the latest text (a drawdown of 12% is
      // more useful than the 10% that came first) and the highest severity seen.
      const p = mem.pending;
      p.repeats += 1;
      p.lastAt = now;
      p.text = alert.text;
      if (rank(alert.severity) < rank(p.severity)) {
        this.remove(p);
        p.severity = alert.severity;
        this.lanes[p.severity].push(p);
      }
      this.remember(alert.key, { ...mem, touchedAt: now });
      this.counts.merged += 1;
      return { status: 'merged', repeats: p.repeats };
    }
    const escalated = mem?.sentSeverity !== undefined && rank(alert.severity) < rank(mem.sentSeverity);
    if (mem?.sentAt !== undefined && now - mem.sentAt < this.options.dedupWindowMs && !escalated) {
      this.remember(alert.key, { ...mem, suppressedSinceSend: mem.suppressedSinceSend + 1, touchedAt: now });
      this.counts.suppressed += 1;
      return { status: 'suppressed', suppressed: mem.suppressedSinceSend + 1 };
    }
    let evicted: QueuedAlert | undefined;
    if (this.size >= this.options.capacity) {
      const lowest = [...ALERT_SEVERITIES].reverse().find((s) => this.lanes[s].length > 0)!;
      if (rank(lowest) <= rank(alert.severity)) {
        this.counts.droppedFull += 1;
        return { status: 'dropped', reason: 'full' };
      }
      // The oldest of the least important lane goes: it is the stalest news.
      evicted = this.lanes[lowest].shift()!;
      const em = this.keys.get(evicted.key);
      if (em) em.pending = undefined;
      this.counts.evicted += 1;
    }
    const entry: QueuedAlert = {
      severity: alert.severity,
      key: alert.key,
      text: alert.text,
      firstAt: now,
      lastAt: now,
      repeats: 1,
      suppressedBefore: mem?.suppressedSinceSend ?? 0,
    };
    this.lanes[alert.severity].push(entry);
    this.remember(alert.key, { ...(mem ?? { suppressedSinceSend: 0 }), pending: entry, suppressedSinceSend: 0, touchedAt: now });
    this.counts.queued += 1;
    return evicted ? { status: 'queued', evicted } : { status: 'queued' };
  }

  /** Milliseconds until take() can return an alert: 0 now, Infinity when nothing waits. */
  waitMs(now: number): number {
    if (this.size === 0) return Infinity;
    this.refill(now);
    if (this.tokens >= 1) return 0;
    return Math.ceil((1 - this.tokens) * this.options.sendIntervalMs);
  }

  /**
   * Removes and returns the most important waiting alert (FIFO within a severity), if the
   * throttle allows. Stale info/warning alerts met on the way are dropped and returned in `stale`.
   */
  take(now: number, stale: QueuedAlert[] = []): QueuedAlert | undefined {
    if (this.waitMs(now) !== 0) return undefined;
    let entry: QueuedAlert | undefined;
    while (!entry) {
      const lane = ALERT_SEVERITIES.find((s) => this.lanes[s].length > 0);
      if (!lane) return undefined;
      const head = this.lanes[lane].shift()!;
      if (head.severity !== 'critical' && now - head.lastAt > this.options.maxAgeMs) {
        const mem = this.keys.get(head.key);
        if (mem?.pending === head) mem.pending = undefined;
        this.counts.droppedStale += 1;
        stale.push(head);
        continue;
      }
      entry = head;
    }
    this.tokens -= 1;
    // In flight counts as sent for dedup, so a duplicate arriving during the send is suppressed.
    this.markSent(entry, now, true);
    return entry;
  }

  /** The sender reports the outcome of a taken alert; both start the key's dedup window. */
  recordSent(entry: QueuedAlert, now: number): void {
    this.counts.sent += 1;
    this.markSent(entry, now);
  }

  recordFailed(entry: QueuedAlert, now: number): void {
    this.counts.droppedSendFailed += 1;
    // A failed send still counts as "said" for dedup: when Telegram comes back the operator gets
    // the next distinct alert, not a burst of repeats of one that could not be delivered.
    this.markSent(entry, now);
  }

  stats(): AlertQueueStats {
    return {
      ...this.counts,
      waiting: this.size,
      waitingBySeverity: { critical: this.lanes.critical.length, warning: this.lanes.warning.length, info: this.lanes.info.length },
    };
  }

  /** Waiting alerts, most important first (for /status-like views and tests). */
  peekAll(): QueuedAlert[] {
    return ALERT_SEVERITIES.flatMap((s) => this.lanes[s].slice());
  }

  private markSent(entry: QueuedAlert, now: number, resetSuppressed = false): void {
    const mem = this.keys.get(entry.key) ?? { suppressedSinceSend: 0, touchedAt: now };
    const pending = mem.pending === entry ? undefined : mem.pending;
    const suppressedSinceSend = resetSuppressed ? 0 : mem.suppressedSinceSend;
    this.remember(entry.key, { ...mem, pending, sentAt: now, sentSeverity: entry.severity, suppressedSinceSend, touchedAt: now });
  }

  private remember(key: string, mem: KeyMemory): void {
    // Re-inserting keeps the Map in touch order, so forget() stops at the first fresh key.
    this.keys.delete(key);
    this.keys.set(key, mem);
  }

  /** Drops key memories older than the dedup window (bounded memory for unbounded key sets). */
  private forget(now: number): void {
    for (const [key, mem] of this.keys) {
      if (now - mem.touchedAt < this.options.dedupWindowMs) break;
      if (mem.pending) continue;
      this.keys.delete(key);
    }
  }

  private refill(now: number): void {
    if (this.tokensAt === undefined || now < this.tokensAt) {
      this.tokensAt = now;
      return;
    }
    const o = this.options;
    const gained = o.sendIntervalMs === 0 ? o.sendBurst : (now - this.tokensAt) / o.sendIntervalMs;
    this.tokens = Math.min(o.sendBurst, this.tokens + gained);
    this.tokensAt = now;
  }

  private remove(entry: QueuedAlert): void {
    const lane = this.lanes[entry.severity];
    const i = lane.indexOf(entry);
    if (i >= 0) lane.splice(i, 1);
  }
}

// --- What an alert looks like in Telegram -----------------------------------------------------

export const TELEGRAM_TEXT_LIMIT = 4096;
const ICONS: Record<AlertSeverity, string> = { critical: '🚨', warning: '⚠️', info: 'ℹ️' };

/**
 * Plain text (no parse mode: a symbol or an error message must never break Markdown parsing).
 * `source` marks where the alert comes from when it is not live trading, e.g. `REPLAY` for a
 * fire drill on recorded candles, so nobody mistakes a drill for the real thing.
 */
export function formatAlert(entry: Pick<QueuedAlert, 'severity' | 'text' | 'repeats' | 'suppressedBefore'>, source?: string): string {
  const notes: string[] = [];
  if (entry.repeats > 1) notes.push(`repeated ${entry.repeats} times`);
  if (entry.suppressedBefore > 0) notes.push(`${entry.suppressedBefore} similar alert${entry.suppressedBefore === 1 ? '' : 's'} suppressed since the last one`);
  const text = `${ICONS[entry.severity]} ${entry.severity.toUpperCase()}${source ? ` [${source}]` : ''}: ${entry.text}${notes.length ? `\n(${notes.join('; ')})` : ''}`;
  return text.length > TELEGRAM_TEXT_LIMIT ? `${text.slice(0, TELEGRAM_TEXT_LIMIT - 1)}…` : text;
}

// --- The alerts the system raises -------------------------------------------------------------
// One builder per kind, so every sender words and keys an alert the same way. Keys decide
// deduplication: per trade for trades (two trades are two messages), per subject otherwise.

const n = (x: number, digits = 8): string => (Number.isFinite(x) ? String(Number(x.toFixed(digits))) : String(x));

export function tradeOpenedAlert(t: { symbol: string; qty: number; price: number; stopPrice?: number | null; targetPrice?: number | null; clientOrderId: string; mode?: string }): Alert {
  const levels = [t.stopPrice != null ? `stop ${n(t.stopPrice)}` : '', t.targetPrice != null ? `target ${n(t.targetPrice)}` : ''].filter(Boolean).join(', ');
  return {
    severity: 'info',
    key: `trade-opened/${t.clientOrderId}`,
    text: `Opened LONG ${n(t.qty)} ${t.symbol} @ ${n(t.price)}${levels ? ` (${levels})` : ''}${t.mode ? ` [${t.mode}]` : ''}`,
  };
}

export function tradeClosedAlert(t: { symbol: string; qty: number; entryPrice: number; exitPrice: number; pnl: number; reason: string; clientOrderId: string; mode?: string }): Alert {
  return {
    severity: 'info',
    key: `trade-closed/${t.clientOrderId}`,
    text: `Closed ${n(t.qty)} ${t.symbol} ${n(t.entryPrice)} -> ${n(t.exitPrice)}, PnL ${t.pnl >= 0 ? '+' : ''}${t.pnl.toFixed(2)} (${t.reason})${t.mode ? ` [${t.mode}]` : ''}`,
  };
}

export function killSwitchTrippedAlert(k: { account: string; reason: string; by?: string }): Alert {
  return {
    severity: 'critical',
    key: `kill-switch/${k.account}`,
    text: `Kill switch tripped for ${k.account}: ${k.reason}${k.by ? ` (by ${k.by})` : ''}. New entries are blocked for every symbol; /status for details, /resume to lift.`,
  };
}

export function circuitBreakerOpenAlert(c: { exchange: string; operation?: string; error: string }): Alert {
  return {
    severity: 'warning',
    key: `circuit-breaker/${c.exchange}${c.operation ? `/${c.operation}` : ''}`,
    text: `Circuit breaker open for ${c.exchange}${c.operation ? ` ${c.operation}` : ''}: ${c.error}. Calls are refused until it half-opens.`,
  };
}

/**
 * A model that cannot serve (missing, corrupt, wrong feature schema): its symbols fall back to no
 * new entries while protective exits go on. `problem` identifies the model version and kind of
 * failure, not the symbol, so one broken model is one alert however many symbols use it.
 */
export function modelFallbackAlert(m: { symbol: string; version?: string; error: string; problem: string }): Alert {
  return {
    severity: 'warning',
    key: `model-fallback/${m.problem}`,
    text: `Model${m.version ? ` ${m.version}` : ''} unavailable (${m.error}), first seen on ${m.symbol}: no new entries on the symbols that use it; protective exits continue.`,
  };
}

/** A strategy failed on a symbol (threw, invalid answer, over budget, not loadable): one alert per incident. */
export function strategyFailedAlert(s: { symbol: string; strategy: string; error: string; mode?: string }): Alert {
  return {
    severity: 'warning',
    key: `strategy-failed/${s.symbol}/${s.strategy}`,
    text: `Strategy ${s.strategy} failed on ${s.symbol}${s.mode ? ` (${s.mode})` : ''}: ${s.error.slice(0, 300)}. No new entries on ${s.symbol} until it answers again; protective exits continue.`,
  };
}

export function strategyRecoveredAlert(s: { symbol: string; strategy: string; mode?: string }): Alert {
  return { severity: 'info', key: `strategy-recovered/${s.symbol}/${s.strategy}`, text: `Strategy ${s.strategy} answers again on ${s.symbol}${s.mode ? ` (${s.mode})` : ''}: entries allowed.` };
}

/** A symbol's strategy was switched (`trader strategy set`, Telegram /strategy): raised with the first candle the new one decided. */
export function strategyChangedAlert(s: { symbol: string; from: string; to: string; by: string; reason?: string }): Alert {
  const name = s.to.replace(/@.*$/, '').replace(/^.*[\\/]/, '').slice(0, 60);
  return { severity: 'info', key: `strategy-changed/${s.symbol}/${name}`, text: `${s.symbol}: strategy ${s.from} -> ${s.to} by ${s.by}${s.reason ? ` (${s.reason})` : ''}; it decided this candle.` };
}

export function drawdownWarningAlert(d: { account: string; drawdown: number; limit: number }): Alert {
  const ratio = d.limit > 0 ? d.drawdown / d.limit : 1;
  return {
    // Past 80% of the limit the kill switch is near: that is worth waking someone for.
    severity: ratio >= 0.8 ? 'critical' : 'warning',
    key: `drawdown/${d.account}`,
    text: `Drawdown ${(d.drawdown * 100).toFixed(2)}% for ${d.account} (limit ${(d.limit * 100).toFixed(2)}%, ${(ratio * 100).toFixed(0)}% of it used).`,
  };
}

export function workerCrashedAlert(w: { worker: string; error: string; host?: string }): Alert {
  return {
    severity: 'critical',
    key: `worker-crashed/${w.worker}`,
    text: `Worker ${w.worker}${w.host ? ` on ${w.host}` : ''} crashed: ${w.error}. Workflows wait (durably) until a worker polls again.`,
  };
}

// --- The watchdog's alerts (control/watchdog.ts over lib/watchdog.ts) --------------------------
// Each outage is its own incident (the `incident` number in the key): the dedup window must not
// swallow a second outage that follows a recovery within minutes.

/** "2 h 5 min", "3 min 12 s", "45 s", "250 ms": how long something has lasted, for people. */
export function humanDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h${m % 60 ? ` ${m % 60} min` : ''}`;
  return `${Math.floor(h / 24)} d${h % 24 ? ` ${h % 24} h` : ''}`;
}

const utcTime = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + ' UTC';

export function tradingWorkerMissingAlert(w: { taskQueue: string; lastPollAt: number | null; now: number; incident: number }): Alert {
  const last = w.lastPollAt === null ? 'no worker has polled it since the watchdog started' : `the last poll was ${humanDuration(w.now - w.lastPollAt)} ago (${utcTime(w.lastPollAt)})`;
  return {
    severity: 'critical',
    key: `watchdog/no-worker/${w.taskQueue}/${w.incident}`,
    text: `Trading stopped: no worker polls task queue "${w.taskQueue}": ${last}. No candle is read and no order is placed until a trading worker runs again (start one: trader worker, or restart trader up); workflows wait durably, and stops and targets already resting on the exchange stay there.`,
  };
}

export function tradingWorkerBackAlert(w: { taskQueue: string; downForMs: number; pollers: number; incident: number }): Alert {
  return {
    severity: 'info',
    key: `watchdog/no-worker/${w.taskQueue}/${w.incident}/back`,
    text: `Trading worker back: task queue "${w.taskQueue}" has ${w.pollers} poller${w.pollers === 1 ? '' : 's'} again, after ${humanDuration(w.downForMs)} without one.`,
  };
}

export function symbolStalledAlert(s: { symbol: string; lastCandleTime: number | null; detail: string; incident: number }): Alert {
  return {
    severity: 'critical',
    key: `watchdog/stalled/${s.symbol}/${s.incident}`,
    text: `${s.symbol} stalled: ${s.detail}; last candle ${s.lastCandleTime === null ? 'none yet' : utcTime(s.lastCandleTime)}. /status shows it; the Temporal UI shows what its workflow waits on.`,
  };
}

export function symbolRecoveredAlert(s: { symbol: string; lastCandleTime: number | null; stalledForMs: number; incident: number }): Alert {
  return {
    severity: 'info',
    key: `watchdog/stalled/${s.symbol}/${s.incident}/back`,
    text: `${s.symbol} trading again: candle ${s.lastCandleTime === null ? '-' : utcTime(s.lastCandleTime)} read, after ${humanDuration(s.stalledForMs)} stalled.`,
  };
}

export function temporalUnreachableAlert(t: { address: string; error: string; forMs: number; incident: number }): Alert {
  return {
    severity: 'critical',
    key: `watchdog/temporal/${t.incident}`,
    text: `Temporal unreachable at ${t.address} for ${humanDuration(t.forMs)} (${t.error}): trading is stopped until it answers again.`,
  };
}

export function temporalBackAlert(t: { address: string; downForMs: number; incident: number }): Alert {
  return {
    severity: 'info',
    key: `watchdog/temporal/${t.incident}/back`,
    text: `Temporal at ${t.address} answers again, after ${humanDuration(t.downForMs)}.`,
  };
}

/** A failed retrain changes nothing that trades (the champion keeps serving), hence a warning. */
export function retrainFailedAlert(r: { workflowId: string; status: string; error: string }): Alert {
  return {
    severity: 'warning',
    key: `retrain-failed/${r.workflowId}`,
    text: `Retrain ${r.workflowId} ${r.status.toLowerCase().replace('_', ' ')}: ${r.error}. The champion model keeps trading; the Temporal UI shows the failed step.`,
  };
}

/**
 * An order the exchange refused for good (insufficient funds, an invalid order): not retried, so
 * someone must look. A refused protective or exit order is critical: the position is not
 * protected as planned, or not closed (a refused stop is replaced by a market exit).
 */
export function orderRejectedAlert(r: { symbol: string; clientOrderId: string; tag?: string; reason: string; mode?: string }): Alert {
  const what = r.tag === 'entry' ? 'entry' : r.tag === 'stop' ? 'stop-loss' : r.tag === 'target' ? 'take-profit' : r.tag === 'exit' ? 'exit' : 'order';
  const consequence =
    r.tag === 'entry'
      ? 'no position was opened'
      : r.tag === 'stop'
        ? 'the position is closed at market instead'
        : r.tag === 'target'
          ? 'the position keeps its stop but has no take-profit order'
          : r.tag === 'exit'
            ? 'the position is still open: check the account'
            : 'check the account';
  return {
    severity: r.tag === 'entry' ? 'warning' : 'critical',
    key: `order-rejected/${r.clientOrderId}`,
    text: `Exchange refused the ${what} order ${r.clientOrderId} for ${r.symbol}: ${r.reason}. Not retried; ${consequence}.${r.mode ? ` [${r.mode}]` : ''}`,
  };
}
