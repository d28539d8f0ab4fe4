import { HttpError, InfluxDB, Point, setLogger, type WriteApi } from '@influxdata/influxdb-client';
import type { MetricMeter } from '@temporalio/common';
import type { Logger } from '../../infra/logger';
import type { MetricPoint } from '../../lib/metrics';

/**
 * Where metric points go: InfluxDB through @influxdata/influxdb-client's write API (batching,
 * retries with backoff, a bounded retry buffer), or nowhere when INFLUXDB_URL is unset.
 *
 * `write` is synchronous and never throws: the trading path hands a point over and goes on, whether
 * InfluxDB is up, down or slow. What cannot be written is dropped and counted (per measurement),
 * with a warning at most every `dropLogEveryMs`; `close` reports the totals. Memory is bounded: at
 * most `maxPending` points are accepted and not yet written; past that new points are dropped at
 * once (counted too).
 */

export interface MetricsWriterStats {
  /** Points InfluxDB acknowledged. */
  written: number;
  /** Points given up on: InfluxDB refused them, retries ran out, or the buffer was full. */
  dropped: number;
  droppedBy: Record<string, number>;
  /** Accepted, neither written nor dropped yet (batched, in flight, or waiting for a retry). */
  pending: number;
}

export interface MetricsWriter {
  readonly enabled: boolean;
  write(point: MetricPoint): void;
  stats(): MetricsWriterStats;
  /** Sends what is batched now (and retries what waits for a retry). */
  flush(): Promise<void>;
  /** Flushes once more, then gives up on whatever is still pending (counted as dropped). */
  close(): Promise<MetricsWriterStats>;
}

const NO_STATS: MetricsWriterStats = Object.freeze({ written: 0, dropped: 0, droppedBy: Object.freeze({}), pending: 0 });

/** INFLUXDB_URL unset: every call returns at once and nothing is kept. */
export const METRICS_OFF: MetricsWriter = Object.freeze({
  enabled: false,
  write: () => undefined,
  stats: () => NO_STATS,
  flush: async () => undefined,
  close: async () => NO_STATS,
});

export interface InfluxTarget {
  url: string;
  token: string;
  org: string;
  bucket: string;
}

export interface InfluxWriterOptions {
  /** Points per write request (default 500). */
  batchSize?: number;
  /** A batch goes out at least this often (default 2 s). */
  flushIntervalMs?: number;
  /** Failed batches waiting for a retry, in points (default 10,000): the client drops the oldest past it. */
  maxBufferLines?: number;
  /** Accepted-but-unwritten points past which new ones are dropped at once (default maxBufferLines + 2 batches). */
  maxPending?: number;
  /** Retries of a failed batch (default 3), first after minRetryDelayMs, growing to maxRetryDelayMs. */
  maxRetries?: number;
  minRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** A batch is given up after this long, retries included (default 60 s). */
  maxRetryTimeMs?: number;
  /** One write request (default 5 s): a slow InfluxDB costs a retry, never a blocked caller. */
  timeoutMs?: number;
  dropLogEveryMs?: number;
  /** The process's Prometheus metrics (Temporal runtime meter): points written and dropped, by measurement. */
  meter?: MetricMeter;
}

/** Our measurement names are plain words: the name ends at the first comma or space of the line. */
function measurementOf(line: string): string {
  const m = /^[^, ]+/.exec(line);
  return m ? m[0] : 'unknown';
}

export class InfluxMetricsWriter implements MetricsWriter {
  readonly enabled = true;
  private readonly api: WriteApi;
  private readonly log: Logger;
  private readonly maxPending: number;
  private readonly maxRetries: number;
  private readonly dropLogEveryMs: number;
  private accepted = 0;
  private written = 0;
  private dropped = 0;
  private readonly droppedBy: Record<string, number> = {};
  private readonly acceptedBy: Record<string, number> = {};
  private readonly writtenBy: Record<string, number> = {};
  private lastDropLog = 0;
  private droppedSinceLog = 0;
  private closed = false;
  private readonly countWritten?: (n: number, measurement: string) => void;
  private readonly countDropped?: (n: number, measurement: string) => void;

