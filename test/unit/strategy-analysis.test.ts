import assert from 'node:assert/strict';
import path from 'node:path';
import { runStrategyCheck } from '../../client/commands/strategy-check';
import { UsageError } from '../../infra/errors';
import { loadStrategy, paramsHash, strategyHost } from '../../infra/strategies';
import { computeFeatureMatrix } from '../../lib/features';
import { lookaheadAnalysis, recursiveAnalysis, relativeDifference, type LookaheadReport } from '../../lib/strategy/analysis';
import { BUILTIN_STRATEGIES } from '../../lib/strategy/builtins';
import { StrategyHost } from '../../lib/strategy/host';
import type { LoadedStrategy } from '../../lib/strategy/run';
import { defineStrategy, type Strategy } from '../../lib/strategy/types';
import { z } from 'zod';
import { randomWalkCandles } from '../../testkit/candles';
import { fixtureCandleFile } from '../../testkit/fixtures';

const LOOKAHEAD = path.resolve(__dirname, '..', 'fixtures', 'strategies', 'lookahead.ts');
const HONEST = path.resolve(__dirname, '..', 'fixtures', 'strategies', 'honest-ema.ts');
// The loader type-checks a strategy file with the TypeScript compiler, about 3 s a file; `tsc -p .` checks these fixtures already.
const host = (ref: string, params: Record<string, unknown> = {}) => strategyHost(ref, params, { typeCheck: false });
const inline = (s: Strategy): StrategyHost => new StrategyHost({ strategy: s, identity: { name: s.name, version: s.version, source: 'test' }, origin: 'test' } as LoadedStrategy, {}, paramsHash);

const candles = randomWalkCandles({ seed: 7, count: 2000, timeframe: '1h' });
const features = computeFeatureMatrix(candles);
const series = { symbol: 'BTC/USDT', timeframe: '1h', timeframeMs: 3_600_000, candles, features };

const fields = (r: LookaheadReport) => r.summary.map((s) => `${s.kind}:${s.field}${s.position ? `:${s.position}` : ''}`);

