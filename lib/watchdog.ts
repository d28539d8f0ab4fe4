import { humanDuration, symbolRecoveredAlert, symbolStalledAlert, temporalBackAlert, temporalUnreachableAlert, tradingWorkerBackAlert, tradingWorkerMissingAlert, type Alert } from './alerts';
import type { SymbolStateView } from './contracts/trading';

/**
 * The trading watchdog's judgement, without I/O: told what the trading task queue's pollers and
 * the symbol workflows look like (control/watchdog.ts asks Temporal), it says which critical
 * alerts to raise when trading stops and which recovery alerts when it starts again. No clock of
 * its own: every call takes `now`.
 *
 * - No worker: the newest poll on the trading task queue (workflow or activity tasks) is older
 *   than `noPollerAfterMs`. Temporal records a poll when it starts and a poll waits up to a
 *   minute for work, so an idle but healthy worker can look a minute old: the threshold must be
 *   above that. Back: a poll newer than the outage.
 * - Temporal unreachable: the queue could not be described for `noPollerAfterMs`.
 * - A symbol stalled: live and paper, its next candle is due (its close plus the publishing
 *   delay, as the workflow reports it) and more than one timeframe late; replay, its candle has
 *   not moved for two timeframes at the replay's speed (at least `replayStallMinMs`). Halted
 *   symbols wait for an operator on purpose and finished replays are done: neither is judged.
 *   A symbol that does not answer its state query is judged on what it said last. Back: a
 *   newer candle.
 */

export interface WatchdogThresholds {
  noPollerAfterMs: number;
  /** Replay: the least time without a new candle that counts as stalled (at speed max, two timeframes are nothing). */
  replayStallMinMs: number;
}

export interface QueueObservation {
  taskQueue: string;
  /** Newest poll start of any poller (ms); null when none is listed. */
  lastPollAt: number | null;
  pollers: number;
  /** Set when the queue could not be described (Temporal down or refusing). */
  error?: string;
}

/** A symbol as its state query answered, or `unreachable` when it did not. */
export type SymbolObservation = { symbol: string; view: SymbolStateView } | { symbol: string; unreachable: string };

interface SymbolMemory {
  /** What the symbol last said. */
  view?: SymbolStateView;
  firstSeenAt: number;
  /** When its candle last moved, as far as we saw. */
  progressAt: number;
  stalled?: { since: number; lastCandleTime: number | null; incident: number };
}

export class TradingWatchdog {
  private readonly startedAt: number;
  private workerDown?: { since: number; lastPollAt: number | null; incident: number };
  private temporalDown?: { since: number; alerted?: number };
  private incidents = 0;
  private readonly symbols = new Map<string, SymbolMemory>();

  constructor(
    private readonly thresholds: WatchdogThresholds,
    private readonly temporalAddress: string,
    now: number,
  ) {
    if (!(thresholds.noPollerAfterMs > 0) || !(thresholds.replayStallMinMs > 0)) throw new RangeError(`watchdog thresholds must be > 0, got ${JSON.stringify(thresholds)}`);
    this.startedAt = now;
  }

  /** True while the trading task queue has no worker (an alert was raised and has not cleared). */
  get noWorker(): boolean {
    return this.workerDown !== undefined;
  }

  stalledSymbols(): string[] {
    return [...this.symbols.entries()].filter(([, m]) => m.stalled).map(([s]) => s);
  }

