import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HELP_DEFAULTS, load } from '../../client/command-table';
import { BUILTIN_STRATEGY_NAMES } from '../../lib/engine/types';
import { DEFAULT_FEE_BPS, DEFAULT_SLIPPAGE_BPS } from '../../lib/backtest';
import { DEFAULT_FOLDS } from '../../client/commands/eval';

/**
 * `trader --help` loads the command table and commander, nothing else (the command modules load
 * when their command runs): what keeps it fast (`npm run bench -- startup`). And bin/build-state.js, which
 * decides whether bin/trader.js runs the build or the sources.
 */

const REPO = path.resolve(__dirname, '..', '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { chooseBuild, scanSources } = require('../../bin/build-state.js') as {
  chooseBuild(env: NodeJS.ProcessEnv, root?: string): { use: 'dist' | 'src'; why: string };
  scanSources(root?: string): { files: string[] };
};

describe('trader startup', function () {
  // Child processes under tsx, and every command module loaded once (seconds on a busy machine).
  this.timeout(120_000);

  it('a help text loads commander and the command table only: no command module, no heavy package', () => {
    const script = "require('./client/cli.ts').buildProgram().helpInformation(); console.log(JSON.stringify(Object.keys(require.cache)))";
    const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const loaded = (JSON.parse(r.stdout) as string[]).map((f) => path.relative(REPO, f));
    const ours = loaded.filter((f) => !f.startsWith('node_modules') && !f.startsWith('..')).sort();
    assert.deepEqual(ours, ['client/cli.ts', 'client/command-table.ts', 'infra/errors.ts', 'lib/contracts/retrain.ts']);
    const packages = new Set(loaded.filter((f) => f.startsWith('node_modules')).map((f) => f.split(path.sep).slice(1, f.split(path.sep)[1].startsWith('@') ? 3 : 2).join('/')));
    for (const p of packages) assert.ok(['commander', 'tsx', 'get-tsconfig', 'resolve-pkg-maps', 'esbuild'].includes(p), `a help text loads ${p}`);
  });

  it("the help texts' copies of the code's defaults are the code's", () => {
    assert.deepEqual(HELP_DEFAULTS.builtinStrategies, [...BUILTIN_STRATEGY_NAMES]);
    assert.equal(HELP_DEFAULTS.feeBps, DEFAULT_FEE_BPS);
    assert.equal(HELP_DEFAULTS.slippageBps, DEFAULT_SLIPPAGE_BPS);
    assert.equal(HELP_DEFAULTS.evalFolds, DEFAULT_FOLDS);
  });

  it("every command module the table loads is there and exports the table's actions", () => {
    const expected: Record<keyof typeof load, string[]> = {
      config: ['loadConfig', 'describeConfig', 'ConfigError'],
      strategies: ['readStrategyParams', 'StrategyLoadError'],
      strategyRun: ['StrategyParamsError'],
      up: ['runUp', 'replayRequest'],
      worker: ['runWorker'],
      features: ['runFeaturesCommand'],
      ops: ['statusCommand', 'positionsCommand', 'tradesCommand', 'equityCommand', 'statusChangeCommand', 'emergencyCommand'],
      backtest: ['runBacktestCommand'],
      hyperopt: ['runHyperoptCommand'],
      train: ['runTrainCommand'],
      schedule: ['scheduleRetrainCommand', 'scheduleListCommand'],
      history: ['historyExportCommand'],
      data: ['runDataDownload', 'runDataList'],
      codecServer: ['runCodecServer'],
      eval: ['runEvalCommand'],
      report: ['runReportCommand'],
      strategy: ['strategyListCommand', 'strategyNewCommand', 'strategyCheckCommand', 'strategySetCommand'],
    };
    assert.deepEqual(Object.keys(load).sort(), Object.keys(expected).sort());
    for (const [name, loader] of Object.entries(load)) {
      const m = loader() as unknown as Record<string, unknown>;
      for (const f of expected[name as keyof typeof load]) assert.equal(typeof m[f], 'function', `${name}: ${f}`);
    }
  });

  describe('bin/build-state.js: the build or the sources', () => {
    let root: string;
    /** A build stamp as scripts/build.js writes it: dated `when`, listing the sources as they are now. */
    const build = (when: number): void => {
      fs.mkdirSync(path.join(root, 'dist'), { recursive: true });
      fs.writeFileSync(path.join(root, 'dist', '.build-stamp'), JSON.stringify({ files: scanSources(root).files }));
      fs.utimesSync(path.join(root, 'dist', '.build-stamp'), when / 1000, when / 1000);
    };
    const at = (rel: string, when: number): void => {
      const p = path.join(root, rel);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      if (!fs.existsSync(p)) fs.writeFileSync(p, rel.endsWith('.json') ? '{"include":["lib"]}' : '');
      fs.utimesSync(p, when / 1000, when / 1000);
    };
    beforeEach(() => {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-dist-'));
      const t = Date.now() - 60_000;
      at('tsconfig.json', t);
      at('tsconfig.build.json', t);
      at('lib/a.ts', t);
      at('lib/sub/b.ts', t);
    });
    afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

    it('no build: the sources', () => {
      assert.equal(chooseBuild({}, root).use, 'src');
      assert.throws(() => chooseBuild({ TRADER_FROM: 'dist' }, root), /no complete build/);
    });

    it('a build newer than every source: dist; a source saved after it, added or removed since: the sources, naming it', () => {
      build(Date.now() - 30_000);
      assert.equal(chooseBuild({}, root).use, 'dist');
      at('lib/sub/b.ts', Date.now() - 10_000);
      assert.deepEqual(chooseBuild({}, root), { use: 'src', why: `the build is stale: ${path.join('lib', 'sub', 'b.ts')} changed after it (npm run build)` });
      assert.equal(chooseBuild({ TRADER_FROM: 'dist' }, root).use, 'dist');
      at('lib/sub/b.ts', Date.now() - 60_000);
      assert.equal(chooseBuild({}, root).use, 'dist');
      at('lib/c.ts', Date.now() - 60_000); // added, with an old date (cp -p, an unpacked archive)
      assert.match(chooseBuild({}, root).why, /lib.c\.ts is new since/);
      fs.rmSync(path.join(root, 'lib', 'c.ts'));
      assert.equal(chooseBuild({}, root).use, 'dist');
      fs.rmSync(path.join(root, 'lib', 'a.ts'));
      assert.match(chooseBuild({}, root).why, /lib.a\.ts is gone since/);
      // Files of other directories (test/, bench/, a strategy) are not the build's business.
      at('test/x.ts', Date.now());
      at('lib/a.ts', Date.now() - 60_000);
      assert.equal(chooseBuild({}, root).use, 'dist');
    });

    it('TRADER_FROM=src always runs the sources; anything else but dist is refused', () => {
      build(Date.now());
      assert.equal(chooseBuild({ TRADER_FROM: 'src' }, root).use, 'src');
      assert.throws(() => chooseBuild({ TRADER_FROM: 'js' }, root), /expected dist or src/);
    });
  });
});
