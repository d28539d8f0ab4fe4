import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ACTION_CODES,
  alertsPoint,
  breakerPoint,
  decisionPoint,
  equityPoint,
  MEASUREMENTS,
  modelOutcomePoint,
  modelSignalPoint,
  orderPoint,
  positionPoint,
  processPoint,
  regimePoint,
  retrainPoint,
  temporalPoint,
  tradePoint,
  writerPoint,
  type MetricPoint,
} from '../../lib/metrics';
import { bucketQuantile, parsePrometheusText, temporalReadings } from '../../lib/prometheus';
import { ModelOutcomeTracker } from '../../activities/metrics/model-outcomes';
import { prometheusUrl } from '../../activities/metrics/process';
import { ConfigError, parseConfig } from '../../infra/config';
import { costLogReturn, DEFAULT_LABELS } from '../../lib/model-labels';
import type { Candle } from '../../lib/candles';

const tags = { account: 'paper-binance', exchange: 'binance', mode: 'paper' as const, strategy: 'hybrid' };
const proc = { worker: 'trading', host: 'h1' };
const T = Date.UTC(2024, 0, 1);

/** One point of every measurement, as the bot builds them. */
function everyPoint(): MetricPoint[] {
  return [
    tradePoint(tags, { symbol: 'BTC/USDT', qty: '0.5', entryTime: T, exitTime: T + 7_200_000, entryPrice: '100', exitPrice: '102', fees: '0.1', pnl: '0.9', exitReason: 'take_profit' }),
    orderPoint(tags, { symbol: 'BTC/USDT', side: 'buy', orderType: 'market', intent: 'entry', status: 'placed', qty: 0.5, price: 100, clientOrderId: 'dt1-1-en' }, T),
    positionPoint(tags, { symbol: 'BTC/USDT', open: true, qty: '0.5', avgEntryPrice: '100', realizedPnl: '-0.05' }, T),
    equityPoint(tags, { equity: 9_500, totalExposure: 1_000, openPositions: 1, dailyPnl: -20, peakEquity: 10_000 }, T),
    decisionPoint(tags, 'BTC/USDT', { seq: 7, candleTime: T, closeTime: T + 3_600_000, action: 'enter', reason: 'trend', price: 100, ordersSent: 3, latencyMs: 12 }),
    modelSignalPoint(tags, 'BTC/USDT', { ok: true, probUp: 0.6, confidence: 0.3, action: 'long', version: 'v1' }, T),
    modelOutcomePoint(tags, { symbol: 'BTC/USDT', version: 'v1', predictedUp: true, labelUp: false, probUp: 0.6, forwardReturn: -0.01, horizon: 4, time: T }),
    regimePoint(tags, 'BTC/USDT', { label: 'bull', confidence: 0.8, code: 0 }, T),
    breakerPoint(proc, { exchangeId: 'binance', state: 'half_open', consecutiveFailures: 5 }, T),
    alertsPoint(proc, { queued: 5, sent: 3, droppedFull: 1, evicted: 1, droppedSendFailed: 1, droppedStale: 0, waiting: 0, loggedOnly: 0, telegramDown: true }, T),
    retrainPoint({ challenger: 'v2', strategy: 'ensemble', challengerAuc: 0.56, championAuc: 0.55, challengerReturn: 0.01, championReturn: 0.0, promoted: true, heldOutRows: 500, reason: 'better' }, T),
    processPoint(proc, { rssBytes: 200 * 1024 * 1024, heapUsedBytes: 1, heapTotalBytes: 2, externalBytes: 3, cpuPct: 12, eventLoopLagMeanMs: 1, eventLoopLagP99Ms: 5, eventLoopLagMaxMs: 9, uptimeS: 100 }, T),
    temporalPoint(proc, { metric: 'workflow_task_schedule_to_start_latency', taskQueue: 'trading', count: 10, sumMs: 50, meanMs: 5, p95Ms: 9 }, T),
    writerPoint(proc, { written: 10, dropped: 2, pending: 1 }, T),
  ];
}

