import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineStrategy } from '../../lib/strategy/types';
import { HyperoptInputError, assertInSpace, parseSpaces, searchSpace } from '../../lib/hyperopt/space';
import { FIGURE_CAP, foldBounds, lossOf, parseHoldout, parseLoss, returnFigures, scoreReturns } from '../../lib/hyperopt/objective';
import { holdoutCutoff, holdoutPart, searchPart } from '../../lib/hyperopt/trial';
import { FEATURE_SCHEMA } from '../../lib/features/schema';
import type { BacktestSeries } from '../../lib/backtest';

/**
 * The pieces of a hyperopt run that decide what is searched and how a trial is scored: the space
 * from a strategy's `search` ranges, the losses, the walk-forward folds and the holdout cut.
 */

const demo = defineStrategy({
  name: 'demo',
  version: '1',
  warmup: 5,
  params: z.object({ fast: z.number().int().min(2).default(5), slow: z.number().int().max(200).default(30), stop: z.number().positive().default(0.02), mode: z.enum(['a', 'b']).default('a') }),
  search: {
    fast: { type: 'int', low: 2, high: 20 },
    slow: { type: 'int', low: 20, high: 120, space: 'entry' },
    stop: { type: 'float', low: 0.01, high: 0.1, log: true, space: 'stop' },
    mode: { type: 'categorical', choices: ['a', 'b'], space: 'exit' },
  },
  decide: () => ({ enter: false, exit: false }),
});

describe('hyperopt: the search space', () => {
  it("is the strategy's search ranges, kept to the spaces asked for (entry when a range names none)", () => {
    assert.deepEqual(Object.keys(searchSpace(demo)), ['fast', 'slow', 'stop', 'mode']);
    assert.deepEqual(Object.keys(searchSpace(demo, ['stop', 'exit'])), ['stop', 'mode']);
    assert.deepEqual(Object.keys(searchSpace(demo, ['entry'])), ['fast', 'slow']);
  });

  it('refuses an empty space, an unknown space name, a range its schema refuses and a range of no parameter, naming them', () => {
    assert.throws(() => searchSpace(demo, ['size']), (e: Error) => e instanceof HyperoptInputError && /the space is empty: no search range of demo is in size; it has fast \(entry\), slow \(entry\), stop \(stop\), mode \(exit\)/.test(e.message));
    assert.throws(() => parseSpaces('entry,buy'), /--spaces: buy: not a space; the spaces are entry, exit, stop, size/);
    assert.throws(() => parseSpaces(' , '), /--spaces: give one or more/);
    const tooWide = { ...demo, search: { slow: { type: 'int' as const, low: 20, high: 500 } } };
    assert.throws(() => searchSpace(tooWide), /search range slow reaches 500, which its parameters refuse/);
    const stray = { ...demo, search: { nope: { type: 'int' as const, low: 1, high: 2 } } } as unknown as typeof demo;
    assert.throws(() => searchSpace(stray), /search range nope is not one of its parameters \(fast, slow, stop, mode\)/);
    const upside = { ...demo, search: { fast: { type: 'int' as const, low: 9, high: 3 } } };
    assert.throws(() => searchSpace(upside), /fast: low 9 is above high 3/);
    const none = { ...demo, search: undefined };
    assert.throws(() => searchSpace(none), /declares no search ranges/);
  });

  it('checks parameters against their ranges (what --apply writes)', () => {
    const space = searchSpace(demo);
    assertInSpace(space, { fast: 3, slow: 50, stop: 0.05, mode: 'b' });
    assert.throws(() => assertInSpace(space, { fast: 3.5, slow: 50, stop: 0.05, mode: 'b' }), /fast = 3.5 is outside its range int \[2, 20\]/);
    assert.throws(() => assertInSpace(space, { fast: 3, slow: 50, stop: 0.5, mode: 'b' }), /stop = 0.5 is outside its range float \[0.01, 0.1\] log/);
    assert.throws(() => assertInSpace(space, { fast: 3, slow: 50, stop: 0.05, mode: 'c' }), /mode = "c" is outside/);
  });
});

