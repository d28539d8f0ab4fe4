import type { AppConfig } from '../../infra/config';
import type { Logger } from '../../infra/logger';
import { prometheusMeter } from '../../infra/temporal';
import { startProcessMetrics, type ProcessMetrics, type ProcessMetricsOptions } from './process';
import { createMetricsWriter, type MetricsWriter, type MetricsWriterStats } from './writer';

export { METRICS_OFF, createMetricsWriter, type MetricsWriter, type MetricsWriterStats } from './writer';
export { TradingMetrics } from './trading';
export { ModelOutcomeTracker } from './model-outcomes';
export { startProcessMetrics, type ProcessMetrics } from './process';

export interface ProcessMetricsHandle {
  /** Hand it to the activities (trading, training) of this process. */
  writer: MetricsWriter;
  process: ProcessMetrics;
  /** Last sample, then the writer flushes and closes; returns its totals. */
  close(): Promise<MetricsWriterStats>;
}

/**
 * A worker process's metrics, built once at start: the InfluxDB writer (off without INFLUXDB_URL,
 * at no cost) and the sampler of the process's own health. Call after the stack is open (the
 * Temporal runtime, and with it the Prometheus meter, exists by then).
 */
export function openProcessMetrics(cfg: Pick<AppConfig, 'influx' | 'temporal'>, log: Logger, worker: string, opts: Pick<ProcessMetricsOptions, 'alerts' | 'intervalMs'> = {}): ProcessMetricsHandle {
  const writer = createMetricsWriter(cfg.influx, log, { meter: prometheusMeter() });
  if (writer.enabled) log.info({ url: cfg.influx?.url, bucket: cfg.influx?.bucket, worker }, 'writing metrics to InfluxDB');
  const process = startProcessMetrics({ writer, log, worker, prometheusAddress: cfg.temporal.metricsAddress, ...opts });
  let closing: Promise<MetricsWriterStats> | undefined;
  return {
    writer,
    process,
    close: () =>
      (closing ??= (async () => {
        await process.stop();
        return writer.close();
      })()),
  };
}