describe('metric points (lib/metrics): one catalogue for the writer, docs/metrics.md and the dashboard', () => {
  it('every builder writes exactly the tags its catalogue entry lists, and only catalogued fields', () => {
    const points = everyPoint();
    assert.deepEqual(new Set(points.map((p) => p.measurement)), new Set(Object.keys(MEASUREMENTS)), 'a builder per measurement');
    for (const p of points) {
      const doc = MEASUREMENTS[p.measurement];
      assert.deepEqual(Object.keys(p.tags).sort(), [...doc.tags].sort(), `${p.measurement} tags`);
      for (const f of Object.keys(p.fields)) assert.ok((doc.fields as readonly string[]).includes(f), `${p.measurement}.${f} is in the catalogue`);
      for (const [f, v] of Object.entries(p.fields)) assert.ok(typeof v === 'string' || Number.isFinite(v), `${p.measurement}.${f} is a finite number or text`);
    }
  });

  it('derives what the dashboard reads: cash, drawdown, return, action codes, breaker codes, dropped alerts', () => {
    const [trade, , , equity, decision, , outcome, , breaker, alerts] = everyPoint();
    assert.equal(trade.time, T + 7_200_000, 'a trade is stamped at its exit');
    assert.ok(Math.abs((trade.fields.return_pct as number) - 1.8) < 1e-12);
    assert.equal(trade.fields.hold_minutes, 120);
    assert.deepEqual([equity.fields.cash, equity.fields.drawdown, equity.fields.exposure_pct], [8_500, 0.05, (100 * 1_000) / 9_500]);
    assert.equal(decision.time, T + 3_600_000, 'a decision is stamped at its candle close');
    assert.equal(decision.tags.action, 'enter');
    assert.equal(decision.fields.action_code, ACTION_CODES.enter);
    assert.equal(outcome.fields.hit, 0);
    assert.equal(breaker.fields.state_code, 1);
    assert.equal(alerts.fields.dropped, 3);
    assert.equal(alerts.fields.telegram_down, 1);
    const failed = modelSignalPoint(tags, 'BTC/USDT', { ok: false, error: 'model file missing' }, T);
    assert.deepEqual([failed.tags.model_version, failed.fields.ok, failed.fields.error], ['none', 0, 'model file missing']);
    assert.equal('prob_up' in failed.fields, false, 'an absent value is left out, not written as 0');
    assert.equal('exposure_pct' in equityPoint(tags, { equity: 0, totalExposure: 0, openPositions: 0, dailyPnl: 0, peakEquity: 0 }, T).fields, false, 'no division by zero equity');
  });

  it('docs/metrics.md lists every measurement with its tags and fields', () => {
    const guide = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'metrics.md'), 'utf8');
    for (const [name, doc] of Object.entries(MEASUREMENTS)) {
      const row = guide.split('\n').find((l) => l.startsWith(`| \`${name}\` |`));
      assert.ok(row, `docs/metrics.md has a row for ${name}`);
      for (const t of [...doc.tags, ...doc.fields]) assert.ok(row.includes(`\`${t}\``), `docs/metrics.md's ${name} row names ${t}`);
    }
  });
});