  queue(o: QueueObservation, now: number): Alert[] {
    if (o.error !== undefined) {
      this.temporalDown ??= { since: now };
      const d = this.temporalDown;
      if (d.alerted === undefined && now - d.since >= this.thresholds.noPollerAfterMs) {
        d.alerted = ++this.incidents;
        return [temporalUnreachableAlert({ address: this.temporalAddress, error: o.error, forMs: now - d.since, incident: d.alerted })];
      }
      return [];
    }
    const out: Alert[] = [];
    if (this.temporalDown) {
      if (this.temporalDown.alerted !== undefined) out.push(temporalBackAlert({ address: this.temporalAddress, downForMs: now - this.temporalDown.since, incident: this.temporalDown.alerted }));
      this.temporalDown = undefined;
    }
    const age = now - (o.lastPollAt ?? this.startedAt);
    if (this.workerDown) {
      const polledSince = o.lastPollAt !== null && (this.workerDown.lastPollAt === null || o.lastPollAt > this.workerDown.lastPollAt);
      if (polledSince) {
        // How long the queue went without a poller: from its last poll (the alert came a threshold later).
        out.push(tradingWorkerBackAlert({ taskQueue: o.taskQueue, downForMs: now - (this.workerDown.lastPollAt ?? this.startedAt), pollers: o.pollers, incident: this.workerDown.incident }));
        this.workerDown = undefined;
      }
    } else if (age > this.thresholds.noPollerAfterMs) {
      this.workerDown = { since: now, lastPollAt: o.lastPollAt, incident: ++this.incidents };
      out.push(tradingWorkerMissingAlert({ taskQueue: o.taskQueue, lastPollAt: o.lastPollAt, now, incident: this.workerDown.incident }));
    }
    return out;
  }

  /** The running symbol workflows, all of them each time: a symbol no longer listed is forgotten. */
  symbolsSeen(observations: SymbolObservation[], now: number): Alert[] {
    const out: Alert[] = [];
    const listed = new Set(observations.map((o) => o.symbol));
    for (const s of [...this.symbols.keys()]) if (!listed.has(s)) this.symbols.delete(s);
    for (const o of observations) {
      let m = this.symbols.get(o.symbol);
      if (!m) {
        m = { firstSeenAt: now, progressAt: now };
        this.symbols.set(o.symbol, m);
      }
      if ('view' in o) {
        if (m.view && o.view.lastCandleTime !== m.view.lastCandleTime) m.progressAt = now;
        m.view = o.view;
      }
      const v = m.view;
      if (!v || v.done || v.tradingStatus === 'halted') {
        m.stalled = undefined;
        continue;
      }
      if (m.stalled) {
        if (v.lastCandleTime !== m.stalled.lastCandleTime) {
          out.push(symbolRecoveredAlert({ symbol: o.symbol, lastCandleTime: v.lastCandleTime, stalledForMs: now - m.stalled.since, incident: m.stalled.incident }));
          m.stalled = undefined;
        }
        continue;
      }
      const detail = this.stallDetail(v, m, now);
      if (detail) {
        m.stalled = { since: now, lastCandleTime: v.lastCandleTime, incident: ++this.incidents };
        out.push(symbolStalledAlert({ symbol: o.symbol, lastCandleTime: v.lastCandleTime, detail, incident: m.stalled.incident }));
      }
    }
    return out;
  }

  /** Why the symbol counts as stalled now, for the alert; undefined while it is on time. */
  private stallDetail(v: SymbolStateView, m: SymbolMemory, now: number): string | undefined {
    const tf = v.timeframeMs;
    if (!tf) return undefined; // a worker of an older version: nothing to judge by
    if (v.mode === 'replay') {
      const speed = v.replaySpeed ?? 'max';
      const realTf = speed === 'max' ? 0 : tf / speed;
      const silent = now - m.progressAt;
      if (silent <= Math.max(2 * realTf, this.thresholds.replayStallMinMs)) return undefined;
      return `no new candle for ${humanDuration(silent)} (a replay at speed ${speed}${realTf ? `, a candle every ${humanDuration(realTf)}` : ''})`;
    }
    // Before its first candle the symbol is due one timeframe after we first saw it.
    const due = v.nextCandleDueAt ?? m.firstSeenAt + tf;
    if (now - due <= tf) return undefined;
    return `its candle due ${new Date(due).toISOString().replace('T', ' ').slice(0, 19)} UTC is ${humanDuration(now - due)} late (more than one ${humanDuration(tf)} timeframe)`;
  }
}
