import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { checkCandles } from '../lib/candle-hygiene';
import { computeFeatureMatrix, FEATURE_SCHEMA } from '../lib/features';
import { buildDataset, toModelRow } from '../models/dataset';
import { exportEnsemble, trainEnsemble } from '../models/ensemble';
import { createSignalProvider, evictModelCache, loadEnsemble } from '../models/inference';
import { readCandleCsv } from '../infra/candle-files';

/**
 * Ensemble inference through ONNX Runtime, the way the trading activity calls it.
 *
 * Trains the default ensemble on the last year of BTC 1h (timed: that is the training figure),
 * exports it, then measures for each member session: session.run latency at batch 1 (p50, p99
 * over RUNS calls after WARMUP) and the per-row cost at batch 64 and 512; then the whole signal
 * provider (features vector -> model row -> 3 sessions -> calibration -> vote) at batch 1.
 *
 *   npm run bench -- inference [runs]
 */

const DATA = process.env.SHARED_DATA_DIR ?? path.join(__dirname, '..', '..', 'shared', 'data');
const FILE = path.join(DATA, 'ohlcv', 'binanceusdm_BTC-USDT_1h.csv');
const RUNS = Number(process.argv[2] ?? 5000);
const WARMUP = 500;
const YEAR_HOURS = 24 * 365;

const nowNs = () => process.hrtime.bigint();
const usSince = (t0: bigint) => Number(nowNs() - t0) / 1e3;
const pct = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))];
const r2 = (x: number) => Math.round(x * 100) / 100;