  constructor(
    readonly target: InfluxTarget,
    log: Logger,
    opts: InfluxWriterOptions = {},
  ) {
    this.log = log.child({ component: 'metrics' });
    const batchSize = opts.batchSize ?? 500;
    const maxBufferLines = opts.maxBufferLines ?? 10_000;
    this.maxPending = opts.maxPending ?? maxBufferLines + 2 * batchSize;
    this.maxRetries = opts.maxRetries ?? 3;
    this.dropLogEveryMs = opts.dropLogEveryMs ?? 10_000;
    if (opts.meter) {
      const w = opts.meter.createCounter('trader_metrics_points_written', 'points', 'metric points InfluxDB acknowledged');
      const d = opts.meter.createCounter('trader_metrics_points_dropped', 'points', 'metric points dropped (InfluxDB down, slow, refusing, or the buffer full)');
      this.countWritten = (n, measurement) => w.add(n, { measurement });
      this.countDropped = (n, measurement) => d.add(n, { measurement });
    }
    routeClientLog(this.log);
    this.api = new InfluxDB({ url: target.url, token: target.token, timeout: opts.timeoutMs ?? 5_000 }).getWriteApi(target.org, target.bucket, 'ms', {
      batchSize,
      flushInterval: opts.flushIntervalMs ?? 2_000,
      maxBufferLines,
      maxRetries: this.maxRetries,
      minRetryDelay: opts.minRetryDelayMs ?? 1_000,
      maxRetryDelay: opts.maxRetryDelayMs ?? 15_000,
      maxRetryTime: opts.maxRetryTimeMs ?? 60_000,
      exponentialBase: 2,
      writeSuccess: (lines) => this.onWritten(lines),
      writeFailed: (error, lines, attempt, expires) => {
        // Mirrors the client's own rule (WriteApiImpl.sendBatch): it retries a batch while it is
        // open, has attempts left, the error is not an HTTP status below 429, and the batch's
        // time is not up. Anything else is lost, and must be counted here, where it is seen.
        const retryable = !(error instanceof HttpError) || error.statusCode >= 429;
        const final = this.closed || !retryable || attempt > this.maxRetries || expires <= Date.now();
        if (final) this.onDropped(lines.map(measurementOf), error instanceof Error ? error.message : String(error));
        // undefined: let the client carry on with its retry buffer.
        return undefined;
      },
      writeRetrySkipped: (entry) => this.onDropped(entry.lines.map(measurementOf), `retry buffer full (${maxBufferLines} points)`),
    });
  }

  write(p: MetricPoint): void {
    if (this.closed) return;
    this.accepted++;
    this.acceptedBy[p.measurement] = (this.acceptedBy[p.measurement] ?? 0) + 1;
    if (this.pending() > this.maxPending) {
      this.onDropped([p.measurement], `${this.maxPending} points already wait for InfluxDB`);
      return;
    }
    const point = new Point(p.measurement).timestamp(p.time);
    for (const [k, v] of Object.entries(p.tags)) if (v !== '') point.tag(k, v);
    for (const [k, v] of Object.entries(p.fields)) {
      if (typeof v === 'number') point.floatField(k, v);
      else point.stringField(k, v);
    }
    this.api.writePoint(point);
  }

  stats(): MetricsWriterStats {
    return { written: this.written, dropped: this.dropped, droppedBy: { ...this.droppedBy }, pending: this.pending() };
  }

  async flush(): Promise<void> {
    if (this.closed) return;
    await this.api.flush(true).catch(() => undefined);
  }

  async close(): Promise<MetricsWriterStats> {
    if (!this.closed) {
      await this.api.close().catch(() => undefined);
      this.closed = true;
      // Whatever the client still holds (the retry buffer) is lost with it.
      const left: string[] = [];
      for (const [m, n] of Object.entries(this.acceptedBy)) {
        const waiting = n - (this.writtenBy[m] ?? 0) - (this.droppedBy[m] ?? 0);
        for (let i = 0; i < waiting; i++) left.push(m);
      }
      if (left.length > 0) this.onDropped(left, 'the writer closed before InfluxDB took them');
      const s = this.stats();
      const fields = { url: this.target.url, bucket: this.target.bucket, written: s.written, dropped: s.dropped, droppedBy: s.droppedBy };
      if (s.dropped > 0) this.log.warn(fields, 'metrics writer closed: some points were dropped');
      else this.log.info(fields, 'metrics writer closed');
    }
    return this.stats();
  }

  private pending(): number {
    return this.accepted - this.written - this.dropped;
  }

  private onWritten(lines: string[]): void {
    this.written += lines.length;
    for (const [m, n] of countBy(lines.map(measurementOf))) {
      this.writtenBy[m] = (this.writtenBy[m] ?? 0) + n;
      this.countWritten?.(n, m);
    }
  }

  private onDropped(measurements: string[], reason: string): void {
    this.dropped += measurements.length;
    this.droppedSinceLog += measurements.length;
    for (const [m, n] of countBy(measurements)) {
      this.droppedBy[m] = (this.droppedBy[m] ?? 0) + n;
      this.countDropped?.(n, m);
    }
    const now = Date.now();
    if (now - this.lastDropLog >= this.dropLogEveryMs) {
      this.log.warn({ dropped: this.droppedSinceLog, droppedTotal: this.dropped, droppedBy: { ...this.droppedBy }, pending: this.pending(), reason }, 'metrics points dropped (trading is not affected)');
      this.lastDropLog = now;
      this.droppedSinceLog = 0;
    }
  }
}

function countBy(xs: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return m;
}

let clientLogRouted = false;
/** The client logs every failed attempt to the console by default: into our logger instead, at debug (we log drops ourselves). */
function routeClientLog(log: Logger): void {
  if (clientLogRouted) return;
  clientLogRouted = true;
  setLogger({
    error: (message, err) => log.debug({ err: err instanceof Error ? err.message : err }, `influxdb-client: ${message}`),
    warn: (message, err) => log.debug({ err: err instanceof Error ? err.message : err }, `influxdb-client: ${message}`),
  });
}

/** The process's writer: InfluxDB when INFLUXDB_URL is set, else METRICS_OFF. */
export function createMetricsWriter(target: InfluxTarget | undefined, log: Logger, opts: InfluxWriterOptions = {}): MetricsWriter {
  return target ? new InfluxMetricsWriter(target, log, opts) : METRICS_OFF;
}
