import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { Candle } from '../../lib/candles';
import { FEATURE_SCHEMA, featureIndex } from '../../lib/features';
import { REGIMES, type Regime } from '../../lib/regime';
import { applyFill, decide, engineConfig, initialSymbolState, type EngineConfig, type EngineFill, type OrderIntent, type StrategySignal } from '../../lib/engine';
import { checkAnswer, runStrategy, strategyShapeProblem, StrategyParamsError, type LoadedStrategy } from '../../lib/strategy/run';
import { StrategyHost } from '../../lib/strategy/host';
import { defineStrategy } from '../../lib/strategy/types';
import { loadStrategy, paramsHash, readStrategyParams, resolveStrategyRef, StrategyLoadError } from '../../infra/strategies';
import { parseConfig } from '../../infra/config';

/**
 * The strategy interface's contract: what counts as a valid answer, what a failing strategy
 * gives the engine (never a throw), how the engine applies the answer's hooks (stop, target,
 * trailing, size, tag), and what the loader refuses.
 */

const HOUR = 3_600_000;
const T0 = Date.UTC(2024, 0, 1);
const ctx = { workflowId: 'trader/binance/BTC/USDT' };
const bull: Regime = { label: 'bull', confidence: 0.8, code: REGIMES.indexOf('bull') };

function features(): number[] {
  const v = new Array<number>(FEATURE_SCHEMA.width).fill(0.001);
  v[featureIndex('atr_14')] = 200;
  v[featureIndex('rvol_24')] = 0.008;
  return v;
}
const candle = (i: number, close: number): Candle => ({ timestamp: T0 + i * HOUR, open: close, high: close * 1.002, low: close * 0.998, close, volume: 10 });
const cfgOf = (): EngineConfig => engineConfig({ symbol: 'BTC/USDT', strategy: 'custom', risk: {}, timeframeMs: HOUR, sleeveCapital: 10_000, feeRate: 0.001 });
const fillOf = (intent: OrderIntent, price: number, time: number): EngineFill => ({ clientOrderId: intent.clientOrderId, tag: intent.tag, side: intent.side, qty: intent.qty, price, fee: intent.qty * price * 0.001, time });
const loaded = (decideFn: LoadedStrategy['strategy']['decide']): LoadedStrategy => ({
  strategy: defineStrategy({ name: 'probe', version: '0.1.0', warmup: 0, params: z.object({}), decide: decideFn }) as LoadedStrategy['strategy'],
  identity: { name: 'probe', version: '0.1.0', source: 'abc123abc123' },
  origin: 'test',
});
const inputs = (i = 1, close = 20_000) => ({ symbol: 'BTC/USDT', timeframe: '1h', timeframeMs: HOUR, candle: candle(i, close), window: [candle(i, close)], features: features(), regime: bull, position: null });

