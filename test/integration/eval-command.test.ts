import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runEvalCommand, type EvalCommandIo } from '../../client/commands/eval';
import { UsageError } from '../../infra/errors';
import { readManifest } from '../../models/registry';
import type { TrainReport } from '../../models/train';
import { regimeCandles, writeCandleFile } from '../../testkit/candles';

/**
 * `trader eval`: walk-forward over two symbols at 1h and one at 4h (generated, seeded candles),
 * test-sized training (small forests, a few PPO rollouts). Every fold's version is trained only on
 * candles before its fold, the ensemble and hybrid trade on every fold, and each model strategy
 * gets a Sharpe-difference interval against the rules.
 */

const SMALL = {
  ensemble: { forest: { trees: 8 }, boosting: { rounds: 15 } },
  ppo: { rolloutSteps: 256, episodeLength: 128, epochs: 2, minibatchSize: 64 },
  ppoSteps: 512,
  significanceRuns: 200,
};
const config = () => ({ risk: { initialCapital: 10_000, maxPositionSize: 0.05, stopLossPct: 0.02, takeProfitPct: 0.04, maxDrawdown: 0.15 } }) as never;

describe('trader eval: walk-forward over symbols and timeframes', function () {
  this.timeout(600_000); // trains and walk-forward evaluates models over several symbols and timeframes
  let dir: string;
  let files: string[];
  const lines: string[] = [];
  const io: EvalCommandIo = { info: (l) => lines.push(l), warn: () => undefined };

  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'eval-'));
    files = [
      writeCandleFile(dir, { exchange: 'binance', symbol: 'BTC/USDT', timeframe: '1h' }, regimeCandles({ seed: 21, count: 2600, startPrice: 30_000 })),
      writeCandleFile(dir, { exchange: 'binance', symbol: 'ETH/USDT', timeframe: '1h' }, regimeCandles({ seed: 22, count: 2600, startPrice: 2_000 })),
      writeCandleFile(dir, { exchange: 'binance', symbol: 'SOL/USDT', timeframe: '4h' }, regimeCandles({ seed: 23, count: 1900, timeframe: '4h', startPrice: 40, volatility: 0.016 })),
    ];
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('trains a version before each fold, scores it on the fold, and pools the folds per timeframe', async () => {
    const models = path.join(dir, 'folds');
    const out = path.join(dir, 'eval.json');
    const report = await runEvalCommand({ data: files, folds: '2', seed: '4', models, json: out }, io, { config, settings: SMALL });
    assert.deepEqual(report.results.map((r) => `${r.timeframe}/${r.fold}`), ['1h/1', '1h/2', '4h/1', '4h/2']);
    assert.deepEqual(report.results.filter((r) => r.timeframe === '1h')[0].symbols, ['BTC/USDT', 'ETH/USDT']);
    for (const f of report.results) {
      const what = `${f.timeframe} fold ${f.fold}`;
      // The fold's version never saw the fold: its validation split and its normalization end before it.
      const rep = JSON.parse(fs.readFileSync(path.join(f.dir, 'report.json'), 'utf8')) as TrainReport;
      assert.ok(rep.splits.validation.to < Date.parse(f.from), `${what}: validation ends before the fold`);
      assert.ok(Date.parse(readManifest(f.dir).normalization!.fittedBefore) <= Date.parse(f.from), `${what}: normalization fitted before the fold`);
      assert.ok(f.classifier && f.classifier.rows > 100 && f.classifier.auc > 0 && f.classifier.auc < 1, `${what}: classifier scored`);
      assert.ok(f.thresholds.exitProb !== null && f.thresholds.exitProb < f.thresholds.enterProb);
      assert.deepEqual(f.strategies.map((s) => s.strategy), ['rules', 'ensemble', 'ppo', 'hybrid']);
      for (const s of f.strategies) {
        if (s.strategy === 'rules') continue;
        assert.equal(s.modelErrors, 0, `${what} ${s.strategy}: every signal served`);
        const d = s.sharpeVsRules!;
        assert.ok(d && d.low <= d.high && d.bars > 100, `${what} ${s.strategy}: a Sharpe-difference interval`);
      }
      for (const name of ['ensemble', 'hybrid']) assert.ok(f.strategies.find((s) => s.strategy === name)!.trades > 0, `${what}: ${name} trades`);
    }
    // Consecutive folds do not overlap.
    const [a, b] = report.results.filter((r) => r.timeframe === '1h');
    assert.ok(Date.parse(a.to) < Date.parse(b.from));
    assert.deepEqual(report.summary.map((g) => g.timeframe), ['1h', '4h']);
    for (const g of report.summary) {
      const rules = g.strategies.find((s) => s.strategy === 'rules')!;
      assert.equal(rules.sharpeVsRules, null, 'the baseline');
      for (const s of g.strategies.filter((x) => x.strategy !== 'rules')) assert.ok(s.sharpeVsRules && s.sharpeVsRules.bars === g.bars, `${g.timeframe} ${s.strategy}: pooled over every fold's bars`);
      assert.equal(g.strategies.find((s) => s.strategy === 'ensemble')!.foldsWithTrades, g.folds);
    }
    const text = lines.join('\n');
    assert.match(text, /Walk-forward evaluation: 2 fold\(s\) per timeframe over BTC\/USDT, ETH\/USDT, SOL\/USDT \(1h, 4h\)/);
    assert.match(text, /1h\s+ensemble\s+2\/2/);
    assert.match(text, /no significant difference|beats rules|worse than rules/);
    assert.deepEqual(JSON.parse(fs.readFileSync(out, 'utf8')).summary, JSON.parse(JSON.stringify(report.summary)));
    assert.ok(fs.existsSync(path.join(models, '1h-fold-2', 'manifest.json')), 'fold versions kept under --models');
  });

  it('refuses bad arguments with a clear message', async () => {
    const used = path.join(dir, 'used');
    fs.mkdirSync(used, { recursive: true });
    fs.writeFileSync(path.join(used, 'something'), 'x');
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ data: [] }, /at least one candle CSV/],
      [{ data: [path.join(dir, 'nope_BTC-USDT_1h.csv')] }, /no such file/],
      [{ data: files, folds: '0' }, /--folds '0': expected an integer from 1 to 10/],
      [{ data: files, seed: 'x' }, /--seed 'x'/],
      [{ data: files, models: used }, /exists and is not an empty directory/],
      [{ data: files, json: files[0] }, /refusing to overwrite candles/],
      [{ data: [files[0], files[0]] }, /given twice/],
      [{ data: [writeCandleFile(dir, { exchange: 'binance', symbol: 'ADA/USDT', timeframe: '1h' }, regimeCandles({ seed: 24, count: 800 }))], folds: '4' }, /1h: not enough data for 4 walk-forward folds/],
    ];
    for (const [opts, why] of cases) {
      await assert.rejects(runEvalCommand(opts, { info: () => undefined, warn: () => undefined }, { config, settings: SMALL }), (e: Error) => e instanceof UsageError && why.test(e.message), `${JSON.stringify(opts)} -> ${why}`);
    }
  });
});
