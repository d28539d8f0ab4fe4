import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkCandles } from '../../lib/candle-hygiene';
import { computeFeatureMatrix, FEATURE_SCHEMA } from '../../lib/features';
import { buildDataset, toModelRow } from '../../models/dataset';
import { exportEnsemble, predictEnsemble, trainEnsemble } from '../../models/ensemble';
import { createSignalProvider, evictModelCache, loadEnsemble, type ModelSignal } from '../../models/inference';
import { MANIFEST_FILE, sha256Hex } from '../../models/registry';
import { readCandleCsv } from '../../infra/candle-files';
import { fixtureCandleFile } from '../../testkit/fixtures';


describe('models/inference: the signal provider', function () {
  this.timeout(120_000); // trains a small ensemble in before() and exports it to ONNX
  let tmp: string;
  let dir: string;
  let trained: ReturnType<typeof trainEnsemble>;
  let vectors: Float64Array[]; // held-out FEATURE_SCHEMA vectors
  let version: string;

  /** A copy of the good version, altered by `mutate`, for the failure cases. */
  const variant = (name: string, mutate: (d: string) => void) => {
    const d = path.join(tmp, name);
    fs.cpSync(dir, d, { recursive: true });
    mutate(d);
    return d;
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a manifest edited as raw JSON
  const editManifest = (d: string, f: (m: Record<string, any>) => void) => {
    const file = path.join(d, MANIFEST_FILE);
    const m = JSON.parse(fs.readFileSync(file, 'utf8'));
    f(m);
    fs.writeFileSync(file, JSON.stringify(m));
  };

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-models-inference-'));
    const f = readCandleCsv(fixtureCandleFile('binanceusdm_BTC-USDT_1h.csv'));
    const candles = checkCandles(f.candles, f.timeframeMs).candles.slice(0, 5000);
    const ds = buildDataset(candles, f.timeframeMs);
    trained = trainEnsemble(ds, { seed: 5, forest: { trees: 30 }, boosting: { rounds: 60 } });
    dir = path.join(tmp, 'good');
    version = exportEnsemble(trained.models, dir, { metrics: trained.metrics }).id;
    const m = computeFeatureMatrix(candles);
    vectors = [];
    for (let k = m.rowCount - 40; k < m.rowCount; k++) vectors.push(m.values.slice(k * m.width, (k + 1) * m.width));
  });
  after(async () => {
    await evictModelCache();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('scores a row the same, to the last bit, whether it is asked alone, in a pair, in odd chunks or in one batch', async () => {
    const loaded = await loadEnsemble(dir);
    const width = loaded.manifest.inputs.width;
    let seed = 7;
    const rnd = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
    const rows = Array.from({ length: 240 }, () => Float32Array.from({ length: width }, () => (rnd() - 0.5) * 6));
    const all = await loaded.run(rows);
    for (const size of [1, 2, 7, 64]) {
      for (let i = 0; i < rows.length; i += size) {
        const part = await loaded.run(rows.slice(i, i + size));
        for (let j = 0; j < part.probUp.length; j++) {
          for (let k = 0; k < part.members.length; k++) {
            assert.equal(part.members[k][j], all.members[k][i + j], `member ${loaded.manifest.members[k].name}, row ${i + j}, chunks of ${size}`);
          }
          assert.equal(part.probUp[j], all.probUp[i + j], `row ${i + j}, chunks of ${size}`);
        }
      }
    }
  });

  it('gives each symbol the same signal whether the symbols decide together (one batch) or one after another', async () => {
    const provider = createSignalProvider({ dir });
    const together = await Promise.all(vectors.map((v, i) => provider(`SYM${i}/USDT`, v, { timestamp: 0 })));
    const apart: ModelSignal[] = [];
    for (const [i, v] of vectors.entries()) apart.push(await provider(`SYM${i}/USDT`, v, { timestamp: 0 }));
    assert.deepEqual(apart, together);
  });

  it('answers with the calibrated soft vote of the ONNX members, equal to the TypeScript ensemble within 1e-5', async () => {
    const provider = createSignalProvider({ dir });
    assert.deepEqual(await provider.ready(), { ok: true, version });
    const signals = await Promise.all(vectors.map((v, i) => provider(`SYM${i}/USDT`, v, { timestamp: 0 })));
    const X = new Float32Array(vectors.length * trained.models.width);
    vectors.forEach((v, i) => toModelRow(v, X, i * trained.models.width));
    const ts = predictEnsemble(trained.models, X, vectors.length);
    signals.forEach((s, i) => {
      assert.equal(s.ok, true, s.error);
      assert.equal(s.version, version);
      assert.ok(Math.abs(s.probUp! - ts.probUp[i]) < 1e-5, `row ${i}: ${s.probUp} vs ${ts.probUp[i]}`);
      // A version with fitted thresholds sizes by the members' agreement (combineMembers).
      assert.ok(Math.abs(s.confidence! - ts.agreement[i]) < 1e-5, `row ${i} confidence`);
      assert.equal(s.action, s.probUp! >= trained.models.longThreshold ? 'long' : 'flat');
      assert.deepEqual([s.enterProb, s.exitProb], [trained.models.thresholds.enterProb, trained.models.thresholds.exitProb], 'the signal carries the fitted thresholds');
    });
    const strict = createSignalProvider({ dir, longThreshold: 0.01 });
    assert.equal((await strict('BTC/USDT', vectors[0])).action, 'long');
  });

  /** Counts the batch size of every session.run of each member of the cached version. */
  async function countRuns(): Promise<{ sizes: number[][]; restore: () => void }> {
    const loaded = await loadEnsemble(dir);
    const sizes: number[][] = loaded.members.map(() => []);
    const originals = loaded.members.map((m) => m.session.run);
    loaded.members.forEach((m, k) => {
      m.session.run = ((feeds: Record<string, { dims: readonly number[] }>, ...rest: unknown[]) => {
        sizes[k].push(feeds[m.input].dims[0]);
        return (originals[k] as (...a: unknown[]) => unknown).call(m.session, feeds, ...rest);
      }) as typeof m.session.run;
    });
    return { sizes, restore: () => loaded.members.forEach((m, k) => (m.session.run = originals[k])) };
  }

  it('batches concurrent calls into one session.run per member, and runs a single call as a batch of two (the row and its copy)', async () => {
    const provider = createSignalProvider({ dir });
    await provider.ready();
    const { sizes, restore } = await countRuns();
    try {
      const out = await Promise.all(vectors.slice(0, 9).map((v, i) => provider(`S${i}`, v)));
      assert.ok(out.every((s) => s.ok), 'all ok');
      assert.deepEqual(sizes, [[9], [9], [9]]);
      await provider('S', vectors[0]);
      await provider('S', vectors[1]);
      assert.deepEqual(sizes, [[9, 2, 2], [9, 2, 2], [9, 2, 2]]);
    } finally {
      restore();
    }
  });

  it('with a batch window, calls a few ms apart share a batch; maxBatch caps it', async () => {
    await evictModelCache(dir);
    const windowed = createSignalProvider({ dir, batchWindowMs: 20, maxBatch: 4 });
    await windowed.ready();
    const { sizes, restore } = await countRuns();
    try {
      const staggered = [windowed('A', vectors[2]), new Promise<ModelSignal>((r) => setTimeout(() => r(windowed('B', vectors[3])), 2))];
      assert.ok((await Promise.all(staggered)).every((s) => s.ok), 'windowed ok');
      assert.deepEqual(sizes[0], [2]);
      await Promise.all(vectors.slice(0, 6).map((v, i) => windowed(`S${i}`, v)));
      assert.deepEqual(sizes[0], [2, 4, 2]);
    } finally {
      restore();
      await evictModelCache(dir); // the window setting must not leak into later tests
    }
  });

  it('a missing model: ok false with the reason, never a rejection', async () => {
    const s = await createSignalProvider({ dir: path.join(tmp, 'does-not-exist') })('BTC/USDT', vectors[0]);
    assert.equal(s.ok, false);
    assert.match(s.error!, /no model at .*does-not-exist/);
    const byVersion = await createSignalProvider({ version: 'nope-1', modelsRoot: tmp })('BTC/USDT', vectors[0]);
    assert.match(byVersion.error!, /no model at/);
    const bad = await createSignalProvider({ version: '../escape', modelsRoot: tmp })('BTC/USDT', vectors[0]);
    assert.match(bad.error!, /invalid model version id/);
    assert.match((await createSignalProvider({})('BTC/USDT', vectors[0])).error!, /needs a model directory/);
  });

  it('a corrupt model: tampered bytes, garbage that matches its hash, or a broken manifest', async () => {
    const tampered = variant('tampered', (d) => fs.appendFileSync(path.join(d, 'random_forest.onnx'), 'x'));
    assert.match((await createSignalProvider({ dir: tampered })('BTC/USDT', vectors[0])).error!, /random_forest\.onnx is corrupt/);

    const garbage = variant('garbage', (d) => {
      const junk = Buffer.from('this is not an onnx model');
      fs.writeFileSync(path.join(d, 'gbt.onnx'), junk);
      editManifest(d, (m) => (m.members.find((x: { name: string }) => x.name === 'gbt').sha256 = sha256Hex(junk)));
    });
    const g = await createSignalProvider({ dir: garbage })('BTC/USDT', vectors[0]);
    assert.equal(g.ok, false);
    assert.match(g.error!, /ONNX Runtime cannot load gbt\.onnx/);

    const broken = variant('broken-manifest', (d) => fs.writeFileSync(path.join(d, MANIFEST_FILE), '{ not json'));
    assert.match((await createSignalProvider({ dir: broken })('BTC/USDT', vectors[0])).error!, /manifest\.json is corrupt/);

    const wrongOutput = variant('wrong-output', (d) => editManifest(d, (m) => (m.members[0].output = 'nope')));
    assert.match((await createSignalProvider({ dir: wrongOutput })('BTC/USDT', vectors[0])).error!, /manifest expects features -> nope/);
  });

  it('a feature-schema mismatch: the model\'s schema, the caller\'s schema, or the vector itself', async () => {
    const other = variant('other-schema', (d) => editManifest(d, (m) => (m.featureSchema.hash = 'f'.repeat(64))));
    const s = await createSignalProvider({ dir: other })('BTC/USDT', vectors[0]);
    assert.equal(s.ok, false);
    assert.match(s.error!, /feature schema mismatch: model .* trained on schema v1 \(ffffffffffff\)/);

    const provider = createSignalProvider({ dir });
    assert.match((await createSignalProvider({ dir, expectedSchemaHash: 'a'.repeat(64) })('BTC/USDT', vectors[0])).error!, /feature schema mismatch/);
    const short = await provider('BTC/USDT', vectors[0].slice(0, FEATURE_SCHEMA.width - 1), { timestamp: Date.UTC(2024, 0, 1) });
    assert.equal(short.ok, false);
    assert.match(short.error!, new RegExp(`feature schema mismatch for BTC/USDT @ 2024-01-01T00:00:00.000Z: got ${FEATURE_SCHEMA.width - 1} features`));
    const nan = Array.from(vectors[0]);
    nan[3] = NaN;
    assert.match((await provider('BTC/USDT', nan)).error!, /non-finite/);
    assert.match((await provider('BTC/USDT', undefined as unknown as number[])).error!, /features must be an array/);
    // And the good model still serves after all of that.
    assert.equal((await provider('BTC/USDT', vectors[0])).ok, true);
  });

  it('a model fixed on disk after a failed load is picked up by the next call', async () => {
    const later = path.join(tmp, 'later');
    const provider = createSignalProvider({ dir: later });
    assert.equal((await provider('BTC/USDT', vectors[0])).ok, false);
    fs.cpSync(dir, later, { recursive: true });
    assert.equal((await provider('BTC/USDT', vectors[0])).ok, true);
  });
});
