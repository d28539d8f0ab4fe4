import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBacktestCommand } from '../../client/commands/backtest';
import { UsageError } from '../../infra/errors';
import { checkCandles } from '../../lib/candle-hygiene';
import type { Candle } from '../../lib/candles';
import type { ModelSignal } from '../../lib/engine';
import { computeFeatureMatrix, FEATURE_SCHEMA } from '../../lib/features';
import { createSignalProvider } from '../../models/inference';
import { buildObservation, loadPolicyManifest, policyAct } from '../../models/ppo';
import { promoteModelVersion, readManifest, registerModelVersion } from '../../models/registry';
import { BOOTSTRAP_MODEL_DIR, createModelSignalSource, evictSignalCache, ppoAction, registryResolver, type ModelProblem } from '../../models/signal';
import { trainModelVersion } from '../../models/train';
import { seriesFrom } from '../../models/evaluation';
import { simulateBacktest, type BacktestSeries } from '../../lib/backtest';
import { normalizeFeatures } from '../../models/normalization';
import { freshDatabase, type TestDatabase } from '../../testkit/db';
import { readCandleCsv } from '../../infra/candle-files';
import { modelFallbackAlert } from '../../lib/alerts';
import { AlertDispatcher } from '../../activities/alerts';
import { parseConfig } from '../../infra/config';
import { createLogger } from '../../infra/logger';
import type { Stack } from '../../infra/stack';
import { configuredTrading } from '../../workers/trading';
import { fixtureCandleFile } from '../../testkit/fixtures';


const SMALL = {
  ppoSteps: 1024,
  walkForwardFolds: 0,
  ensemble: { forest: { trees: 10 }, boosting: { rounds: 20 } },
  ppo: { rolloutSteps: 256, episodeLength: 128, epochs: 2, minibatchSize: 64 },
};

