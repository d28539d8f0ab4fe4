import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { loadFile } from '../../backtester/run';
import { newStrategyFile } from '../../client/commands/strategy-new';
import { loadStrategy, PROJECT_ROOT, strategyHost, typeCheckStrategy } from '../../infra/strategies';
import type { ModelSignal, StrategySignal } from '../../lib/engine/types';
import { computeFeatureMatrix, featureIndex, featureRow, type FeatureMatrix } from '../../lib/features';
import { classifyRegime, type Regime } from '../../lib/regime';
import type { EnginePositionView } from '../../lib/strategy/run';
import type { StrategyHost } from '../../lib/strategy/host';
import type { Candle } from '../../lib/candles';
import { fixtureCandleFile } from '../../testkit/fixtures';

/**
 * The example strategies (examples/strategies) and the `trader strategy new` template: each loads by
 * name through the loader (type-checked), its defaults parse, and run over the recorded BTC/USDT 1h
 * fixture (all of 2020) with the engine's features and regime it enters at least once, leaves what
 * it entered, and never fails on a candle. A simple position book stands in for the engine (enter
 * at the close, leave at the close), so the exits the strategies compute themselves are exercised
 * too. Its indicators answered from a live window of `warmup` candles give the same decisions as
 * from the whole recorded series (no look-ahead, enough warm-up).
 */

const EXAMPLES = ['breakout', 'mean-reversion', 'model-trend'] as const;
const ret24 = featureIndex('ret_24');

interface Fixture {
  candles: Candle[];
  timeframe: string;
  timeframeMs: number;
  matrix: FeatureMatrix;
  regimes: Regime[];
}

let fixture: Fixture | undefined;
function btc(): Fixture {
  if (fixture) return fixture;
  const series = loadFile(fixtureCandleFile('binanceusdm_BTC-USDT_1h.csv'));
  const matrix = computeFeatureMatrix(series.candles);
  const regimes = Array.from({ length: matrix.rowCount }, (_, k) => classifyRegime(featureRow(matrix, k)));
  fixture = { candles: series.candles, timeframe: series.timeframe, timeframeMs: series.timeframeMs, matrix, regimes };
  return fixture;
}

/**
 * A deterministic stand-in for the ensemble's signal (no trained model in a unit test): P(up) a
 * logistic of the last 24 candles' return, its confidence the distance from 0.5, and every 97th
 * candle a failed model.
 */
function standInModel(features: ArrayLike<number>, i: number): ModelSignal {
  if (i % 97 === 0) return { ok: false, error: 'stand-in failure' };
  const probUp = 1 / (1 + Math.exp(-40 * features[ret24]));
  return { ok: true, probUp, confidence: Math.min(1, Math.abs(probUp - 0.5) * 2), version: 'stand-in' };
}

interface Run {
  signals: number;
  enters: number;
  exits: number;
  errors: string[];
  exitReasons: string[];
  tags: Set<string>;
  /** Sampled candles: index, position then, and the recorded-series answer. */
  samples: Array<{ i: number; position: EnginePositionView | null; signal: StrategySignal }>;
}

function inputsAt(f: Fixture, host: StrategyHost, i: number, position: EnginePositionView | null, withModel: boolean) {
  const features = Array.from(featureRow(f.matrix, i - f.matrix.warmup));
  return {
    symbol: 'BTC/USDT',
    timeframe: f.timeframe,
    timeframeMs: f.timeframeMs,
    candle: f.candles[i],
    window: f.candles.slice(Math.max(0, i - host.warmup + 1), i + 1),
    features,
    regime: f.regimes[i - f.matrix.warmup],
    ...(withModel ? { model: standInModel(features, i) } : {}),
    position,
  };
}

/** The strategy over the whole fixture, as a backtest reads it (indicators over the recorded series). */
function runOver(f: Fixture, host: StrategyHost, withModel: boolean): Run {
  const run: Run = { signals: 0, enters: 0, exits: 0, errors: [], exitReasons: [], tags: new Set(), samples: [] };
  const start = Math.max(f.matrix.warmup, host.warmup - 1);
  let position: EnginePositionView | null = null;
  for (let i = start; i < f.candles.length; i++) {
    const c = f.candles[i];
    const signal = host.answer(inputsAt(f, host, i, position, withModel), { key: 'BTC/USDT', candles: f.candles, index: i });
    run.signals++;
    if (signal.error !== undefined) run.errors.push(`candle ${i}: ${signal.error}`);
    if (i % 89 === 0) run.samples.push({ i, position, signal });
    if (position === null && signal.enter) {
      run.enters++;
      if (signal.tag) run.tags.add(signal.tag);
      position = { qty: 1, entryPrice: c.close, entryTime: c.timestamp + f.timeframeMs, bestPrice: c.close, stopPrice: null, targetPrice: null, ...(signal.tag ? { tag: signal.tag } : {}) };
    } else if (position !== null && signal.exit) {
      run.exits++;
      run.exitReasons.push(signal.reason);
      position = null;
    } else if (position !== null) {
      const held: EnginePositionView = position;
      position = { ...held, bestPrice: Math.max(held.bestPrice, c.high) };
    }
  }
  return run;
}