describe('Temporal SDK metrics from the Prometheus text format (lib/prometheus)', () => {
  const scrape = (n: number, sum: number, buckets: [string, number][], failed?: number) =>
    [
      '# HELP temporal_workflow_task_schedule_to_start_latency Histogram of workflow task schedule-to-start latencies',
      '# TYPE temporal_workflow_task_schedule_to_start_latency histogram',
      ...buckets.map(([le, c]) => `temporal_workflow_task_schedule_to_start_latency_bucket{namespace="default",task_queue="trading",le="${le}"} ${c}`),
      `temporal_workflow_task_schedule_to_start_latency_sum{namespace="default",task_queue="trading"} ${sum}`,
      `temporal_workflow_task_schedule_to_start_latency_count{namespace="default",task_queue="trading"} ${n}`,
      'temporal_activity_execution_latency_count{namespace="default",task_queue="training",activity_type="trainChallenger"} 1',
      'temporal_activity_execution_latency_count{namespace="default",task_queue="training",activity_type="gatherTrainingData"} 2',
      ...(failed === undefined ? [] : [`temporal_workflow_task_execution_failed{namespace="default",task_queue="trading",failure_reason="NonDeterminismError"} ${failed}`]),
      'trader_metrics_points_written{measurement="trade",note="a \\"quoted\\" value"} 3',
    ].join('\n');

  it('parses names, labels (escapes included) and values, skipping comments', () => {
    const s = parsePrometheusText(scrape(4, 33, [['100', 4], ['+Inf', 4]]));
    assert.equal(s.length, 7);
    assert.deepEqual(s[1], { name: 'temporal_workflow_task_schedule_to_start_latency_bucket', labels: { namespace: 'default', task_queue: 'trading', le: '+Inf' }, value: 4 });
    assert.deepEqual(s[6].labels, { measurement: 'trade', note: 'a "quoted" value' });
  });

  it('sums histograms over labels per task queue and reports the interval mean and p95; counters not yet incremented read 0', () => {
    const first = temporalReadings(parsePrometheusText(scrape(4, 40, [['10', 2], ['100', 4], ['+Inf', 4]])), new Map());
    const sst = (rs: typeof first.readings, metric: string, q: string) => rs.find((r) => r.metric === metric && r.taskQueue === q);
    assert.deepEqual(sst(first.readings, 'workflow_task_schedule_to_start_latency', 'trading'), { metric: 'workflow_task_schedule_to_start_latency', taskQueue: 'trading', count: 4, sumMs: 40, meanMs: 10, p95Ms: 10 + (90 * (3.8 - 2)) / 2 });
    assert.equal(sst(first.readings, 'activity_execution_latency', 'training')?.count, 3, 'summed over activity types');
    for (const q of ['trading', 'training']) assert.equal(sst(first.readings, 'workflow_task_execution_failed', q)?.value, 0, `no failure yet on ${q}: 0, not missing`);

    const second = temporalReadings(parsePrometheusText(scrape(14, 1040, [['10', 2], ['100', 4], ['1000', 14], ['+Inf', 14]], 2)), first.snapshot);
    const r = sst(second.readings, 'workflow_task_schedule_to_start_latency', 'trading')!;
    assert.equal(r.meanMs, 100, 'the 10 new observations averaged 1000 ms / 10');
    assert.ok(r.p95Ms! > 100 && r.p95Ms! <= 1000, `p95 of the interval ${r.p95Ms}`);
    assert.equal(sst(second.readings, 'workflow_task_execution_failed', 'trading')?.value, 2);

    const quiet = temporalReadings(parsePrometheusText(scrape(14, 1040, [['1000', 14], ['+Inf', 14]])), second.snapshot);
    const q = sst(quiet.readings, 'workflow_task_schedule_to_start_latency', 'trading')!;
    assert.equal('meanMs' in q, false, 'no new observation: no interval mean');
    const restarted = temporalReadings(parsePrometheusText(scrape(1, 7, [['10', 1], ['+Inf', 1]])), second.snapshot);
    assert.equal(sst(restarted.readings, 'workflow_task_schedule_to_start_latency', 'trading')?.meanMs, 7, 'a restarted process counts from zero again');
  });

  it('interpolates quantiles inside buckets as histogram_quantile does', () => {
    assert.equal(bucketQuantile(0.5, [[10, 5], [20, 10], [Infinity, 10]]), 10);
    assert.equal(bucketQuantile(0.75, [[10, 5], [20, 10], [Infinity, 10]]), 15);
    assert.equal(bucketQuantile(0.99, [[10, 5], [Infinity, 10]]), 10, 'in the +Inf bucket: the highest finite bound');
    assert.equal(bucketQuantile(0.5, [[10, 0], [Infinity, 0]]), undefined);
  });

  it('reads a wildcard bind address on loopback', () => {
    assert.equal(prometheusUrl('0.0.0.0:9464'), 'http://127.0.0.1:9464/metrics');
    assert.equal(prometheusUrl('127.0.0.1:9000'), 'http://127.0.0.1:9000/metrics');
    assert.equal(prometheusUrl('[::]:9464'), 'http://[::1]:9464/metrics');
  });
});

