import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkCandles } from '../../lib/candle-hygiene';
import { FEATURE_SCHEMA } from '../../lib/features';
import { buildDataset } from '../../models/dataset';
import { exportEnsemble, trainEnsemble } from '../../models/ensemble';
import {
  championModelVersion, listModelVersions, loadModelVersion, MANIFEST_FILE, ModelRegistryError, parseManifest, promoteModelVersion, readManifest,
  registerModelVersion, writeModelVersion, type ModelManifest,
} from '../../models/registry';
import { freshDatabase, type TestDatabase } from '../../testkit/db';
import { readCandleCsv } from '../../infra/candle-files';
import { fixtureCandleFile } from '../../testkit/fixtures';


describe('models/registry', function () {
  this.timeout(120_000); // trains an ensemble and uses PostgreSQL
  let tmp: string;
  let trained: ReturnType<typeof trainEnsemble>;
  let db: TestDatabase;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-models-registry-'));
    const f = readCandleCsv(fixtureCandleFile('binanceusdm_BTC-USDT_1h.csv'));
    const candles = checkCandles(f.candles, f.timeframeMs).candles.slice(0, 3000);
    trained = trainEnsemble(buildDataset(candles, f.timeframeMs), { seed: 3, forest: { trees: 8 }, boosting: { rounds: 10 } });
    db = await freshDatabase();
  });
  after(async () => {
    await db?.drop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('exports a version directory with one .onnx per member and a zod-valid manifest', () => {
    const dir = path.join(tmp, 'v1');
    const m = exportEnsemble(trained.models, dir, { metrics: trained.metrics, created: new Date('2024-01-02T03:04:05Z'), sources: ['binanceusdm_BTC-USDT_1h.csv'] });
    assert.match(m.id, /^ensemble-20240102T030405Z-[0-9a-f]{8}$/);
    assert.deepEqual(fs.readdirSync(dir).sort(), ['gbt.onnx', 'logistic.onnx', MANIFEST_FILE, 'random_forest.onnx']);
    const back = readManifest(dir);
    assert.equal(back.featureSchema.hash, FEATURE_SCHEMA.hash);
    assert.deepEqual(back.featureSchema.names, [...FEATURE_SCHEMA.names]);
    assert.equal(back.champion, false);
    assert.equal(back.data.from, new Date(trained.models.data.from).toISOString());
    assert.ok((back.metrics.summary as Record<string, { auc: number }>).ensemble.auc > 0, 'headline metrics in the manifest');
    const loaded = loadModelVersion(dir);
    assert.equal(loaded.members.size, 3);
    assert.throws(() => exportEnsemble(trained.models, dir), /immutable/);
  });

  it('refuses a tampered member file, a missing one and a manifest that does not validate', () => {
    const dir = path.join(tmp, 'v-tamper');
    exportEnsemble(trained.models, dir, { id: 'tamper' });
    const file = path.join(dir, 'gbt.onnx');
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 5] ^= 0xff;
    fs.writeFileSync(file, bytes);
    assert.throws(() => loadModelVersion(dir), /member gbt file gbt\.onnx is corrupt/);
    fs.rmSync(file);
    assert.throws(() => loadModelVersion(dir), /gbt\.onnx is missing/);
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST_FILE), 'utf8'));
    assert.throws(() => parseManifest({ ...manifest, members: [] }), (e: Error) => e instanceof ModelRegistryError && /members/.test(e.message));
    assert.throws(() => parseManifest({ ...manifest, featureSchema: { ...manifest.featureSchema, hash: 'x' } }), /featureSchema\.hash/);
    assert.throws(() => parseManifest({ ...manifest, data: { ...manifest.data, to: manifest.data.from } }), /data range must end after it starts/);
    assert.throws(() => parseManifest({ ...manifest, members: [manifest.members[0], { ...manifest.members[1], file: '../x.onnx' }] }), /members\.1\.file/);
    fs.writeFileSync(path.join(dir, MANIFEST_FILE), '{"formatVersion": 1,');
    assert.throws(() => readManifest(dir), /manifest\.json is corrupt/);
    assert.throws(() => readManifest(path.join(tmp, 'nope')), /no model at/);
  });

  it('writeModelVersion checks bytes against the manifest before writing anything', () => {
    const m: ModelManifest = readManifest(path.join(tmp, 'v1'));
    assert.throws(() => writeModelVersion(path.join(tmp, 'w'), m, {}), /no bytes were given/);
    assert.throws(() => writeModelVersion(path.join(tmp, 'w'), m, { 'logistic.onnx': new Uint8Array([1]), 'random_forest.onnx': new Uint8Array([1]), 'gbt.onnx': new Uint8Array([1]) }), /do not match/);
    assert.equal(fs.existsSync(path.join(tmp, 'w')), false);
  });

  it('records versions in model_versions and promotes one champion per kind, both ways', async () => {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    exportEnsemble(trained.models, a, { id: 'ens-a', metrics: trained.metrics, created: new Date('2024-01-01T00:00:00Z') });
    exportEnsemble(trained.models, b, { id: 'ens-b', metrics: trained.metrics, created: new Date('2024-02-01T00:00:00Z') });
    const ra = await registerModelVersion(db.sql, a);
    assert.equal(ra.role, 'challenger');
    assert.equal(ra.featureSchemaHash, FEATURE_SCHEMA.hash);
    assert.equal(ra.artifactPath, path.resolve(a));
    assert.ok(typeof (ra.metrics.ensemble as { auc: number }).auc === 'number', 'summary metrics stored as jsonb');
    await registerModelVersion(db.sql, b);
    await assert.rejects(registerModelVersion(db.sql, a), /duplicate key/);
    assert.equal(await championModelVersion(db.sql), undefined);

    await promoteModelVersion(db.sql, 'ens-a');
    assert.equal((await championModelVersion(db.sql))?.id, 'ens-a');
    assert.equal(readManifest(a).champion, true);

    const r = await promoteModelVersion(db.sql, 'ens-b');
    assert.equal(r.champion.id, 'ens-b');
    assert.equal(r.retired?.id, 'ens-a');
    assert.ok(r.champion.promotedAt instanceof Date, 'promotion time recorded');
    assert.equal(readManifest(a).champion, false);
    assert.equal(readManifest(b).champion, true);
    const rows = await listModelVersions(db.sql, 'ensemble');
    assert.deepEqual(rows.map((x) => [x.id, x.role]), [['ens-b', 'champion'], ['ens-a', 'retired']]);

    await promoteModelVersion(db.sql, 'ens-a'); // back again: rollback to the previous version
    assert.equal((await championModelVersion(db.sql))?.id, 'ens-a');
    assert.equal(readManifest(b).champion, false);
    await assert.rejects(promoteModelVersion(db.sql, 'missing'), /no model version 'missing'/);
    const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from model_versions where role = 'champion'`;
    assert.equal(n, 1);
  });
});