describe('strategy answers', () => {
  it('a valid answer becomes the engine signal; defaults for score and reason', () => {
    const s = checkAnswer({ enter: true, tag: 'breakout', size: 0.5, stop: { pct: 0.03 }, target: null, trailing: { atr: 2, activateAtPct: 0.01 } });
    assert.equal(typeof s, 'object');
    assert.deepEqual(s, { enter: true, exit: false, score: 1, reason: 'enter', tag: 'breakout', size: 0.5, stop: { pct: 0.03 }, target: null, trailing: { atr: 2, activateAtPct: 0.01 } });
  });

  it('an invalid answer is refused with the field and the value', () => {
    assert.match(checkAnswer(undefined) as string, /must return an object/);
    assert.match(checkAnswer([true]) as string, /an array/);
    assert.match(checkAnswer({ enter: 'yes' }) as string, /enter/);
    assert.match(checkAnswer({ enter: true, score: NaN }) as string, /score: .*NaN.*\(got NaN\)/);
    assert.match(checkAnswer({ enter: true, size: 0 }) as string, /size/);
    assert.match(checkAnswer({ enter: true, stop: { pct: 2 } }) as string, /stop/);
    assert.match(checkAnswer({ enter: true, tag: 'é'.repeat(3) }) as string, /tag/);
    assert.match(checkAnswer({ enter: true, buy: true }) as string, /buy|Unrecognized/i);
  });

  it('a strategy that throws, answers NaN or runs over its budget gives an error signal, never a throw', () => {
    const thrower = loaded(() => {
      throw new TypeError('boom');
    });
    const s1 = runStrategy(thrower, {}, 'p', inputs());
    assert.equal(s1.enter, false);
    assert.equal(s1.exit, false);
    assert.match(s1.error ?? '', /TypeError: boom/);
    assert.deepEqual(s1.strategy, { name: 'probe', version: '0.1.0', source: 'abc123abc123', params: 'p' });

    const nan = runStrategy(loaded(() => ({ enter: true, score: NaN })), {}, 'p', inputs());
    assert.equal(nan.enter, false);
    assert.match(nan.error ?? '', /score/);

    let t = 0;
    const slow = runStrategy(loaded(() => ((t += 50), { enter: true })), {}, 'p', inputs(), { budgetMs: 20, clock: () => t });
    assert.equal(slow.enter, false);
    assert.match(slow.error ?? '', /took 50 ms, over its budget of 20 ms/);
    const fast = runStrategy(loaded(() => ({ enter: true })), {}, 'p', inputs(), { budgetMs: 20, clock: () => 0 });
    assert.equal(fast.enter, true);
  });

  it('the context: features by name (an unknown name throws into an error signal), the position with its age and PnL', () => {
    let seen: unknown;
    const probe = loaded((c) => {
      seen = { atr: c.feature('atr_14'), pos: c.position };
      return { exit: c.position !== null && c.position.ageCandles >= 3 };
    });
    const pos = { qty: 1, entryPrice: 20_000, entryTime: T0 + 2 * HOUR, bestPrice: 20_100, stopPrice: 19_000, targetPrice: null };
    const s = runStrategy(probe, {}, 'p', { ...inputs(4, 21_000), position: pos });
    assert.equal(s.exit, true);
    assert.deepEqual(seen, { atr: 200, pos: { side: 'long', qty: 1, entryPrice: 20_000, entryTime: T0 + 2 * HOUR, ageCandles: 3, unrealizedPnlPct: 21_000 / 20_000 - 1, bestPrice: 21_000 * 1.002, stopPrice: 19_000, targetPrice: null } });
    const typo = runStrategy(loaded((c) => ({ enter: c.feature('rsi') > 0 })), {}, 'p', inputs());
    assert.match(typo.error ?? '', /unknown feature 'rsi'/);
  });

  it('a shape that is not a strategy is named; parameters without defaults are refused', () => {
    assert.match(strategyShapeProblem(undefined) as string, /exports no strategy/);
    assert.match(strategyShapeProblem({ name: 'Bad Name', version: '1', warmup: 0, params: z.object({}), decide() {} }) as string, /name/);
    assert.match(strategyShapeProblem({ name: 'x', version: '1', warmup: 5000, params: z.object({}), decide() {} }) as string, /warmup/);
    assert.match(strategyShapeProblem({ name: 'x', version: '1', warmup: 0, params: z.object({ n: z.number() }), decide() {} }) as string, /needs a default/);
    assert.equal(strategyShapeProblem({ name: 'x', version: '1', warmup: 0, params: z.object({ n: z.number().default(3) }), decide() {} }), null);
    const l = loaded(() => ({}));
    const withParams = { ...l, strategy: { ...l.strategy, params: z.object({ n: z.number().int().min(1).default(3) }) } } as LoadedStrategy;
    assert.throws(() => new StrategyHost(withParams, { n: 0 }, paramsHash), (e: Error) => e instanceof StrategyParamsError && /n: /.test(e.message));
    assert.equal(new StrategyHost(withParams, { n: 7 }, paramsHash).paramsHash, paramsHash({ n: 7 }));
    assert.notEqual(paramsHash({ n: 7 }), paramsHash({ n: 8 }));
  });
});

describe('engine: the answer hooks', () => {
  const decideWith = (signal: StrategySignal) => decide(initialSymbolState(cfgOf()), { candle: candle(1, 20_000), features: features(), regime: bull, signal }, cfgOf(), ctx);

  it('stop and target distances, no target, a trailing rule, the size, the tag and the identity reach the position and the trade', () => {
    const identity = { name: 'probe', version: '0.1.0', source: 'abc', params: 'def' };
    const full = decideWith({ enter: true, exit: false, score: 1, reason: 'go', strategy: identity });
    const half = decideWith({ enter: true, exit: false, score: 1, reason: 'go', size: 0.5, stop: { pct: 0.05 }, target: null, trailing: { pct: 0.02 }, tag: 'probe-tag', strategy: identity });
    assert.ok(Math.abs(half.intents[0].qty - full.intents[0].qty / 2) < 1e-9, 'size 0.5 halves the entry');
    assert.equal(half.intents[0].entryTag, 'probe-tag');
    assert.deepEqual(half.intents[0].strategy, identity);
    const f = applyFill(half.state, fillOf(half.intents[0], 20_000, T0 + 2 * HOUR), cfgOf(), ctx);
    assert.deepEqual(f.intents.map((i) => i.tag), ['stop'], 'target: null places no target order');
    assert.equal(f.intents[0].stopPrice, 19_000, 'a 5 % stop');
    assert.equal(f.state.position?.targetPrice, null);
    assert.equal(f.state.position?.tag, 'probe-tag');
    // The trailing rule of the position (2 %), not the risk config's (none by default): the stop follows a rise.
    const up = decide(f.state, { candle: { ...candle(3, 22_000), high: 22_000 }, features: features(), regime: bull, signal: { enter: false, exit: false, score: 0, reason: 'hold' } }, cfgOf(), ctx);
    const moved = up.intents.find((i) => i.tag === 'stop');
    assert.ok(moved && Math.abs((moved.stopPrice as number) - 22_000 * 0.98) < 1e-6, `trailing stop at 2 % under the best price, got ${moved?.stopPrice}`);
    // A signal exit closes it: the trade carries the tag and the strategy.
    const out = decide(up.state, { candle: candle(4, 22_500), features: features(), regime: bull, signal: { enter: false, exit: true, score: -1, reason: 'out', strategy: identity } }, cfgOf(), ctx);
    const exit = out.intents.find((i) => i.tag === 'exit') as OrderIntent;
    assert.deepEqual(exit.strategy, identity);
    const closed = applyFill(out.state, fillOf(exit, 22_500, T0 + 5 * HOUR), cfgOf(), ctx).closed;
    assert.equal(closed?.entryTag, 'probe-tag');
    assert.deepEqual(closed?.strategy, identity);
  });

  it('a failing strategy makes no entry and no strategy exit; the protective orders stay', () => {
    const failing: StrategySignal = { enter: true, exit: true, score: 0, reason: 'strategy probe failed: boom', error: 'boom' };
    // An error signal as run.ts builds it has enter and exit false; even a malformed one with them set must not trade.
    const d = decideWith({ ...failing, enter: false, exit: false });
    assert.equal(d.decision.action, 'hold');
    assert.equal(d.intents.length, 0);
  });
});

