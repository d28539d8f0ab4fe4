import os from 'node:os';
import { createLogger } from '../infra/logger';
import { TradingMetrics } from '../activities/metrics/trading';
import { InfluxMetricsWriter, METRICS_OFF, type MetricsWriter } from '../activities/metrics/writer';
import { ModelOutcomeTracker } from '../activities/metrics/model-outcomes';
import type { Candle } from '../lib/candles';
import { startInfluxd } from '../testkit/influxdb';
import { freePort } from '../testkit/db';

/**
 * What metrics cost the trading path: the time an activity spends handing over one decided
 * candle's points (regime, model signal, the previous decision, the scored prediction) with
 * INFLUXDB_URL unset, with a real InfluxDB (OSS 1.8.3, started here on a free port), and with
 * InfluxDB down (a closed port: every batch fails and is dropped). The activity never waits for
 * InfluxDB, so the three should be close and all far below a decision's ~26 ms of CPU; the
 * second also reports how fast the points reach the server.
 *
 * The loop yields to the event loop every 100 candles (as activities do between calls), so the
 * writer can send while the bench produces.
 *
 *   npm run bench -- metrics [candles=5000] [symbols=10]
 */

const CANDLES = Number(process.argv[2] ?? 5_000);
const SYMBOLS = Number(process.argv[3] ?? 10);
const H = 3_600_000;
const T0 = Date.UTC(2024, 0, 1);
const log = createLogger({ level: 'silent' });
const tags = { account: 'bench', exchange: 'replay', mode: 'replay' as const, strategy: 'hybrid' };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Microseconds per decided candle of the metrics calls prepareCandle makes. */
async function perCandle(writer: MetricsWriter): Promise<number> {
  const m = new TradingMetrics(writer, tags, new ModelOutcomeTracker());
  const rounds: number[] = [];
  for (let round = 0; round < 5; round++) {
    const base = T0 + round * CANDLES * H;
    const t = process.hrtime.bigint();
    for (let i = 0; i < CANDLES; i++) {
      const symbol = `S${i % SYMBOLS}/USDT`;
      const k = Math.floor(i / SYMBOLS);
      const candle: Candle = { timestamp: base + k * H, open: 100, high: 101, low: 99, close: 100 + (k % 7), volume: 1 };
      m.decision(symbol, { seq: k, candleTime: candle.timestamp - H, closeTime: candle.timestamp, action: 'hold', reason: 'no signal', price: candle.close, ordersSent: 0, latencyMs: 12 });
      await m.candle(`wf/${symbol}`, symbol, candle, H, { label: 'bull', confidence: 0.7, code: 0 }, { ok: true, probUp: 0.5 + (k % 10) / 40, confidence: 0.2, version: 'v1' });
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    rounds.push(Number(process.hrtime.bigint() - t) / 1e3 / CANDLES);
  }
  // The first two rounds warm the JIT up.
  return median(rounds.slice(2));
}

async function main(): Promise<void> {
  const off = await perCandle(METRICS_OFF);

  const influx = await startInfluxd({ database: 'bench' });
  let on: number;
  let writtenPerS: number;
  let stats;
  try {
    const writer = new InfluxMetricsWriter(influx.target, log);
    const t = process.hrtime.bigint();
    on = await perCandle(writer);
    await writer.flush();
    stats = await writer.close();
    writtenPerS = stats.written / (Number(process.hrtime.bigint() - t) / 1e9);
  } finally {
    await influx.close();
  }

  const closedPort = await freePort();
  const down = new InfluxMetricsWriter({ ...influx.target, url: `http://127.0.0.1:${closedPort}` }, log, { maxRetries: 0 });
  const downUs = await perCandle(down);
  const downStats = await down.close();

  const f = (x: number) => x.toFixed(2);
  console.log(`metrics bench: ${CANDLES} decided candles x 5 rounds over ${SYMBOLS} symbols, 4 points per candle (median of rounds 3-5)`);
  console.log(`  machine: ${os.cpus()[0]?.model ?? 'unknown cpu'} x${os.cpus().length}, node ${process.version}`);
  console.log(`  INFLUXDB_URL unset:      ${f(off)} us per candle`);
  console.log(`  InfluxDB 1.8.3 up:       ${f(on)} us per candle; ${stats.written} points written, ${stats.dropped} dropped, ${Math.round(writtenPerS).toLocaleString('en')} points/s end to end`);
  console.log(`  InfluxDB down:           ${f(downUs)} us per candle; ${downStats.dropped} points dropped and counted`);
  console.log(`  reproduce: npm run bench -- metrics${process.argv[2] ? ` ${process.argv.slice(2).join(' ')}` : ''}`);
  console.log(JSON.stringify({ off_us_per_candle: Number(f(off)), on_us_per_candle: Number(f(on)), down_us_per_candle: Number(f(downUs)), points_per_s: Math.round(writtenPerS), dropped_when_up: stats.dropped }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