describe('example strategies (examples/strategies)', function () {
  // Each file is type-checked by the TypeScript compiler as it loads: a few seconds each.
  this.timeout(60_000);

  for (const name of EXAMPLES) {
    describe(name, () => {
      let host: StrategyHost;
      let run: Run;

      before(() => {
        host = strategyHost(name, {});
        run = runOver(btc(), host, name === 'model-trend');
      });

      it('loads by name from examples/strategies, type-checked, and its defaults parse', () => {
        const loaded = loadStrategy(name);
        assert.equal(loaded.origin, path.join(PROJECT_ROOT, 'examples', 'strategies', `${name}.ts`));
        assert.equal(loaded.strategy.name, name);
        assert.match(loaded.identity.source, /^[0-9a-f]{12}$/);
        assert.equal(typeCheckStrategy(loaded.origin, fs.readFileSync(loaded.origin, 'utf8')), null);
        assert.ok(loaded.strategy.description && loaded.strategy.description.length > 10, 'it describes itself');
        assert.ok(loaded.strategy.params.safeParse({}).success);
        assert.ok(loaded.strategy.warmup > 0 && loaded.strategy.warmup <= 1000);
        for (const [k, r] of Object.entries(loaded.strategy.search ?? {})) {
          assert.ok(r, k);
          if (r.type !== 'categorical') {
            assert.ok(r.low < r.high, `${k}: search range`);
            // Every value of the search range is a valid parameter.
            assert.ok(loaded.strategy.params.safeParse({ [k]: r.low }).success && loaded.strategy.params.safeParse({ [k]: r.high }).success, `${k}: search range within the schema`);
          }
        }
        assert.equal(host.paramsHash.length, 12);
      });

      it('its indicators are one value per candle, oldest first', () => {
        const s = host.loaded.strategy;
        assert.ok(s.indicators, 'it has indicators');
        const candles = btc().candles.slice(0, 1200);
        for (const [k, col] of Object.entries(s.indicators(candles, host.params))) {
          assert.equal(col.length, candles.length, k);
          assert.ok(Number.isNaN(col[0]), `${k}: no value on the first candle`);
          assert.ok(Number.isFinite(col[candles.length - 1]), `${k}: a value on the last candle`);
        }
      });

      it('over the fixture: enters, leaves what it entered, never fails on a candle', () => {
        assert.deepEqual(run.errors.slice(0, 3), []);
        assert.ok(run.signals > 7000, `${run.signals} candles decided`);
        assert.ok(run.enters >= 1, 'at least one entry');
        assert.ok(run.exits >= 1, 'at least one exit of its own');
        assert.ok(run.exits >= run.enters - 1);
        assert.ok(run.tags.size >= 1, 'its entries carry a tag');
      });

      it('answers from a live window of warmup candles as from the recorded series', () => {
        const f = btc();
        assert.ok(run.samples.length > 50);
        for (const { i, position, signal } of run.samples) {
          const live = host.answer(inputsAt(f, host, i, position, name === 'model-trend'));
          assert.equal(live.error, undefined);
          assert.deepEqual([live.enter, live.exit], [signal.enter, signal.exit], `candle ${i}: live ${live.reason} / recorded ${signal.reason}`);
        }
      });
    });
  }

  it('breakout: its entries carry the ATR stop and trailing stop and no target', () => {
    const f = btc();
    const host = strategyHost('breakout', { stopAtr: 1.5, trailAtr: 2.5 });
    for (let i = Math.max(f.matrix.warmup, host.warmup - 1); i < f.candles.length; i++) {
      const s = host.answer(inputsAt(f, host, i, null, false), { key: 'BTC/USDT', candles: f.candles, index: i });
      if (!s.enter) continue;
      assert.deepEqual(s.stop, { atr: 1.5 });
      assert.deepEqual(s.trailing, { atr: 2.5, activateAtPct: 0.01 });
      assert.equal(s.target, null);
      assert.equal(s.tag, 'donchian-48');
      return;
    }
    assert.fail('no entry');
  });

  it('mean-reversion: leaves at the mean, or a position older than maxHoldCandles with the reason; no entries in blocked regimes', () => {
    const host = strategyHost('mean-reversion', { maxHoldCandles: 3 });
    const run = runOver(btc(), host, false);
    assert.ok(run.enters > 0 && run.exitReasons.every((r) => /held [4-9] candles without reverting \(maxHoldCandles 3\)|reverted/.test(r)), run.exitReasons.slice(0, 5).join('; '));
    assert.ok(run.exitReasons.some((r) => /held \d+ candles/.test(r)));
    // With the defaults, most dips revert.
    const defaults = runOver(btc(), strategyHost('mean-reversion', {}), false);
    assert.ok(defaults.exitReasons.filter((r) => /reverted/.test(r)).length > defaults.exits / 2, defaults.exitReasons.join('; '));
    // No entries at all when every regime is blocked.
    const none = runOver(btc(), strategyHost('mean-reversion', { blockedRegimes: ['bull', 'bear', 'volatile', 'sideways'] }), false);
    assert.equal(none.enters, 0);
  });

  it('model-trend: no model signal, no entries; the model confidence travels as the confidence', () => {
    const f = btc();
    const host = strategyHost('model-trend', {});
    assert.deepEqual(host.modelParts, ['ensemble']);
    assert.equal(runOver(f, host, false).enters, 0);
    for (let i = host.warmup; i < f.candles.length; i++) {
      const inputs = inputsAt(f, host, i, null, true);
      const s = host.answer(inputs, { key: 'BTC/USDT', candles: f.candles, index: i });
      if (!s.enter) continue;
      assert.equal(s.confidence, inputs.model!.confidence);
      assert.ok(s.score >= 0.55);
      return;
    }
    assert.fail('no entry');
  });

  it('refuses parameters outside their schema', () => {
    assert.throws(() => strategyHost('breakout', { channel: 1 }), /channel/);
    assert.throws(() => strategyHost('mean-reversion', { size: 2 }), /size/);
    assert.throws(() => strategyHost('model-trend', { trendPeriod: 500 }), /trendPeriod/);
  });
});

