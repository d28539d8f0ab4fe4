import os from 'node:os';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import type { Logger } from '../../infra/logger';
import { alertsPoint, breakerPoint, processPoint, temporalPoint, writerPoint, type AlertQueueCounters, type ProcessTags } from '../../lib/metrics';
import { parsePrometheusText, temporalReadings, type TemporalSnapshot } from '../../lib/prometheus';
import { breakerStates } from '../exchange/resilience';
import type { MetricsWriter } from './writer';

/**
 * What a worker process reports about itself, sampled on an interval (and once more when it
 * stops): its health (memory, CPU, event-loop lag, uptime: the Python bot's "system health"), the
 * circuit breaker of every exchange it talks to, its Telegram alert queue, the metrics writer's
 * own counters, and the Temporal SDK's worker metrics read back from this process's Prometheus
 * endpoint (so the dashboard needs InfluxDB only, no Prometheus server).
 */

export interface ProcessMetricsOptions {
  writer: MetricsWriter;
  log: Logger;
  /** What this process runs: trading, training, telegram, or up (trading and training together). */
  worker: string;
  /** Default 10 s. */
  intervalMs?: number;
  alerts?: { stats(): AlertQueueCounters };
  /** TEMPORAL_METRICS_ADDRESS of this process: read for the `temporal` measurement. */
  prometheusAddress?: string;
  host?: string;
}

export interface ProcessMetrics {
  /** Takes one sample now. */
  sample(): Promise<void>;
  /** Stops the interval after a last sample (the writer stays open: its owner closes it). */
  stop(): Promise<void>;
}

const NOOP: ProcessMetrics = { sample: async () => undefined, stop: async () => undefined };

/** The endpoint to read for a bind address: a wildcard bind is read on loopback. */
export function prometheusUrl(bindAddress: string): string {
  const i = bindAddress.lastIndexOf(':');
  let host = bindAddress.slice(0, i);
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '[::]') host = '[::1]';
  return `http://${host}:${bindAddress.slice(i + 1)}/metrics`;
}

export function startProcessMetrics(opts: ProcessMetricsOptions): ProcessMetrics {
  if (!opts.writer.enabled) return NOOP;
  const log = opts.log.child({ component: 'process-metrics' });
  const tags: ProcessTags = { worker: opts.worker, host: opts.host ?? os.hostname() };
  const lag: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });
  lag.enable();
  let cpu = process.cpuUsage();
  let wall = performance.now();
  let temporal: TemporalSnapshot = new Map();
  const warned = new Set<string>();
  const warnOnce = (key: string, err: unknown, msg: string): void => {
    if (warned.has(key)) return;
    warned.add(key);
    log.warn({ err: err instanceof Error ? err.message : String(err) }, msg);
  };

  const scrapeTemporal = async (time: number): Promise<void> => {
    if (!opts.prometheusAddress) return;
    try {
      const res = await fetch(prometheusUrl(opts.prometheusAddress), { signal: AbortSignal.timeout(2_000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const { readings, snapshot } = temporalReadings(parsePrometheusText(await res.text()), temporal);
      temporal = snapshot;
      for (const r of readings) opts.writer.write(temporalPoint(tags, r, time));
    } catch (err) {
      warnOnce('temporal', err, `could not read the Temporal metrics at ${prometheusUrl(opts.prometheusAddress)}; the temporal measurement stays empty`);
    }
  };

  const sample = async (): Promise<void> => {
    const time = Date.now();
    const now = performance.now();
    const used = process.cpuUsage(cpu);
    const mem = process.memoryUsage();
    const elapsedMs = now - wall;
    opts.writer.write(
      processPoint(
        tags,
        {
          rssBytes: mem.rss,
          heapUsedBytes: mem.heapUsed,
          heapTotalBytes: mem.heapTotal,
          externalBytes: mem.external,
          cpuPct: elapsedMs > 0 ? ((used.user + used.system) / 1000 / elapsedMs) * 100 : NaN,
          // The histogram is in nanoseconds; empty (NaN) until the loop has been sampled once.
          eventLoopLagMeanMs: lag.mean / 1e6,
          eventLoopLagP99Ms: lag.percentile(99) / 1e6,
          eventLoopLagMaxMs: lag.max / 1e6,
          uptimeS: process.uptime(),
        },
        time,
      ),
    );
    cpu = process.cpuUsage();
    wall = now;
    lag.reset();
    for (const b of breakerStates()) opts.writer.write(breakerPoint(tags, b, time));
    if (opts.alerts) opts.writer.write(alertsPoint(tags, opts.alerts.stats(), time));
    await scrapeTemporal(time);
    const w = opts.writer.stats();
    opts.writer.write(writerPoint(tags, w, time));
  };

  let running: Promise<void> = sample().catch((err: unknown) => warnOnce('sample', err, 'process metrics sample failed'));
  const timer = setInterval(() => {
    running = running.then(sample).catch((err: unknown) => warnOnce('sample', err, 'process metrics sample failed'));
  }, opts.intervalMs ?? 10_000);
  // Sampling never keeps a process alive on its own.
  timer.unref();
  let stopped = false;
  return {
    sample: () => (running = running.then(sample)),
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await running.then(sample).catch((err: unknown) => warnOnce('sample', err, 'process metrics sample failed'));
      lag.disable();
    },
  };
}
