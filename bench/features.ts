import os from 'node:os';
import path from 'node:path';
import { checkCandles } from '../lib/candle-hygiene';
import { computeFeatureMatrix, createFeatureStream, FEATURE_SCHEMA } from '../lib/features';
import { classifyRegime } from '../lib/regime';
import { readCandleCsv } from '../infra/candle-files';

/**
 * Feature throughput: the live stream (one closed candle in, a fresh vector out) and the batch
 * matrix, over a recorded file. Each is run twice to let the JIT settle, then ROUNDS times;
 * the median round is reported. Goals: stream < 5 us per candle, batch >= 200,000 candles/s.
 *
 *   npm run bench -- features [file.csv] [rounds]
 */

const DATA = process.env.SHARED_DATA_DIR ?? path.join(__dirname, '..', '..', 'shared', 'data');
const file = process.argv[2] ?? path.join(DATA, 'ohlcv', 'binanceusdm_BTC-USDT_1h.csv');
const ROUNDS = Number(process.argv[3] ?? 9);
const WARMUP_ROUNDS = 2;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const nowNs = () => process.hrtime.bigint();
const msSince = (t0: bigint) => Number(nowNs() - t0) / 1e6;

function timeRounds(run: () => number): { ms: number[]; sink: number } {
  let sink = 0; // results feed a checksum so the work cannot be optimised away
  const ms: number[] = [];
  for (let r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
    const t0 = nowNs();
    sink += run();
    if (r >= WARMUP_ROUNDS) ms.push(msSince(t0));
  }
  return { ms, sink };
}

const t0 = nowNs();
const loaded = readCandleCsv(file);
const readMs = msSince(t0);
const t1 = nowNs();
const candles = checkCandles(loaded.candles, loaded.timeframeMs).candles;
const checkMs = msSince(t1);
const n = candles.length;

const stream = timeRounds(() => {
  const s = createFeatureStream();
  let acc = 0;
  for (let i = 0; i < n; i++) {
    const v = s.push(candles[i]);
    if (v) acc += v[0];
  }
  return acc;
});
const batch = timeRounds(() => {
  const m = computeFeatureMatrix(candles);
  return m.values[m.values.length - 1];
});
const matrix = computeFeatureMatrix(candles);
const regime = timeRounds(() => {
  let acc = 0;
  for (let k = 0; k < matrix.rowCount; k++) acc += classifyRegime(matrix.values.subarray(k * matrix.width, (k + 1) * matrix.width)).code;
  return acc;
});

const streamUs = (median(stream.ms) * 1000) / n;
const batchPerS = n / (median(batch.ms) / 1000);
const regimeUs = (median(regime.ms) * 1000) / matrix.rowCount;
const fmt = (x: number, d = 3) => x.toFixed(d);

console.log(`features bench: ${path.basename(file)}, ${n} candles, ${FEATURE_SCHEMA.width} features (schema v${FEATURE_SCHEMA.version}), warm-up ${FEATURE_SCHEMA.warmup}`);
console.log(`  machine: ${os.cpus()[0]?.model ?? 'unknown cpu'} x${os.cpus().length}, node ${process.version}; ${WARMUP_ROUNDS} warm-up + ${ROUNDS} timed rounds, median`);
console.log(`  read CSV ${fmt(readMs, 1)} ms, checkCandles ${fmt(checkMs, 1)} ms (once, cold)`);
console.log(`  stream: ${fmt(streamUs)} us per candle (rounds ${stream.ms.map((m) => fmt(m, 1)).join(', ')} ms)   goal < 5 us`);
console.log(`  batch:  ${Math.round(batchPerS).toLocaleString('en')} candles/s (rounds ${batch.ms.map((m) => fmt(m, 1)).join(', ')} ms)   goal >= 200,000/s`);
console.log(`  regime: ${fmt(regimeUs)} us per row`);
console.log(`  checksum ${fmt(stream.sink + batch.sink + regime.sink, 6)}`);
console.log(`  reproduce: npm run bench -- features${process.argv[2] ? ` ${process.argv[2]}` : ''}`);
console.log(JSON.stringify({ stream_us_per_candle: Number(fmt(streamUs)), batch_candles_per_s: Math.round(batchPerS) }));