describe('trader strategy new (newStrategyFile)', function () {
  // The template is type-checked as it loads: a few seconds.
  this.timeout(60_000);
  let dir: string;

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-strategy-new-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('writes a strategy that loads, type-checks and runs, and its smoke test', () => {
    const { file, testFile } = newStrategyFile({ name: 'my-idea', dir: path.join(dir, 'strategies') });
    assert.equal(file, path.join(dir, 'strategies', 'my-idea.ts'));
    assert.equal(testFile, path.join(dir, 'strategies', 'my-idea.test.ts'));
    const source = fs.readFileSync(file, 'utf8');
    assert.match(source, /from 'durable-trader\/strategy'/);
    assert.equal(typeCheckStrategy(file, source), null);
    // Found by name from the directory above strategies/, as `--strategy my-idea` finds it.
    const loaded = loadStrategy('my-idea', { cwd: dir });
    assert.equal(loaded.origin, file);
    assert.equal(loaded.strategy.name, 'my-idea');
    assert.ok(loaded.strategy.params.safeParse({}).success);
    const run = runOver(btc(), strategyHost(file, {}), false);
    assert.deepEqual(run.errors.slice(0, 3), []);

    const test = fs.readFileSync(testFile, 'utf8');
    const parsed = ts.createSourceFile(testFile, test, ts.ScriptTarget.ES2022, true) as ts.SourceFile & { parseDiagnostics?: ts.Diagnostic[] };
    assert.deepEqual(parsed.parseDiagnostics ?? [], []);
    assert.ok(test.includes(JSON.stringify(PROJECT_ROOT)), 'it runs the CLI of this project');
    for (const arg of ["'backtest'", "'--strategy'", "'--data'", "'--json'", 'binanceusdm_BTC-USDT_1h.csv']) assert.ok(test.includes(arg), arg);
  });

  it('defaults to strategies/ in the working directory', () => {
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      const { file } = newStrategyFile({ name: 'in-cwd' });
      assert.equal(fs.realpathSync(file), fs.realpathSync(path.join(dir, 'strategies', 'in-cwd.ts')));
    } finally {
      process.chdir(cwd);
    }
  });

  it('refuses an existing file unless forced', () => {
    const at = path.join(dir, 'again');
    newStrategyFile({ name: 'twice', dir: at });
    fs.writeFileSync(path.join(at, 'twice.ts'), '// mine\n');
    assert.throws(() => newStrategyFile({ name: 'twice', dir: at }), /twice\.ts.*already exist.*--force/);
    assert.equal(fs.readFileSync(path.join(at, 'twice.ts'), 'utf8'), '// mine\n');
    newStrategyFile({ name: 'twice', dir: at, force: true });
    assert.match(fs.readFileSync(path.join(at, 'twice.ts'), 'utf8'), /name: 'twice'/);
  });

  it('refuses a name that is not a strategy name or is a built-in', () => {
    for (const bad of ['', 'My-Idea', 'my idea', '../escape', 'a/b', 'x.ts', '-lead', 'a'.repeat(49)]) {
      assert.throws(() => newStrategyFile({ name: bad, dir }), /lower-case letters/, JSON.stringify(bad));
    }
    for (const builtin of ['rules', 'ensemble', 'ppo', 'hybrid']) {
      assert.throws(() => newStrategyFile({ name: builtin, dir }), /built-in/, builtin);
    }
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.ts')), []);
  });
});