describe('strategy check: look-ahead and recursion analyses (lib/strategy/analysis.ts)', () => {
  it('compares NaN with NaN as equal and a NaN with a number as different', () => {
    assert.equal(relativeDifference(NaN, NaN), 0);
    assert.equal(relativeDifference(NaN, 1), Infinity);
    assert.ok(Math.abs(relativeDifference(100, 100 + 1e-8) - 1e-10) < 1e-15);
    assert.equal(relativeDifference(0, 1e-12, 1), 1e-12); // near zero: relative to the column's scale
  });

  it('flags the planted next_return column by name and candle, and the answers it changes; the honest column beside it is not flagged', () => {
    const r = lookaheadAnalysis({ host: host(LOOKAHEAD), ...series });
    assert.equal(r.lookahead, true);
    assert.equal(r.nondeterministic, false);
    assert.deepEqual(r.indicators, ['next_return', 'past_return']);
    assert.ok(r.checked > 50 && r.checked <= 300, `${r.checked} candles checked`);
    assert.ok(r.checkedSignalCandles > 0);
    assert.deepEqual(fields(r).sort(), ['answer:enter:flat', 'answer:exit:long', 'indicator:next_return']);
    const f = r.findings.find((x) => x.field === 'next_return')!;
    assert.ok(f.index >= r.firstDecision && f.index < candles.length - 1);
    assert.equal(f.time, candles[f.index].timestamp);
    assert.equal(f.full, candles[f.index + 1].close / candles[f.index].close - 1);
    assert.ok(Number.isNaN(f.prefix as number), 'without the next candle the column has no value');
    const enter = r.findings.find((x) => x.kind === 'answer' && x.field === 'enter')!;
    assert.deepEqual([enter.position, enter.full, enter.prefix], ['flat', true, false]);
    // Every candle checked shows the planted column: it looks ahead everywhere.
    assert.equal(r.summary.find((s) => s.field === 'next_return')!.count, r.checked);
  });

  it('flags a column normalised by the whole series maximum', () => {
    const s = defineStrategy({
      name: 'normalised',
      version: '1',
      warmup: 1,
      params: z.object({}),
      indicators(cs) {
        const max = Math.max(...cs.map((c) => c.close));
        return { rel: cs.map((c) => c.close / max) };
      },
      decide: ({ indicator }) => ({ enter: indicator('rel') > 0.9, exit: indicator('rel') < 0.8 }),
    });
    const r = lookaheadAnalysis({ host: inline(s as unknown as Strategy), ...series });
    assert.equal(r.lookahead, true);
    assert.ok(fields(r).includes('indicator:rel'), fields(r).join(', '));
  });

  it('does not flag the honest EMA cross (technicalindicators), and its answers are deterministic', () => {
    const r = lookaheadAnalysis({ host: host(HONEST), ...series });
    assert.deepEqual(r.indicators, ['ema_fast', 'ema_slow']);
    assert.equal(r.lookahead, false, JSON.stringify(r.summary));
    assert.equal(r.nondeterministic, false);
    assert.deepEqual(r.findings, []);
    assert.ok(r.checked > 50);
    assert.equal(r.featureSpotChecks, 3);
  });

  it('reports a strategy that keeps state between calls as not deterministic, not as look-ahead', () => {
    let calls = 0;
    const s = defineStrategy({ name: 'stateful', version: '1', warmup: 0, params: z.object({}), decide: () => ({ enter: calls++ % 3 === 0, exit: false }) });
    const r = lookaheadAnalysis({ host: inline(s as unknown as Strategy), ...series, sample: 20, maxChecks: 40 });
    assert.equal(r.lookahead, false);
    assert.equal(r.nondeterministic, true);
    assert.ok(r.nondeterminism.some((n) => n.field === 'enter' && n.position === 'flat'));
  });

  it('recursion: the warm-up the EMA needs grows with its period, and a declared warm-up too short for it is flagged', () => {
    const needs = [20, 50, 150].map((slow) => {
      const r = recursiveAnalysis({ host: host(HONEST, { slow }), ...series });
      const ema = r.indicators.find((i) => i.name === 'ema_slow')!;
      assert.equal(ema.declared, 200);
      return { slow, needed: ema.needed!, verdict: ema.verdict, ok: r.ok, r };
    });
    assert.ok(needs[0].needed < needs[1].needed && needs[1].needed < needs[2].needed, JSON.stringify(needs.map(({ slow, needed }) => [slow, needed])));
    // An EMA's start-up error decays as (1 - 2/(p+1))^n: from a few percent to 1e-6 takes about 6-7 periods.
    for (const { slow, needed } of needs) assert.ok(needed > slow && needed < 10 * slow, `slow ${slow} needs ${needed}`);
    assert.deepEqual([needs[0].verdict, needs[0].ok], ['ok', true]);
    assert.deepEqual([needs[2].verdict, needs[2].ok], ['too-short', false]);
    assert.ok(needs[2].needed > 200);
    const tooShort = needs[2].r.indicators.find((i) => i.name === 'ema_slow')!;
    assert.ok(tooShort.declaredDiff! > 1e-6);
    // A looser tolerance needs less warm-up.
    const loose = recursiveAnalysis({ host: host(HONEST, { slow: 150 }), ...series, tolerance: 1e-2 }).indicators.find((i) => i.name === 'ema_slow')!;
    assert.ok(loose.needed! < needs[2].needed);
  });

  it('the four built-ins pass both analyses (they read only the context: the report says so)', () => {
    assert.deepEqual(Object.keys(BUILTIN_STRATEGIES).sort(), ['ensemble', 'hybrid', 'ppo', 'rules']);
    for (const name of Object.keys(BUILTIN_STRATEGIES)) {
      const h = new StrategyHost(loadStrategy(name), {}, paramsHash);
      const la = lookaheadAnalysis({ host: h, ...series, sample: 30, maxChecks: 100 });
      assert.equal(la.lookahead, false, `${name}: ${JSON.stringify(la.summary)}`);
      assert.equal(la.nondeterministic, false, name);
      assert.ok(la.checked > 0);
      assert.match(la.notes.join(' '), /no indicators\(\)/);
      if (name !== 'rules') assert.match(la.notes.join(' '), /model signal/);
      const rec = recursiveAnalysis({ host: h, ...series });
      assert.equal(rec.ok, true, name);
      assert.deepEqual(rec.indicators, []);
    }
  });

  it('trader strategy check: exit 1 naming next_return for the planted strategy, 0 for the honest one; JSON too', async () => {
    const file = fixtureCandleFile('synthetic_XRP-USDT_1h.csv');
    const lines: string[] = [];
    assert.equal(await runStrategyCheck({ ref: LOOKAHEAD, files: [file], out: (l) => lines.push(l), typeCheck: false }), 1);
    const text = lines.join('\n');
    assert.match(text, /LOOK-AHEAD/);
    assert.match(text, /indicator\s+next_return/);
    assert.doesNotMatch(text, /past_return\s+\d+\s+#/);

    const honest: string[] = [];
    assert.equal(await runStrategyCheck({ ref: HONEST, files: [file], out: (l) => honest.push(l), typeCheck: false }), 0);
    assert.match(honest.join('\n'), /no look-ahead/);
    assert.match(honest.join('\n'), /ema_slow\s+\d+\s+200\s+ok/);

    const json: string[] = [];
    assert.equal(await runStrategyCheck({ ref: HONEST, params: { slow: 60 }, files: [file], out: (l) => json.push(l), json: true, typeCheck: false }), 0);
    const doc = JSON.parse(json.join('\n'));
    assert.equal(doc.exitCode, 0);
    assert.equal(doc.lookahead, false);
    assert.equal(doc.recursionOk, false);
    assert.equal(doc.files[0].recursive.indicators.find((i: { name: string }) => i.name === 'ema_slow').verdict, 'too-short');
  });

  it('every example strategy passes trader strategy check: no look-ahead, and its declared warm-up is enough for each of its indicators', async function () {
    this.timeout(30_000); // three strategies over the 8,784-candle BTC fixture, both analyses each: seconds apiece
    const file = fixtureCandleFile('binanceusdm_BTC-USDT_1h.csv');
    for (const name of ['breakout', 'mean-reversion', 'model-trend']) {
      const out: string[] = [];
      const code = await runStrategyCheck({ ref: name, files: [file], out: (l) => out.push(l), json: true, typeCheck: false });
      const doc = JSON.parse(out.join('\n'));
      assert.equal(code, 0, `${name}: ${out.join('\n').slice(0, 2000)}`);
      assert.equal(doc.lookahead, false, `${name}: no look-ahead`);
      assert.equal(doc.recursionOk, true, `${name}: the declared warm-up is enough`);
    }
  });

  it('trader strategy check refuses bad input', async () => {
    await assert.rejects(runStrategyCheck({ ref: 'rules', files: [], out: () => {} }), UsageError);
    await assert.rejects(runStrategyCheck({ ref: 'rules', files: [fixtureCandleFile('synthetic_XRP-USDT_1h.csv')], out: () => {}, tolerance: 2 }), UsageError);
    await assert.rejects(runStrategyCheck({ ref: 'no-such-strategy', files: [fixtureCandleFile('synthetic_XRP-USDT_1h.csv')], out: () => {} }), /not found/);
  });
});
