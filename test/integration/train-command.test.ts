import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTrainCommand } from '../../client/commands/train';
import { UsageError } from '../../infra/errors';
import { loadPolicyManifest } from '../../models/ppo';
import { championModelVersion, getModelVersion, loadModelVersion, readManifest, sha256Hex } from '../../models/registry';
import { trainModelVersion, TrainingInputError, type TrainReport, type TrainStage } from '../../models/train';
import { freshDatabase, type TestDatabase } from '../../testkit/db';
import { fixtureCandleFile } from '../../testkit/fixtures';

const REPO = path.join(__dirname, '..', '..');

const SMALL = {
  walkForwardFolds: 2,
  ensemble: { forest: { trees: 10 }, boosting: { rounds: 20 } },
  ppo: { rolloutSteps: 256, episodeLength: 128, epochs: 2, minibatchSize: 64 },
};

describe('trader train', function () {
  this.timeout(180_000); // runs `trader train` as a child process: it trains models
  let tmp: string;
  let btc: string;
  let spotBtc: string;
  let spotEth: string;
  const quietIo = () => ({ info: () => undefined, warn: () => undefined, bars: false });
  const lines: string[] = [];
  const io = { info: (l: string) => lines.push(l), warn: (l: string) => lines.push(l), bars: false };
  const config = (home: string, databaseUrl?: string) => () => ({
    home, databaseUrl, postgresPort: 1,
    risk: { initialCapital: 10_000, maxPositionSize: 0.1, stopLossPct: 0.02, takeProfitPct: 0.04, maxDrawdown: 0.2 },
  });

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-train-'));
    // The last n rows, or the n rows before row `end`.
    const slice = (name: string, n: number, end?: number) => {
      const all = fs.readFileSync(fixtureCandleFile(name), 'utf8').trim().split('\n');
      const file = path.join(tmp, name);
      fs.writeFileSync(file, [all[0], ...(end === undefined ? all.slice(-n) : all.slice(1 + end - n, 1 + end))].join('\n') + '\n');
      return file;
    };
    btc = slice('binanceusdm_BTC-USDT_1h.csv', 2000);
    // The same hours of both (the generated ETH has the first 3,000 hours of 2020); btc above is later.
    spotBtc = slice('fixture_BTC-USDT_1h.csv', 2000, 3000);
    spotEth = slice('synthetic_ETH-USDT_1h.csv', 2000, 3000);
  });
  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('--out DIR: one version directory with the ONNX files, a manifest and the evaluation report', async () => {
    const out = path.join(tmp, 'v-out');
    const r = await runTrainCommand({ data: [btc], out, seed: '3', ppoSteps: '512' }, io, { config: config(path.join(tmp, 'home-unused')), settings: SMALL });
    assert.equal(r.dir, out);
    assert.equal(r.registered, undefined, '--out does not touch the registry');
    assert.deepEqual(fs.readdirSync(out).sort(), ['gbt.onnx', 'logistic.onnx', 'manifest.json', 'ppo.manifest.json', 'ppo.onnx', 'random_forest.onnx', 'report.json', 'report.md']);
    const m = readManifest(out);
    assert.equal(m.id, r.manifest.id);
    assert.equal(loadModelVersion(out).members.size, 3, 'members load and match their sha256');
    assert.equal(m.ppo?.sha256, sha256Hex(fs.readFileSync(path.join(out, 'ppo.onnx'))), 'the manifest names the policy');
    assert.equal(loadPolicyManifest(path.join(out, 'ppo.manifest.json')).policy.provenance.seed, 3);
    assert.equal(m.data.sources?.[0], 'binanceusdm_BTC-USDT_1h.csv');

    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8')) as TrainReport;
    assert.deepEqual(Object.keys(report.classifiers.test).sort(), ['ensemble', 'gbt', 'logistic', 'random_forest']);
    for (const [k, c] of Object.entries(report.classifiers.test)) {
      for (const v of [c.accuracy, c.auc, c.logLoss, c.brier, c.ece]) assert.ok(Number.isFinite(v), `${k}: finite metrics`);
      assert.equal(c.reliability.length, 10, `${k}: a calibration table`);
    }
    assert.equal(report.classifiers.walkForward.length, 2, 'two walk-forward folds');
    assert.deepEqual(report.backtests.strategies.map((s) => s.strategy), ['rules', 'ensemble', 'ppo', 'hybrid']);
    for (const s of report.backtests.strategies) if (s.modelErrors !== undefined) assert.equal(s.modelErrors, 0, `${s.strategy}: the model served every candle`);
    assert.ok(report.backtests.buyAndHold !== null, 'buy and hold of the held-out period');
    // Out of sample: the backtests start where the held-out rows start, after everything trained on.
    assert.equal(report.backtests.from, report.heldOut.from);
    assert.ok(Date.parse(report.heldOut.from) > report.splits.validation.to, 'held-out period after the validation labels end');
    assert.ok(report.ppo.heldOut && report.ppo.heldOut.policy.fromTime >= Date.parse(report.heldOut.from), 'PPO evaluated on held-out rows only');
    const md = fs.readFileSync(path.join(out, 'report.md'), 'utf8');
    assert.match(md, /## Classifiers on the held-out rows/);
    assert.match(md, /\| ensemble \| \d+ \|/);
    assert.match(md, /## Out-of-sample backtests/);
    assert.match(md, /\| hybrid \| [+-]\d+\.\d+ %/);
    assert.ok(lines.some((l) => l.startsWith(`model ${m.id} -> ${out}`)), 'prints where the model went');
  });

  it('the same data and seed give the same model files; another seed does not', async () => {
    const a = await trainModelVersion([btc], { out: path.join(tmp, 'same-a'), seed: 11, ppoSteps: 256, ...SMALL, walkForwardFolds: 0 });
    const b = await trainModelVersion([btc], { out: path.join(tmp, 'same-b'), seed: 11, ppoSteps: 256, ...SMALL, walkForwardFolds: 0 });
    const c = await trainModelVersion([btc], { out: path.join(tmp, 'same-c'), seed: 12, ppoSteps: 256, ...SMALL, walkForwardFolds: 0 });
    const shas = (m: typeof a.manifest) => [...m.members.map((x) => x.sha256), m.ppo?.sha256];
    assert.deepEqual(shas(a.manifest), shas(b.manifest));
    assert.notDeepEqual(shas(a.manifest), shas(c.manifest));
  });

  it('pools several symbols for the ensemble and backtests each of them', async () => {
    const r = await trainModelVersion([spotBtc, spotEth], { out: path.join(tmp, 'two'), seed: 2, ppoSteps: 256, ...SMALL, walkForwardFolds: 0 });
    assert.equal(r.report.data.files.length, 2);
    assert.ok(r.report.data.rows > 2 * 1400, 'rows of both files');
    assert.equal(r.report.ppo.trainedOn, `${path.basename(spotBtc)}, ${path.basename(spotEth)}`, 'PPO learns from every file');
    const m = readManifest(r.dir);
    assert.deepEqual(Object.keys(m.normalization?.symbols ?? {}), ['BTC/USDT', 'ETH/USDT'], 'features normalized per symbol');
    assert.deepEqual(m.data.trainedOn?.map((t) => [t.symbol, t.timeframe, t.path]), [['BTC/USDT', '1h', path.basename(spotBtc)], ['ETH/USDT', '1h', path.basename(spotEth)]]);
    // The statistics come from the training split only: before the validation rows begin.
    assert.ok(Date.parse(m.normalization!.fittedBefore) <= r.report.splits.validation.from);
    assert.ok(r.report.thresholds && r.report.thresholds.exitProb < r.report.thresholds.enterProb, 'thresholds fitted on validation');
    assert.equal(m.ensemble.longThreshold, r.report.thresholds!.enterProb);
    // Files of different periods cannot share a held-out period: refused before training.
    await assert.rejects(trainModelVersion([spotEth, btc], { out: path.join(tmp, 'mixed'), ...SMALL }), (e: Error) => e instanceof TrainingInputError && /before the held-out period starts/.test(e.message));
  });

  it('resumes after a failure from the saved stages and produces the same version', async () => {
    const opts = { seed: 6, ppoSteps: 256, ...SMALL, walkForwardFolds: 0, created: new Date('2024-05-01T00:00:00Z') };
    const workDir = path.join(tmp, 'work-resume');
    await assert.rejects(
      trainModelVersion([btc], {
        ...opts, out: path.join(tmp, 'resumed'), workDir,
        afterStage: (s: TrainStage) => {
          if (s === 'ppo') throw new Error('killed after ppo');
        },
      }),
      /killed after ppo/,
    );
    assert.ok(!fs.existsSync(path.join(tmp, 'resumed')), 'no half-written version directory');
    const resumed = await trainModelVersion([btc], { ...opts, out: path.join(tmp, 'resumed'), workDir, resumeAfter: 'ppo' });
    assert.deepEqual(resumed.stagesRun, ['evaluation', 'write']);
    assert.equal(resumed.report.timings.resumedAfter, 'ppo');
    assert.ok(!fs.existsSync(workDir), 'checkpoints removed once the version is written');
    const fresh = await trainModelVersion([btc], { ...opts, out: path.join(tmp, 'not-resumed') });
    assert.deepEqual(resumed.manifest.members.map((m) => m.sha256), fresh.manifest.members.map((m) => m.sha256));
    assert.equal(resumed.manifest.ppo?.sha256, fresh.manifest.ppo?.sha256);
    assert.equal(resumed.manifest.id, fresh.manifest.id);
  });

  it('without --out: writes under TRADER_HOME/models and registers the version in PostgreSQL (--promote: champion)', async () => {
    let db: TestDatabase | undefined;
    try {
      db = await freshDatabase();
      const home = path.join(tmp, 'home');
      const r = await runTrainCommand({ data: [btc], seed: 1, ppoSteps: 256 }, quietIo(), { config: config(home, db.url), settings: { ...SMALL, walkForwardFolds: 0 } });
      assert.equal(path.dirname(r.dir), path.join(home, 'models'));
      assert.equal(path.basename(r.dir), r.manifest.id);
      assert.equal(r.registered?.role, 'challenger');
      const row = await getModelVersion(db.sql, r.manifest.id);
      assert.equal(row?.artifactPath, r.dir);
      // The registry records what the version was trained on: the series, its range and data digest.
      assert.deepEqual(row?.trainedOn.map((t) => [t.symbol, t.timeframe, t.candles, t.sha256]), [['BTC/USDT:USDT', '1h', 2000, sha256Hex(fs.readFileSync(btc))]]);
      assert.equal(await championModelVersion(db.sql), undefined, 'not promoted without --promote');
      const p = await runTrainCommand({ data: [btc], seed: 2, ppoSteps: 256, promote: true }, quietIo(), { config: config(home, db.url), settings: { ...SMALL, walkForwardFolds: 0 } });
      assert.equal(p.promoted, true);
      assert.match(p.reloadProblem ?? '', /no Temporal configuration/, 'says why no trader was told');
      assert.equal((await championModelVersion(db.sql))?.id, p.manifest.id);
      assert.equal(readManifest(p.dir).champion, true, 'the manifest mirrors the role');
    } finally {
      await db?.drop();
    }
  });

  it('refuses bad arguments with a clear message', async () => {
    const cfg = { config: config(path.join(tmp, 'h')), settings: SMALL };
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ data: [] }, /at least one candle CSV/],
      [{ data: [path.join(tmp, 'binance_NOPE-USDT_1h.csv')], out: path.join(tmp, 'x') }, /no such file/],
      [{ data: [tmp], out: path.join(tmp, 'x') }, /is a directory/],
      [{ data: [btc], out: tmp }, /already exists/],
      [{ data: [btc], out: path.join(tmp, 'x'), seed: '-1' }, /--seed '-1'/],
      [{ data: [btc], out: path.join(tmp, 'x'), ppoSteps: '10' }, /--ppo-steps '10'/],
      [{ data: [btc], out: path.join(tmp, 'x'), promote: true }, /--promote .* does not go with --out/],
      [{ data: [btc, btc], out: path.join(tmp, 'x') }, /given twice/],
    ];
    for (const [opts, why] of cases) {
      await assert.rejects(runTrainCommand(opts, quietIo(), cfg), (e: Error) => e instanceof UsageError && why.test(e.message), `${JSON.stringify(opts)} -> ${why}`);
    }
    // Too few candles for the splits: a data problem, reported as such.
    const tiny = path.join(tmp, 'tiny', 'binance_BTC-USDT_1h.csv');
    fs.mkdirSync(path.dirname(tiny));
    fs.writeFileSync(tiny, fs.readFileSync(btc, 'utf8').split('\n').slice(0, 260).join('\n') + '\n');
    await assert.rejects(trainModelVersion([tiny], { out: path.join(tmp, 'tiny-out') }), TrainingInputError);
  });

  it('as a process: `trader train --out DIR` prints progress lines and the summary, exit 0; bad input exits 2', () => {
    const trader = (...args: string[]) => spawnSync(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'train', ...args], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
    const out = path.join(tmp, 'cli-out');
    const ok = trader('--data', btc, '--out', out, '--ppo-steps', '256', '--seed', '4');
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /ensemble: done[\s\S]*ppo: done[\s\S]*evaluation: done/);
    assert.match(ok.stdout, /^model ensemble-\S+ -> /m);
    assert.match(ok.stdout, /backtests: rules [+-]/);
    assert.ok(fs.existsSync(path.join(out, 'report.md')), 'report written');
    const bad = trader('--data', btc, '--out', out);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /already exists/);
  });
});