describe('realized hit rate (activities/metrics/model-outcomes)', () => {
  const H = 3_600_000;
  const candle = (i: number, close: number): Candle => ({ timestamp: T + i * H, open: close, high: close, low: close, close, volume: 1 });

  it('scores each prediction when the candle its horizon ends on closes, against the training label', async () => {
    const tracker = new ModelOutcomeTracker();
    const up = costLogReturn(DEFAULT_LABELS.roundTripCost);
    assert.deepEqual(await tracker.observe('wf', 'BTC/USDT', candle(0, 100), H, { ok: true, probUp: 0.7, version: 'v1' }), []);
    await tracker.observe('wf', 'BTC/USDT', candle(1, 100), H, { ok: true, probUp: 0.2, version: 'v1' });
    await tracker.observe('wf', 'BTC/USDT', candle(1, 100), H, { ok: true, probUp: 0.2, version: 'v1' }); // a retried read: no second prediction
    await tracker.observe('wf', 'BTC/USDT', candle(2, 100), H, { ok: false, error: 'no model' });
    await tracker.observe('wf', 'BTC/USDT', candle(3, 100), H, { ok: true, action: 'long', version: 'v2' });
    const at4 = await tracker.observe('wf', 'BTC/USDT', candle(4, 100 * Math.exp(up * 1.5)), H);
    assert.equal(at4.length, 1);
    assert.ok(Math.abs(at4[0].forwardReturn - up * 1.5) < 1e-12);
    assert.deepEqual({ ...at4[0], forwardReturn: 0 }, { symbol: 'BTC/USDT', version: 'v1', predictedUp: true, labelUp: true, probUp: 0.7, forwardReturn: 0, horizon: 4, time: T + 5 * H });
    const at5 = await tracker.observe('wf', 'BTC/USDT', candle(5, 100 * Math.exp(up * 0.5)), H);
    assert.equal(at5.length, 1);
    assert.deepEqual([at5[0].predictedUp, at5[0].labelUp], [false, false], 'a 0.2 prediction; a rise smaller than the round trip is not "up"');
    // Candle 6 settles nothing (candle 2 had no prediction); a gap skips candle 7, where v2's horizon ended.
    assert.deepEqual(await tracker.observe('wf', 'BTC/USDT', candle(6, 100), H), []);
    assert.deepEqual(await tracker.observe('wf', 'BTC/USDT', candle(8, 100), H), [], "v2's prediction is dropped, its horizon candle was never seen");
  });

  it("uses each version's own labels, and the project's when its manifest cannot be read", async () => {
    const asked: string[] = [];
    const tracker = new ModelOutcomeTracker((v) => {
      asked.push(v);
      if (v === 'broken') throw new Error('no manifest');
      return { horizon: 1, roundTripCost: 0 };
    });
    await tracker.observe('a', 'X/Y', candle(0, 100), H, { ok: true, probUp: 0.9, version: 'short' });
    assert.deepEqual((await tracker.observe('a', 'X/Y', candle(1, 101), H)).map((o) => [o.version, o.horizon, o.labelUp]), [['short', 1, true]]);
    await tracker.observe('b', 'X/Y', candle(0, 100), H, { ok: true, probUp: 0.9, version: 'broken' });
    for (let i = 1; i < 4; i++) assert.deepEqual(await tracker.observe('b', 'X/Y', candle(i, 100), H), []);
    assert.equal((await tracker.observe('b', 'X/Y', candle(4, 100), H))[0].horizon, DEFAULT_LABELS.horizon);
    assert.deepEqual(asked, ['short', 'broken'], 'labels are looked up once per version');
  });
});

describe('TEMPORAL_METRICS_ADDRESS', () => {
  it('takes ip:port and refuses anything else with the variable named', () => {
    assert.equal(parseConfig({ TEMPORAL_METRICS_ADDRESS: '0.0.0.0:9464' }).temporal.metricsAddress, '0.0.0.0:9464');
    assert.equal(parseConfig({ TEMPORAL_METRICS_ADDRESS: '[::1]:9464' }).temporal.metricsAddress, '[::1]:9464');
    assert.equal(parseConfig({}).temporal.metricsAddress, undefined);
    for (const bad of ['9464', 'localhost:9464', '0.0.0.0:99999', '300.1.1.1:80', '0.0.0.0:0']) {
      assert.throws(() => parseConfig({ TEMPORAL_METRICS_ADDRESS: bad }), (e: unknown) => e instanceof ConfigError && e.problems.some((p) => p.variable === 'TEMPORAL_METRICS_ADDRESS'), bad);
    }
  });
});