describe('strategy loader', () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-strategies-'));
    fs.mkdirSync(path.join(dir, 'strategies'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('built-ins by name, with the hash of their source', () => {
    const l = loadStrategy('rules');
    assert.equal(l.origin, 'builtin');
    const src = fs.readFileSync(path.join(__dirname, '..', '..', 'lib', 'strategy', 'builtins', 'rules.ts'), 'utf8');
    assert.equal(l.identity.source, crypto.createHash('sha256').update(src).digest('hex').slice(0, 12));
  });

  it('refuses, naming the file and the reason: not found, a type error, no export, a name that is not the file\'s', function () {
    this.timeout(30_000); // the TypeScript compiler type-checks each file: seconds each
    assert.throws(() => resolveStrategyRef('nope', { cwd: dir }), (e: Error) => e instanceof StrategyLoadError && /not found/.test(e.message) && e.message.includes(path.join(dir, 'strategies', 'nope.ts')));
    const typeError = path.join(dir, 'typo.ts');
    fs.writeFileSync(typeError, "import { defineStrategy, z } from 'durable-trader/strategy';\nexport default defineStrategy({ name: 'typo', version: '1', warmup: 0, params: z.object({}), decide: (c) => ({ enter: c.candle.clsoe > 0 }) });\n");
    assert.throws(() => loadStrategy(typeError), (e: Error) => e instanceof StrategyLoadError && e.message.includes(typeError) && /does not type-check: line 2.*clsoe/.test(e.message));
    const noExport = path.join(dir, 'empty.ts');
    fs.writeFileSync(noExport, 'export const x = 1;\n');
    assert.throws(() => loadStrategy(noExport), (e: Error) => e instanceof StrategyLoadError && /exports no strategy object/.test(e.message));
    fs.writeFileSync(path.join(dir, 'strategies', 'other.ts'), "import { defineStrategy, z } from 'durable-trader/strategy';\nexport default defineStrategy({ name: 'different', version: '1', warmup: 0, params: z.object({}), decide: () => ({}) });\n");
    assert.throws(() => loadStrategy('other', { cwd: dir }), (e: Error) => e instanceof StrategyLoadError && /named 'different'/.test(e.message));
  });

  it('parameters: JSON text or a file; bad JSON and non-objects are refused', () => {
    assert.deepEqual(readStrategyParams('{"a":1}'), { a: 1 });
    const f = path.join(dir, 'p.json');
    fs.writeFileSync(f, '{"b":2}');
    assert.deepEqual(readStrategyParams(f), { b: 2 });
    assert.equal(readStrategyParams(undefined), undefined);
    assert.throws(() => readStrategyParams('{nope'), /not JSON/);
    assert.throws(() => readStrategyParams('[1]'), /must be a JSON object/);
    assert.throws(() => readStrategyParams(path.join(dir, 'missing.json')), /cannot read/);
  });

  it('STRATEGY and STRATEGY_PARAMS in the configuration: an unknown strategy or bad parameters name the variable', () => {
    const base = { TRADER_HOME: dir };
    assert.equal(parseConfig({ ...base, STRATEGY: 'hybrid' }).strategy, 'hybrid');
    assert.throws(() => parseConfig({ ...base, STRATEGY: 'no-such-strategy' }), (e: Error) => /STRATEGY/.test(e.message) && /not found/.test(e.message));
    assert.throws(() => parseConfig({ ...base, STRATEGY_PARAMS: '{oops' }), (e: Error) => /STRATEGY_PARAMS/.test(e.message));
    assert.deepEqual(parseConfig({ ...base, STRATEGY_PARAMS: '{"rsiMax":75}' }).strategyParams, { rsiMax: 75 });
  });
});
