import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger } from '../../infra/logger';
import { createMetricsWriter, InfluxMetricsWriter, METRICS_OFF } from '../../activities/metrics/writer';
import { tradePoint, type MetricPoint } from '../../lib/metrics';
import { startInfluxd, type InfluxTestServer } from '../../testkit/influxdb';

/**
 * The metrics writer against a real InfluxDB (OSS 1.8.3, v2 write API): points go through the
 * real @influxdata/influxdb-client and are read back with Flux. With the server stopped, slow, or
 * refusing, `write` still returns at once, what is lost is counted per measurement and logged,
 * and memory stays bounded.
 */

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, log: createLogger({ level: 'info', destination }) };
}

const tags = { account: 'test', exchange: 'replay', mode: 'replay' as const, strategy: 'rules' };
const T0 = Date.UTC(2024, 0, 1);
const trade = (i: number, symbol = 'BTC/USDT'): MetricPoint =>
  tradePoint(tags, { symbol, qty: 0.5, entryTime: T0 + i * 3_600_000 - 600_000, exitTime: T0 + i * 3_600_000, entryPrice: 100, exitPrice: 101, fees: 0.1, pnl: 0.4 + i / 100, exitReason: 'take_profit' });
const fast = { flushIntervalMs: 50, maxRetries: 1, minRetryDelayMs: 50, maxRetryDelayMs: 100, maxRetryTimeMs: 1_500, timeoutMs: 1_000, dropLogEveryMs: 0 };

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('metrics writer (real InfluxDB 1.8.3 through @influxdata/influxdb-client)', function () {
  this.timeout(240_000); // starts a real InfluxDB server and waits out its write retries
  let influx: InfluxTestServer;

  before(async () => {
    influx = await startInfluxd({ database: 'writer_test' });
  });
  after(async () => {
    await influx?.close();
  });

  it('writes batched points that read back with Flux, tags and fields intact', async () => {
    const { log } = capture();
    const w = new InfluxMetricsWriter(influx.target, log, fast);
    for (let i = 1; i <= 25; i++) w.write(trade(i, i % 2 ? 'BTC/USDT' : 'ETH/USDT'));
    await w.flush();
    const s = await w.close();
    assert.deepEqual([s.written, s.dropped, s.pending], [25, 0, 0]);
    const rows = await influx.flux(`from(bucket: "writer_test") |> range(start: 0) |> filter(fn: (r) => r._measurement == "trade" and r._field == "pnl") |> group(columns: ["symbol"]) |> sum()`);
    const bySymbol = Object.fromEntries(rows.map((r) => [r.symbol, Number(r._value)]));
    const expected = (odd: boolean) => [...Array(25).keys()].map((k) => k + 1).filter((i) => (i % 2 === 1) === odd).reduce((a, i) => a + 0.4 + i / 100, 0);
    assert.ok(Math.abs(bySymbol['BTC/USDT'] - expected(true)) < 1e-9, JSON.stringify(bySymbol));
    assert.ok(Math.abs(bySymbol['ETH/USDT'] - expected(false)) < 1e-9, JSON.stringify(bySymbol));
    const [one] = await influx.flux(`from(bucket: "writer_test") |> range(start: 0) |> filter(fn: (r) => r._measurement == "trade" and r._field == "exit_price") |> first()`);
    assert.equal(one.exit_reason, 'take_profit');
    assert.equal(one.account, 'test');
    assert.equal(new Date(String(one._time)).getTime(), T0 + 3_600_000, 'the point carries the trade exit time');
  });

  it('with the server stopped, write returns at once, and every lost point is counted per measurement and logged; it writes again once the server is back', async () => {
    const { lines, log } = capture();
    const w = new InfluxMetricsWriter(influx.target, log, fast);
    await influx.stop();
    try {
      // Synchronous: nothing for a caller to await, whatever the server does.
      for (let i = 100; i < 140; i++) assert.equal(w.write(trade(i)), undefined);
      await until(() => w.stats().dropped === 40, 20_000, 'the 40 points to be given up');
      assert.deepEqual(w.stats().droppedBy, { trade: 40 });
      const warn = lines.find((l) => l.msg === 'metrics points dropped (trading is not affected)');
      assert.ok(warn, `a warning is logged: ${JSON.stringify(lines)}`);
      assert.equal(warn.level, 'warn');
    } finally {
      await influx.start();
    }
    w.write(trade(200));
    await w.flush();
    const s = await w.close();
    assert.equal(s.written, 1);
    assert.equal(s.dropped, 40);
    const rows = await influx.flux(`from(bucket: "writer_test") |> range(start: 0) |> filter(fn: (r) => r._measurement == "trade" and r._field == "pnl" and r._time >= ${new Date(T0 + 100 * 3_600_000).toISOString()}) |> count()`);
    assert.equal(Number(rows[0]?._value), 1, 'only the point written after the restart is there');
  });

  it('keeps memory bounded: past maxPending points waiting, new ones are dropped at once', async () => {
    const { log } = capture();
    const w = new InfluxMetricsWriter(influx.target, log, { ...fast, batchSize: 10, maxBufferLines: 20, maxPending: 40, maxRetryTimeMs: 60_000, maxRetries: 5, minRetryDelayMs: 5_000 });
    await influx.stop();
    try {
      for (let i = 0; i < 500; i++) w.write(trade(1000 + i));
      const s = w.stats();
      assert.ok(s.pending <= 40, `pending ${s.pending}`);
      assert.ok(s.dropped >= 460, `dropped ${s.dropped}`);
      const closed = await w.close();
      assert.equal(closed.pending, 0);
      assert.equal(closed.written + closed.dropped, 500, 'every point is accounted for');
      assert.equal(closed.droppedBy.trade, 500);
    } finally {
      await influx.start();
    }
  });

  it('counts points InfluxDB refuses (HTTP 4xx: a field changing type) as dropped without retrying them', async () => {
    const { log } = capture();
    const w = new InfluxMetricsWriter(influx.target, log, fast);
    w.write({ measurement: 'order', tags: { symbol: 'X/Y' }, fields: { qty: 1 }, time: T0 });
    await w.flush();
    w.write({ measurement: 'order', tags: { symbol: 'X/Y' }, fields: { qty: 'one' }, time: T0 + 1 });
    await w.flush();
    const s = await w.close();
    assert.equal(s.written, 1);
    assert.deepEqual(s.droppedBy, { order: 1 });
  });

  it('a slow InfluxDB costs nothing to the caller: write returns at once while requests hang', async () => {
    const hung: http.ServerResponse[] = [];
    const slow = http.createServer((_req, res) => void hung.push(res));
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
    const { log } = capture();
    // Requests hang until the 2 s client timeout; a write that waited for one would take that long.
    const w = new InfluxMetricsWriter({ ...influx.target, url }, log, { ...fast, timeoutMs: 2_000, maxRetries: 0 });
    try {
      for (let i = 0; i < 5; i++) {
        const t = process.hrtime.bigint();
        w.write(trade(2000 + i));
        const ms = Number(process.hrtime.bigint() - t) / 1e6;
        assert.ok(ms < 1_000, `write took ${ms} ms: it waited for the server`);
        await new Promise((r) => setTimeout(r, 60));
      }
      assert.ok(hung.length >= 1, 'the requests reached the hanging server');
      await until(() => w.stats().dropped === 5, 15_000, 'the timed-out points to be dropped');
    } finally {
      await w.close();
      for (const r of hung) r.destroy();
      await new Promise<void>((r) => slow.close(() => r()));
    }
  });

  it('with INFLUXDB_URL unset there is no writer at all: METRICS_OFF keeps nothing and sends nothing', async () => {
    const w = createMetricsWriter(undefined, createLogger({ level: 'silent' }));
    assert.equal(w, METRICS_OFF);
    assert.equal(w.enabled, false);
    for (let i = 0; i < 1000; i++) w.write(trade(i));
    assert.deepEqual(await w.close(), { written: 0, dropped: 0, droppedBy: {}, pending: 0 });
  });
});