async function main() {
  const f = readCandleCsv(FILE);
  const all = checkCandles(f.candles, f.timeframeMs).candles;
  const candles = all.slice(all.length - (YEAR_HOURS + FEATURE_SCHEMA.warmup + 4));
  const t0 = nowNs();
  const ds = buildDataset(candles, f.timeframeMs);
  const datasetMs = usSince(t0) / 1000;
  const t1 = nowNs();
  const { models, metrics } = trainEnsemble(ds, { seed: 1 });
  const trainMs = usSince(t1) / 1000;

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-bench-inference-'));
  const dir = path.join(tmp, 'version');
  exportEnsemble(models, dir, { metrics });
  const sizes = Object.fromEntries(models.members.map((m) => [m.name, fs.statSync(path.join(dir, `${m.name}.onnx`)).size]));

  const matrix = computeFeatureMatrix(candles);
  const vectors: Float64Array[] = [];
  for (let k = 0; k < matrix.rowCount; k++) vectors.push(matrix.values.slice(k * matrix.width, (k + 1) * matrix.width));
  const rows = vectors.map((v) => toModelRow(v)!);
  const width = models.width;
  const batchOf = (n: number, offset: number) => {
    const X = new Float32Array(n * width);
    for (let i = 0; i < n; i++) X.set(rows[(offset + i) % rows.length], i * width);
    return new ort.Tensor('float32', X, [n, width]);
  };

  const loaded = await loadEnsemble(dir);
  const perModel: Record<string, { p50_us: number; p99_us: number; batch64_us_per_row: number; batch512_us_per_row: number; bytes: number }> = {};
  let sink = 0;
  for (const m of loaded.members) {
    const single = Array.from({ length: 64 }, (_, i) => batchOf(1, i * 97));
    const lat: number[] = [];
    for (let i = 0; i < WARMUP + RUNS; i++) {
      const feeds = { [m.input]: single[i % single.length] };
      const t = nowNs();
      const out = await m.session.run(feeds, [m.output]);
      const us = usSince(t);
      sink += (out[m.output].data as Float32Array)[1];
      if (i >= WARMUP) lat.push(us);
    }
    const perRow = async (n: number) => {
      const feeds = { [m.input]: batchOf(n, 13) };
      for (let i = 0; i < 20; i++) await m.session.run(feeds, [m.output]);
      const reps = Math.max(20, Math.round(20000 / n));
      const t = nowNs();
      for (let i = 0; i < reps; i++) sink += (((await m.session.run(feeds, [m.output]))[m.output].data as Float32Array)[1]);
      return usSince(t) / reps / n;
    };
    perModel[m.name] = { p50_us: r2(pct(lat, 0.5)), p99_us: r2(pct(lat, 0.99)), batch64_us_per_row: r2(await perRow(64)), batch512_us_per_row: r2(await perRow(512)), bytes: sizes[m.name] };
  }

  const provider = createSignalProvider({ dir });
  const provLat: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const v = vectors[(i * 31) % vectors.length];
    const t = nowNs();
    const s = await provider('BTC/USDT:USDT', v);
    const us = usSince(t);
    if (!s.ok) throw new Error(`provider failed: ${s.error}`);
    sink += s.probUp!;
    if (i >= WARMUP) provLat.push(us);
  }
  const symbols = 16;
  const multiLat: number[] = [];
  for (let i = 0; i < 200 + RUNS / 10; i++) {
    const t = nowNs();
    const out = await Promise.all(Array.from({ length: symbols }, (_, s) => provider(`S${s}`, vectors[(i * 17 + s) % vectors.length])));
    const us = usSince(t);
    sink += out[0].probUp ?? 0;
    if (i >= 200) multiLat.push(us);
  }
  await evictModelCache();
  fs.rmSync(tmp, { recursive: true, force: true });

  const p99Max = Math.max(...Object.values(perModel).map((m) => m.p99_us));
  console.log(`inference bench: ensemble trained on ${ds.rows} rows (last year of ${path.basename(FILE)}), ${width} inputs, onnxruntime-node ${ort.env.versions?.node ?? ''}`);
  console.log(`  machine: ${os.cpus()[0]?.model ?? 'unknown cpu'} x${os.cpus().length}, node ${process.version}; ${WARMUP} warm-up + ${RUNS} timed calls; sessions single-threaded`);
  console.log(`  dataset ${datasetMs.toFixed(0)} ms; training ${trainMs.toFixed(0)} ms (logistic ${metrics.trainingMs.logistic}, random forest ${metrics.trainingMs.random_forest}, gbt ${metrics.trainingMs.gbt})`);
  for (const [name, m] of Object.entries(perModel)) {
    console.log(`  ${name.padEnd(14)} batch 1: p50 ${m.p50_us.toFixed(1)} us, p99 ${m.p99_us.toFixed(1)} us | batched: ${m.batch64_us_per_row.toFixed(2)} us/row @64, ${m.batch512_us_per_row.toFixed(2)} us/row @512 | ${(m.bytes / 1024).toFixed(0)} KiB`);
  }
  console.log(`  signal provider (3 members + calibration + vote), 1 symbol: p50 ${pct(provLat, 0.5).toFixed(1)} us, p99 ${pct(provLat, 0.99).toFixed(1)} us`);
  console.log(`  signal provider, ${symbols} symbols at once (one batch): p50 ${pct(multiLat, 0.5).toFixed(1)} us, p99 ${pct(multiLat, 0.99).toFixed(1)} us for all ${symbols}`);
  console.log(`  test split (out of sample): ${Object.entries(metrics.test).map(([k, v]) => `${k} AUC ${v.auc.toFixed(3)} acc ${v.accuracy.toFixed(3)}`).join('; ')}`);
  console.log(`  p99 goal < 50 us for the slowest model: ${p99Max < 50 ? 'met' : 'NOT met'} (${p99Max.toFixed(1)} us); checksum ${sink.toFixed(3)}`);
  console.log(`  reproduce: npm run bench -- inference${process.argv[2] ? ` ${process.argv[2]}` : ''}`);
  console.log(JSON.stringify({
    p99_us_per_model_max: p99Max,
    per_model: perModel,
    provider_p50_us: r2(pct(provLat, 0.5)),
    provider_p99_us: r2(pct(provLat, 0.99)),
    [`provider_${symbols}_symbols_p50_us`]: r2(pct(multiLat, 0.5)),
    train_ms_year_btc_1h: Math.round(trainMs),
    train_rows: ds.rows,
  }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
