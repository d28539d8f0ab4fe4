/**
 * Reading the Temporal SDK's Prometheus endpoint: the exposition text format parsed into samples,
 * and the worker metrics an operator watches summed per task queue, histograms turned into the
 * mean and p95 of the interval since the previous reading.
 *
 * Parsed by hand: the one maintained-looking npm parser (parse-prometheus-text-format) merges the
 * buckets of every label set of a histogram into one and drops their _sum and _count, and the
 * SDK's histograms carry task_queue and workflow_type labels. The format is line-based and small.
 */

export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/y;

function unescapeLabel(v: string): string {
  return v.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(v: string): number {
  if (v === '+Inf') return Infinity;
  if (v === '-Inf') return -Infinity;
  return Number(v);
}

/** Samples of a text-format exposition; comments and lines that do not parse are skipped. */
export function parsePrometheusText(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    if (m[2]) {
      LABEL.lastIndex = 0;
      let l: RegExpExecArray | null;
      while (LABEL.lastIndex < m[2].length && (l = LABEL.exec(m[2])) !== null) labels[l[1]] = unescapeLabel(l[2]);
    }
    const value = parseValue(m[3]);
    if (!Number.isNaN(value)) out.push({ name: m[1], labels, value });
  }
  return out;
}

/** The SDK worker metrics written to InfluxDB (their names without the `temporal_` prefix). */
export const TEMPORAL_WORKER_METRICS = {
  workflow_task_schedule_to_start_latency: 'histogram',
  activity_schedule_to_start_latency: 'histogram',
  workflow_task_execution_latency: 'histogram',
  activity_execution_latency: 'histogram',
  workflow_task_execution_failed: 'counter',
  activity_execution_failed: 'counter',
  local_activity_execution_failed: 'counter',
  workflow_completed: 'counter',
  workflow_failed: 'counter',
} as const;

export type TemporalMetricName = keyof typeof TEMPORAL_WORKER_METRICS;

/** Cumulative state of one histogram on one task queue. */
interface HistogramState {
  count: number;
  sum: number;
  /** Upper bound -> cumulative count. */
  buckets: Map<number, number>;
}

export interface TemporalReading {
  metric: TemporalMetricName;
  taskQueue: string;
  /** Counters: the cumulative count. */
  value?: number;
  /** Histograms: cumulative count and sum (ms), and the interval's mean and p95 when it saw observations. */
  count?: number;
  sumMs?: number;
  meanMs?: number;
  p95Ms?: number;
}

export type TemporalSnapshot = Map<string, HistogramState>;

/**
 * The readings of one scrape. Counters the SDK has not incremented yet are absent from its
 * output; they are reported as 0 for every task queue the scrape shows (a worker with no failure
 * has had zero failures, and a chart of failures should say so rather than show nothing).
 */
export function temporalReadings(samples: PromSample[], previous: TemporalSnapshot, prefix = 'temporal_'): { readings: TemporalReading[]; snapshot: TemporalSnapshot } {
  const queues = new Set<string>();
  for (const s of samples) if (s.name.startsWith(prefix) && s.labels.task_queue) queues.add(s.labels.task_queue);
  const byName = new Map<string, PromSample[]>();
  for (const s of samples) {
    const list = byName.get(s.name);
    if (list) list.push(s);
    else byName.set(s.name, [s]);
  }
  const readings: TemporalReading[] = [];
  const snapshot: TemporalSnapshot = new Map();
  for (const [metric, kind] of Object.entries(TEMPORAL_WORKER_METRICS) as [TemporalMetricName, string][]) {
    const name = prefix + metric;
    if (kind === 'counter') {
      const totals = new Map<string, number>([...queues].map((q) => [q, 0]));
      for (const s of byName.get(name) ?? []) {
        const q = s.labels.task_queue ?? '';
        totals.set(q, (totals.get(q) ?? 0) + s.value);
      }
      for (const [taskQueue, value] of totals) readings.push({ metric, taskQueue, value });
      continue;
    }
    const states = new Map<string, HistogramState>();
    const state = (q: string): HistogramState => {
      let st = states.get(q);
      if (!st) states.set(q, (st = { count: 0, sum: 0, buckets: new Map() }));
      return st;
    };
    for (const s of byName.get(`${name}_count`) ?? []) state(s.labels.task_queue ?? '').count += s.value;
    for (const s of byName.get(`${name}_sum`) ?? []) state(s.labels.task_queue ?? '').sum += s.value;
    for (const s of byName.get(`${name}_bucket`) ?? []) {
      const le = parseValue(s.labels.le ?? '+Inf');
      const b = state(s.labels.task_queue ?? '').buckets;
      b.set(le, (b.get(le) ?? 0) + s.value);
    }
    for (const [taskQueue, st] of states) {
      const key = `${metric}\u0000${taskQueue}`;
      snapshot.set(key, st);
      const before = previous.get(key);
      // A restarted process starts its counters again: then the whole reading is the interval.
      const base = before && before.count <= st.count ? before : { count: 0, sum: 0, buckets: new Map<number, number>() };
      const n = st.count - base.count;
      const r: TemporalReading = { metric, taskQueue, count: st.count, sumMs: st.sum };
      if (n > 0) {
        r.meanMs = (st.sum - base.sum) / n;
        const deltas = [...st.buckets.entries()].sort((a, b) => a[0] - b[0]).map(([le, c]) => [le, c - (base.buckets.get(le) ?? 0)] as [number, number]);
        r.p95Ms = bucketQuantile(0.95, deltas);
      }
      readings.push(r);
    }
  }
  return { readings, snapshot };
}

/**
 * The q-quantile of cumulative buckets (upper bound, count), interpolated linearly inside the
 * bucket it falls in, as Prometheus' histogram_quantile does; in the +Inf bucket, the highest
 * finite bound (all that is known).
 */
export function bucketQuantile(q: number, buckets: Array<[number, number]>): number | undefined {
  if (buckets.length === 0) return undefined;
  const total = buckets[buckets.length - 1][1];
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(bound)) return prevBound;
      const inBucket = count - prevCount;
      return inBucket > 0 ? prevBound + ((bound - prevBound) * (rank - prevCount)) / inBucket : bound;
    }
    prevBound = Number.isFinite(bound) ? bound : prevBound;
    prevCount = count;
  }
  return prevBound;
}