describe('hyperopt: losses and folds', () => {
  it('figures of a return series: compounded return, annualized Sharpe and Sortino, drawdown, Calmar', () => {
    const r = [0.01, -0.02, 0.03, 0.01, -0.01];
    const f = returnFigures(r, 365);
    const total = r.reduce((e, x) => e * (1 + x), 1) - 1;
    assert.ok(Math.abs(f.totalReturn - total) < 1e-12);
    const mean = r.reduce((a, b) => a + b, 0) / r.length;
    const std = Math.sqrt(r.reduce((a, x) => a + (x - mean) ** 2, 0) / (r.length - 1));
    assert.ok(Math.abs(f.sharpe - (mean / std) * Math.sqrt(365)) < 1e-9);
    assert.ok(Math.abs(f.sortino - (mean / Math.sqrt((0.02 ** 2 + 0.01 ** 2) / 5)) * Math.sqrt(365)) < 1e-9);
    // Peak 1.01, trough 1.01 * 0.98: a 2 % fall.
    assert.ok(Math.abs(f.maxDrawdown - 0.02) < 1e-12);
    assert.ok(Math.abs(f.calmar - Math.min(FIGURE_CAP, ((1 + total) ** (365 / 5) - 1) / 0.02)) < 1e-6);
  });

  it('nothing to divide by gives a capped or zero figure, never Infinity or NaN', () => {
    const flat = returnFigures([0, 0, 0], 365);
    assert.deepEqual([flat.sharpe, flat.sortino, flat.calmar, flat.maxDrawdown], [0, 0, 0, 0]);
    const up = returnFigures([0.01, 0.02, 0.01], 365);
    assert.equal(up.sortino, FIGURE_CAP);
    assert.equal(up.calmar, FIGURE_CAP);
    assert.ok(Number.isFinite(up.sharpe));
  });

  it('each loss is the negative of its figure; profit-drawdown is -(return - drawdown)', () => {
    const f = returnFigures([0.05, -0.1, 0.02], 365);
    assert.equal(lossOf('sharpe', f), -f.sharpe);
    assert.equal(lossOf('sortino', f), -f.sortino);
    assert.equal(lossOf('calmar', f), -f.calmar);
    assert.ok(Math.abs(lossOf('profit-drawdown', f) - -(f.totalReturn - f.maxDrawdown)) < 1e-15);
    assert.throws(() => parseLoss('onlyprofit'), /--loss 'onlyprofit': not a loss we have; choose one of sharpe, sortino, calmar, profit-drawdown/);
    assert.equal(parseLoss(undefined), 'sharpe');
  });

  it('K folds split the days into consecutive parts; the trial loss is their mean, so one lucky fold cannot carry it', () => {
    assert.deepEqual(foldBounds(10, 3), [[0, 4], [4, 7], [7, 10]]);
    assert.throws(() => foldBounds(5, 3), /too little data: 5 days in the search part give fewer than 2 per fold for 3 folds/);
    const lucky = [...Array(10).fill(0.05), ...Array(10).fill(-0.01), ...Array(10).fill(-0.01)].map((x, i) => x + (i % 2 ? 0.001 : -0.001));
    const one = scoreReturns(lucky, { loss: 'sharpe', folds: 1, periodsPerYear: 365 });
    const three = scoreReturns(lucky, { loss: 'sharpe', folds: 3, periodsPerYear: 365 });
    assert.equal(three.folds.length, 3);
    assert.ok(Math.abs(three.loss - three.folds.reduce((a, f) => a + f.loss, 0) / 3) < 1e-12);
    assert.ok(three.folds[1].loss > 0 && three.folds[2].loss > 0, 'the two losing folds score as losses');
    assert.ok(one.loss < 0, 'over the whole, the lucky start makes it look good');
  });

  it('--holdout takes 20%, 0.2 or 20, refuses what is not a share', () => {
    assert.equal(parseHoldout('20%'), 0.2);
    assert.equal(parseHoldout('0.25'), 0.25);
    assert.equal(parseHoldout('30'), 0.3);
    assert.equal(parseHoldout('0'), 0);
    assert.equal(parseHoldout(undefined), 0.2);
    assert.throws(() => parseHoldout('95%'), /between 0% and 90%/);
    assert.throws(() => parseHoldout('lots'), /a share of the data such as 20%/);
  });
});

describe('hyperopt: the holdout cut', () => {
  const HOUR = 3_600_000;
  const series = (symbol: string, start: number, hours: number): BacktestSeries => ({
    source: 'test',
    exchange: 'x',
    symbol,
    timeframe: '1h',
    timeframeMs: HOUR,
    candles: Array.from({ length: hours }, (_, i) => ({ timestamp: start + i * HOUR, open: 1, high: 1, low: 1, close: 1, volume: 1 })),
  });
  const start = Date.UTC(2021, 0, 1, 5);
  const a = series('A/USDT', start, 100 * 24);
  const b = series('B/USDT', start + 24 * HOUR, 99 * 24);

  it('is a UTC midnight at the last share of the span; the search part ends before it, the holdout starts there with its warm-up', () => {
    const cutoff = holdoutCutoff([a, b], 0.2, 4)!;
    assert.equal(cutoff % 86_400_000, 0, 'a UTC midnight');
    const end = start + 100 * 24 * HOUR;
    assert.ok(cutoff <= start + (end - start) * 0.8 && cutoff > start + (end - start) * 0.8 - 86_400_000);
    const search = searchPart([a, b], cutoff);
    assert.ok(search.every((s) => s.candles.every((c) => c.timestamp < cutoff)));
    assert.equal(search[0].candles.length + holdoutPart([a], cutoff, 0)[0].candles.length - (FEATURE_SCHEMA.historyBars), a.candles.length, 'warm-up overlap is the feature history');
    const hold = holdoutPart([a], cutoff, 10)[0].candles;
    assert.equal(hold.filter((c) => c.timestamp < cutoff).length, FEATURE_SCHEMA.historyBars + 10, 'warm-up of the features and the strategy before the cutoff, not scored');
    assert.equal(holdoutCutoff([a], 0, 1), null);
  });

  it('refuses too little data for the folds plus the holdout, and a holdout with no whole day', () => {
    assert.throws(() => holdoutCutoff([series('C/USDT', start, 5 * 24)], 0.2, 3), /too little data: .* days in the search part give fewer than 2 per fold for 3 folds/);
    assert.throws(() => holdoutCutoff([series('D/USDT', Date.UTC(2021, 0, 1), 30)], 0.1, 1), /too little data/);
  });
});
