import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fixtureCandleFile } from '../../testkit/fixtures';

/**
 * The `trader` CLI from the build (dist/, `npm run build`), as `npm start`, `npx trader` and the
 * Docker image run it: no tsx hook, so its help texts, and a user's TypeScript strategy file
 * compiled at load (infra/strategies.ts), are exercised as users get them.
 *
 * It needs a build newer than the sources: .ci/run builds before the tests, and CI (CI=true) fails
 * here without one. Elsewhere the tests skip, saying so, until `npm run build`.
 */

const REPO = path.resolve(__dirname, '..', '..');
const TRADER = path.join(REPO, 'bin', 'trader.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { chooseBuild } = require('../../bin/build-state.js') as { chooseBuild(env: NodeJS.ProcessEnv): { use: 'dist' | 'src'; why: string } };

function fromDist(args: string[], opts: { cwd?: string } = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, TRADER_FROM: 'dist', TRADER_STARTUP_DEBUG: '1' };
  delete env.NODE_OPTIONS; // mocha's workers may carry tsx's hook in it; the CLI must start without
  return spawnSync(process.execPath, [TRADER, ...args], { cwd: opts.cwd ?? REPO, env, encoding: 'utf8', timeout: 120_000 });
}

describe('the trader CLI from the build (dist/)', function () {
  // A strategy type-checked by the compiler in a child process: seconds, more on a busy machine.
  this.timeout(180_000);

  before(async function () {
    let choice = chooseBuild({});
    if (choice.use !== 'dist') {
      // Once more a moment later: test/unit/architecture.test.ts plants files under lib/ for a few
      // milliseconds, in a parallel mocha worker, and a build is stale while they are there.
      await new Promise((r) => setTimeout(r, 2_000));
      choice = chooseBuild({});
    }
    if (choice.use === 'dist') return;
    if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`CI runs \`npm run build\` before the tests (.ci/run), but bin/trader.js would not run dist/: ${choice.why}`);
    console.log(`      skipped: bin/trader.js would run the sources (${choice.why}); \`npm run build\` first to test the build`);
    this.skip();
  });

  it('trader --help exits 0, from dist/, and lists every command', () => {
    const r = fromDist(['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^trader: from dist\//);
    for (const c of ['up', 'worker', 'config', 'backtest', 'train', 'strategy', 'status', 'emergency', 'report', 'eval', 'data', 'history', 'schedule', 'codec-server', 'features']) assert.match(r.stdout, new RegExp(`^  ${c} `, 'm'), c);
  });

  it('npx trader runs bin/trader.js straight from node_modules/.bin (the install links it; package.json declares no bin, which npx would run through its cache)', () => {
    const link = path.join(REPO, 'node_modules', '.bin', 'trader');
    assert.equal(fs.realpathSync(link), fs.realpathSync(TRADER), 'node_modules/.bin/trader is bin/trader.js (scripts/link-bin.js, postinstall)');
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { bin?: unknown; scripts: Record<string, string> };
    assert.equal(pkg.bin, undefined);
    assert.match(pkg.scripts.postinstall, /^node scripts\/link-bin\.js && /);
    const env: NodeJS.ProcessEnv = { ...process.env, TRADER_FROM: 'dist', TRADER_STARTUP_DEBUG: '1' };
    delete env.NODE_OPTIONS;
    const r = spawnSync('npx', ['--no-install', 'trader', '--help'], { cwd: REPO, env, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^trader: from dist\//m);
    assert.match(r.stdout, /^ {2}hyperopt /m);
  });

  it("a command's help is the same from dist/ as from the sources", () => {
    for (const cmd of [['backtest'], ['strategy', 'check'], ['up']]) {
      const dist = fromDist([...cmd, '--help']);
      const src = spawnSync(process.execPath, [TRADER, ...cmd, '--help'], { cwd: REPO, env: { ...process.env, TRADER_FROM: 'src' }, encoding: 'utf8' });
      assert.equal(dist.status, 0, dist.stderr);
      assert.equal(dist.stdout, src.stdout, cmd.join(' '));
    }
  });

  it("a user's .ts strategy importing durable-trader/strategy loads, is type-checked, and is checked from dist/ (no tsx hook)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-dist-strategy-'));
    try {
      fs.mkdirSync(path.join(dir, 'strategies'));
      const example = fs.readFileSync(path.join(REPO, 'examples', 'strategies', 'breakout.ts'), 'utf8');
      const mine = example.replace("from '../../lib/strategy'", "from 'durable-trader/strategy'").replace("name: 'breakout'", "name: 'mine'");
      assert.notEqual(mine, example);
      fs.writeFileSync(path.join(dir, 'strategies', 'mine.ts'), mine);
      fs.writeFileSync(path.join(dir, 'strategies', 'broken.ts'), "import { defineStrategy } from 'durable-trader/strategy';\nconst n: number = 'text';\nexport default defineStrategy({ name: 'broken' } as never);\n");

      const list = fromDist(['strategy', 'list', '--json'], { cwd: dir });
      assert.equal(list.status, 0, list.stderr);
      const found = JSON.parse(list.stdout) as Array<{ name: string; error?: string; version: string | null }>;
      assert.equal(found.find((s) => s.name === 'mine')?.version, '1.0.0', list.stdout);
      assert.equal(found.find((s) => s.name === 'mine')?.error, undefined);
      assert.equal(found.find((s) => s.name === 'breakout')?.error, undefined, 'the example, which imports ../../lib/strategy, loads too');

      const check = fromDist(['strategy', 'check', 'mine', '--data', fixtureCandleFile('binanceusdm_BTC-USDT_1h.csv')], { cwd: dir });
      assert.equal(check.status, 0, check.stdout + check.stderr);
      assert.match(check.stderr, /^trader: from dist\//);

      // The type-check still refuses a file with type errors (the compiler is a dev dependency, installed here).
      const broken = fromDist(['strategy', 'check', 'broken', '--data', fixtureCandleFile('binanceusdm_BTC-USDT_1h.csv')], { cwd: dir });
      assert.equal(broken.status, 2, broken.stdout + broken.stderr);
      assert.match(broken.stderr, /does not type-check: line 2:7: Type 'string' is not assignable to type 'number'/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