describe('models/signal: one model signal for live and backtest', function () {
  this.timeout(180_000); // trains models and runs backtests through them, with PostgreSQL
  let tmp: string;
  let data: string;
  let dir: string;
  let rows: { features: number[]; candle: Candle }[];
  const quietIo = () => ({ info: () => undefined, warn: () => undefined });
  const config = () => ({ risk: { initialCapital: 10_000, maxPositionSize: 0.1, stopLossPct: 0.02, takeProfitPct: 0.04, maxDrawdown: 0.2 }, strategy: 'rules' as const });

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-signal-'));
    const lines = fs.readFileSync(fixtureCandleFile('binanceusdm_BTC-USDT_1h.csv'), 'utf8').trim().split('\n');
    data = path.join(tmp, 'binanceusdm_BTC-USDT_1h.csv');
    fs.writeFileSync(data, [lines[0], ...lines.slice(-2000)].join('\n') + '\n');
    dir = path.join(tmp, 'v1');
    await trainModelVersion([data], { out: dir, seed: 4, ...SMALL });
    const f = readCandleCsv(data);
    const candles = checkCandles(f.candles, f.timeframeMs).candles;
    const m = computeFeatureMatrix(candles);
    rows = [];
    for (let k = m.rowCount - 300; k < m.rowCount; k++) rows.push({ features: Array.from(m.values.subarray(k * m.width, (k + 1) * m.width)), candle: candles[m.warmup + k] });
  });
  after(async () => {
    await evictSignalCache();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('maps the policy asked as if flat and as if long to an action (the position-flag rule)', () => {
    assert.deepEqual(ppoAction(0.9, 0.8).action, 'long', 'long either way');
    assert.deepEqual(ppoAction(0.1, 0.2).action, 'flat', 'flat either way');
    assert.equal(ppoAction(0.1, 0.9).action, undefined, 'enter no, leave no: hold');
    assert.equal(ppoAction(0.9, 0.1).action, 'flat', 'contradiction: no entries');
    assert.equal(ppoAction(0.5, 0.5).action, 'flat', 'greedy: P(long) must exceed 0.5');
  });

  it('ensemble: the same probability and confidence as the batched ONNX provider, and the version id', async () => {
    const manifest = readManifest(dir);
    const source = createModelSignalSource({ dir, strategy: 'ensemble' });
    const provider = createSignalProvider({ dir });
    for (const r of rows.slice(0, 50)) {
      const [s, p] = await Promise.all([source('BTC/USDT:USDT', r.features, r.candle), provider('BTC/USDT:USDT', r.features, r.candle)]);
      assert.equal(s.ok, true, s.error);
      assert.equal(s.version, manifest.id);
      assert.equal(s.probUp, p.probUp);
      assert.equal(s.confidence, p.confidence);
    }
  });

  it('ppo: the action follows the TypeScript policy for both position flags (ONNX Runtime serving)', async () => {
    const { policy } = loadPolicyManifest(path.join(dir, 'ppo.manifest.json'));
    const source = createModelSignalSource({ dir, strategy: 'ppo' });
    // The policy was trained behind the version's per-symbol normalization; served the same way.
    const normalization = readManifest(dir).normalization;
    assert.ok(normalization?.symbols['BTC/USDT:USDT'], 'the version normalizes its symbol');
    const seen = new Set<string>();
    for (const r of rows) {
      const s = await source('BTC/USDT:USDT', r.features, r.candle);
      assert.equal(s.ok, true, s.error);
      assert.equal(s.probUp, undefined, 'ppo alone gives no probability');
      const normalized: number[] = Array.from(normalizeFeatures(normalization, 'BTC/USDT:USDT', r.features));
      const flat = policyAct(policy, buildObservation(normalized, 'flat')).probLong;
      const long = policyAct(policy, buildObservation(normalized, 'long')).probLong;
      if (Math.abs(flat - 0.5) < 1e-5 || Math.abs(long - 0.5) < 1e-5) continue; // float32 vs float64 at the boundary
      assert.equal(s.action, ppoAction(flat, long).action, `row ${r.candle.timestamp}`);
      seen.add(String(s.action));
    }
    assert.ok(seen.size >= 1, 'actions were compared');
  });

  it('hybrid: probability from the ensemble and the action from the policy, one version', async () => {
    const source = createModelSignalSource({ dir, strategy: 'hybrid' });
    const e = createModelSignalSource({ dir, strategy: 'ensemble' });
    const p = createModelSignalSource({ dir, strategy: 'ppo' });
    for (const r of rows.slice(0, 40)) {
      const [h, es, ps] = await Promise.all([source('X/Y', r.features, r.candle), e('X/Y', r.features, r.candle), p('X/Y', r.features, r.candle)]);
      assert.equal(h.ok, true, h.error);
      assert.equal(h.probUp, es.probUp);
      assert.equal(h.confidence, es.confidence);
      assert.equal(h.action, ps.action);
    }
    assert.deepEqual(await createModelSignalSource({ dir, strategy: 'rules' }).ready(), { ok: false, error: 'strategy rules uses no model' });
  });

  it('refuses bad feature vectors with ok:false, never a throw', async () => {
    const source = createModelSignalSource({ dir, strategy: 'hybrid' });
    const short = await source('X/Y', rows[0].features.slice(1), rows[0].candle);
    assert.equal(short.ok, false);
    assert.match(short.error!, /feature schema mismatch/);
    const nan = [...rows[0].features];
    nan[3] = NaN;
    const bad = await source('X/Y', nan, rows[0].candle);
    assert.equal(bad.ok, false);
    assert.match(bad.error!, /non-finite|not finite/);
  });

  describe('a corrupt or missing model: no entries, an alert, and the backtest goes on', () => {
    let corrupt: string;
    let heldOut: BacktestSeries[];
    before(() => {
      corrupt = path.join(tmp, 'corrupt');
      fs.cpSync(dir, corrupt, { recursive: true });
      const file = path.join(corrupt, 'gbt.onnx');
      const bytes = fs.readFileSync(file);
      bytes[bytes.length - 3] ^= 0xff;
      fs.writeFileSync(file, bytes);
      const f = readCandleCsv(data);
      heldOut = seriesFrom([{ source: data, exchange: f.exchange, symbol: f.symbol, timeframe: f.timeframe, timeframeMs: f.timeframeMs, candles: f.candles }], f.candles[1400].timestamp);
    });

    it('reports the problem as ok:false and alerts once per problem', async () => {
      const problems: ModelProblem[] = [];
      const source = createModelSignalSource({ dir: corrupt, strategy: 'ensemble', onProblem: (p) => problems.push(p) });
      for (const r of rows.slice(0, 5)) {
        const s = await source('BTC/USDT:USDT', r.features, r.candle);
        assert.equal(s.ok, false);
        assert.match(s.error!, /member gbt file gbt\.onnx is corrupt/);
      }
      assert.equal(problems.length, 1, 'rate limited: one alert for five failing candles');
      assert.equal(problems[0].symbol, 'BTC/USDT:USDT');
      const alert = modelFallbackAlert({ symbol: problems[0].symbol, version: problems[0].version, error: problems[0].error, problem: problems[0].key });
      assert.equal(alert.severity, 'warning');
      assert.match(alert.text, /^Model unavailable \(model \S+: member gbt file gbt\.onnx is corrupt.*\), first seen on BTC\/USDT:USDT: no new entries on the symbols that use it; protective exits continue\.$/);
      const missing = await createModelSignalSource({ dir: path.join(tmp, 'nothing-here'), strategy: 'hybrid' })('X/Y', rows[0].features, rows[0].candle);
      assert.equal(missing.ok, false);
      assert.match(missing.error!, /no model at .*manifest\.json is missing/);
    });

    it('a backtest with strategy ensemble over a corrupt model makes no entries (a sound one does)', async () => {
      const run = (signalDir: string) =>
        simulateBacktest({ series: heldOut, strategy: 'ensemble', initialCapital: 10_000, signal: createModelSignalSource({ dir: signalDir, strategy: 'ensemble' }).backtest });
      const broken = await run(corrupt);
      assert.ok(broken.symbols[0].decisions > 100, 'decisions were taken');
      assert.equal(broken.trades.length + broken.openPositions.length, 0, 'no entries without a model');
      // The same backtest with an always-bullish signal enters: the test above can fail.
      const bullish = await simulateBacktest({ series: heldOut, strategy: 'ensemble', initialCapital: 10_000, signal: async (): Promise<ModelSignal> => ({ ok: true, probUp: 0.9, confidence: 1, version: 'x' }) });
      assert.ok(bullish.trades.length + bullish.openPositions.length > 0, 'an always-bullish model enters');
    });

    it('a missing PPO policy blocks ppo and hybrid but not ensemble', async () => {
      const noPpo = path.join(tmp, 'no-ppo');
      fs.cpSync(dir, noPpo, { recursive: true });
      fs.rmSync(path.join(noPpo, 'ppo.onnx'));
      const r = rows[0];
      assert.equal((await createModelSignalSource({ dir: noPpo, strategy: 'ensemble' })('X/Y', r.features, r.candle)).ok, true, 'ensemble still serves');
      for (const strategy of ['ppo', 'hybrid'] as const) {
        const s = await createModelSignalSource({ dir: noPpo, strategy })('X/Y', r.features, r.candle);
        assert.equal(s.ok, false, strategy);
        assert.match(s.error!, /ppo\.onnx: no such file/);
      }
    });

    it('trader backtest --models refuses a corrupt or empty directory with a clear message', async () => {
      await assert.rejects(runBacktestCommand({ data: [data], strategy: 'ensemble', models: corrupt }, quietIo(), { config }), (e: Error) => e instanceof UsageError && /corrupt/.test(e.message));
      const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
      await assert.rejects(runBacktestCommand({ data: [data], strategy: 'ppo', models: empty }, quietIo(), { config }), (e: Error) => e instanceof UsageError && /no model in .*; run trader train/.test(e.message));
    });
  });

  it('trader backtest --strategy ensemble|ppo|hybrid --models DIR runs on the trained version', async () => {
    for (const strategy of ['ensemble', 'ppo', 'hybrid'] as const) {
      const r = await runBacktestCommand({ data: [data], strategy, models: dir }, quietIo(), { config });
      assert.equal(r.config.strategy, strategy);
      assert.ok(r.symbols[0].decisions > 1000, `${strategy}: decided on every candle after the warm-up`);
    }
    const ppo = await runBacktestCommand({ data: [data], strategy: 'ppo', models: dir }, quietIo(), { config });
    assert.ok(ppo.trades.length + ppo.openPositions.length > 0, 'the PPO policy trades over 2,000 candles');
  });

  describe('which version: pinned, champion, bootstrap fallback (registry in PostgreSQL)', () => {
    let db: TestDatabase;
    let other: string;
    before(async () => {
      db = await freshDatabase();
      other = path.join(tmp, 'models', 'v2');
      await trainModelVersion([data], { out: other, seed: 9, id: 'v2-seed9', ...SMALL });
    });
    after(async () => {
      await db?.drop();
    });

    it('serves the bootstrap model without a champion, the champion once there is one, and a pinned version when asked', async () => {
      const bootstrapId = readManifest(dir).id;
      const source = createModelSignalSource({ strategy: 'hybrid', resolver: registryResolver(db.sql), modelsRoot: path.join(tmp, 'models'), fallbackDir: dir });
      const r = rows[10];
      assert.equal((await source('X/Y', r.features, r.candle)).version, bootstrapId, 'no champion: the bootstrap model');
      assert.equal((await source('X/Y', r.features, r.candle, { version: bootstrapId })).version, bootstrapId, 'the bootstrap model by id');
      await registerModelVersion(db.sql, other);
      await promoteModelVersion(db.sql, 'v2-seed9');
      assert.equal((await source('X/Y', r.features, r.candle)).version, 'v2-seed9', 'an unpinned trader gets the champion');
      assert.equal((await source('X/Y', r.features, r.candle, { version: bootstrapId })).version, bootstrapId, 'a pinned trader keeps its version');
      assert.equal((await source('X/Y', r.features, r.candle, { version: 'v2-seed9', reload: true })).version, 'v2-seed9', 'a reload to a version');
      const unknown = await source('X/Y', r.features, r.candle, { version: 'no-such-version' });
      assert.equal(unknown.ok, false);
      assert.match(unknown.error!, /no model at .*no-such-version/);
      const bad = await source('X/Y', r.features, r.candle, { version: '../etc' });
      assert.match(bad.error!, /invalid model version id/);
      const none = await createModelSignalSource({ strategy: 'ensemble' }).ready();
      assert.match(none.error!, /no champion and there is no bootstrap model/);
    });

    it('the trading worker turns a model problem into the model-fallback alert, once per problem', async () => {
      const sent: string[] = [];
      const log = createLogger({ level: 'silent' });
      const alerts = new AlertDispatcher({ log, sink: { sendMessage: async (_chat, text) => void sent.push(text) }, adminIds: [111], queue: { sendIntervalMs: 1 } });
      const cfg = parseConfig({ TRADER_HOME: path.join(tmp, 'home'), SYMBOLS: 'BTC/USDT', STRATEGY: 'ensemble' });
      // configuredTrading reads the ledger's database and keeps the Temporal client for later: nothing here calls Temporal.
      const stack = { cfg, log, db, temporal: { client: undefined } } as unknown as Stack;
      try {
        const { deps } = configuredTrading(cfg, stack, log, undefined, { strategy: 'ensemble', alerts });
        const r = rows[0];
        for (const symbol of ['BTC/USDT', 'ETH/USDT']) {
          const s = await deps.signal!(symbol, r.features, r.candle, { version: 'v-gone' });
          assert.equal(s.ok, false);
        }
        assert.equal(await alerts.idle(5_000), true, 'the alert was sent');
        assert.equal(sent.length, 1, `one alert for one broken version on two symbols: ${sent.join(' | ')}`);
        assert.match(sent[0], /WARNING/);
        assert.match(sent[0], /Model v-gone unavailable \(no model at .*v-gone.*\), first seen on BTC\/USDT: no new entries on the symbols that use it; protective exits continue\./);
      } finally {
        await alerts.stop();
      }
    });
  });

  it('the committed bootstrap model loads with this build\'s feature schema (retrain it when the schema changes)', async () => {
    const m = readManifest(BOOTSTRAP_MODEL_DIR);
    assert.equal(m.featureSchema.hash, FEATURE_SCHEMA.hash, 'models/bootstrap was trained on another feature schema: run the command in its report.md');
    const ready = await createModelSignalSource({ dir: BOOTSTRAP_MODEL_DIR, strategy: 'hybrid' }).ready();
    assert.deepEqual(ready, { ok: true, version: m.id });
    const s = await createModelSignalSource({ dir: BOOTSTRAP_MODEL_DIR, strategy: 'hybrid' })('BTC/USDT', rows[0].features, rows[0].candle);
    assert.equal(s.ok, true, s.error);
    assert.ok(s.probUp! > 0 && s.probUp! < 1, 'a probability');
    let bytes = 0;
    for (const f of fs.readdirSync(BOOTSTRAP_MODEL_DIR)) bytes += fs.statSync(path.join(BOOTSTRAP_MODEL_DIR, f)).size;
    assert.ok(bytes < 700_000, `the committed artifact stays small (${bytes} bytes)`);
  });
});
