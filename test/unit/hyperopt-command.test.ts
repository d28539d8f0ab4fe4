import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../infra/config';
import { UsageError } from '../../infra/errors';
import { runHyperoptCommand, resultLines } from '../../client/commands/hyperopt';
import { renderHyperoptReport } from '../../backtester/hyperopt-report';
import type { HyperoptResult } from '../../lib/contracts/hyperopt';
import { fixtureCandleFile } from '../../testkit/fixtures';

/**
 * `trader hyperopt`'s bad input: exit 2 (a UsageError) with the reason, before any server,
 * database or worker starts (the command's config points at nothing that could start); and the
 * result's text and HTML report.
 */

const quiet = { info: () => undefined, warn: () => undefined, bars: false };

describe('trader hyperopt: bad input is refused before anything starts', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-hyperopt-cmd-'));
  // An unreachable Temporal and database: a command that got past its checks would fail on them, not with a UsageError.
  const cfg = () => parseConfig({ TRADER_HOME: home, TEMPORAL_ADDRESS: '127.0.0.1:9', DATABASE_URL: 'postgres://nobody:x@127.0.0.1:9/none', LOG_LEVEL: 'error' });
  const eth = fixtureCandleFile('synthetic_ETH-USDT_1h.csv');
  const xrp = fixtureCandleFile('synthetic_XRP-USDT_1h.csv');
  const refused = async (args: Record<string, unknown>, re: RegExp) => {
    await assert.rejects(runHyperoptCommand(args, quiet, { config: cfg }), (err: unknown) => err instanceof UsageError && re.test((err as Error).message));
  };
  after(() => fs.rmSync(home, { recursive: true, force: true }));

  it('no --trials, an unknown loss, an unknown or empty space', async () => {
    await refused({ strategy: 'rules', data: [eth] }, /--trials: how many trials/);
    await refused({ strategy: 'rules', data: [eth], trials: '10', loss: 'onlyprofit' }, /--loss 'onlyprofit': not a loss we have/);
    await refused({ strategy: 'rules', data: [eth], trials: '10', spaces: 'buy' }, /--spaces: buy: not a space/);
    await refused({ strategy: 'rules', data: [eth], trials: '10', spaces: 'size' }, /the space is empty: no search range of rules is in size/);
    await refused({ strategy: 'rules', data: [eth], trials: '0' }, /--trials '0': expected a number of trials, an integer from 1/);
  });

  it('too little data for the folds plus the holdout; a missing file; a model strategy', async () => {
    await refused({ strategy: 'rules', data: [xrp], trials: '10', walkForward: '30' }, /too little data: .* for 30 folds/);
    await refused({ strategy: 'rules', data: ['/nope.csv'], trials: '10' }, /--data \/nope.csv: no such file/);
    await refused({ strategy: 'hybrid', data: [eth], trials: '10' }, /hybrid reads the model .*not supported yet/);
    await refused({ strategy: 'rules', data: [eth], trials: '10', holdout: '95%' }, /--holdout '95%': between 0% and 90%/);
  });

  it('a parameter file the strategy refuses; --force without --apply; --resume with a new search', async () => {
    await refused({ strategy: 'rules', data: [eth], trials: '10', params: '{"rsiMin": "high"}' }, /rules parameters: rsiMin/);
    await refused({ strategy: 'rules', data: [eth], trials: '10', force: true }, /--force goes with --apply/);
    await refused({ resume: 'x', strategy: 'rules', trials: '5' }, /--resume RUN_ID watches a run already started/);
  });
});

describe('trader hyperopt: the result as text and as a page', () => {
  const result: HyperoptResult = {
    runId: 'demo',
    study: 'hyperopt-demo',
    trials: { asked: 3, complete: 2, failed: 1 },
    best: {
      number: 1,
      params: { fast: 9, mode: 'sma' },
      loss: -1.5,
      inSearch: { totalReturn: 0.12, sharpe: 1.5, sortino: 2, calmar: 3, maxDrawdown: 0.04, trades: 20, foldLosses: [-1.2, -1.8] },
      holdout: { loss: -0.4, totalReturn: -0.01, sharpe: 0.4, sortino: 0.5, calmar: 0.2, maxDrawdown: 0.03, trades: 4, days: 30, equity: [{ time: Date.UTC(2021, 0, 1), equity: 100 }, { time: Date.UTC(2021, 0, 2), equity: 99 }] },
    },
    guard: { dsr: 0.31, psr: 0.8, sharpeAnnualized: 1.5, thresholdAnnualized: 1.1, trialSharpeVariance: 0.01, pbo: 0.6, partitions: 16, combinations: 12870, periods: 64, trials: 2 },
    importance: { fast: 0.8, mode: 0.2 },
    top: [{ number: 1, loss: -1.5, params: { fast: 9, mode: 'sma' } }, { number: 0, loss: -0.2, params: { fast: 3, mode: 'ema' } }],
  };

  it('names the best parameters, the holdout beside the search, the guard and how to apply', () => {
    const text = resultLines(result).join('\n');
    assert.match(text, /best: trial 1, loss -1.5000/);
    assert.match(text, /in search: return \+12.00 %/);
    assert.match(text, /holdout: {3}return -1.00 %.*over 30 days/);
    assert.match(text, /Deflated Sharpe Ratio 0.310/);
    assert.match(text, /Probability of Backtest Overfitting 0.600 \(CSCV, 16 partitions of 64 days/);
    assert.match(text, /apply it: trader hyperopt --apply demo/);
  });

  it('the page: one point per complete trial, the failed one marked, the guard and the holdout, nothing loaded from the network', () => {
    const trials = [
      { runId: 'demo', number: 0, key: 'demo/0', params: { fast: 3, mode: 'ema' }, state: 'complete' as const, loss: -0.2 },
      { runId: 'demo', number: 1, key: 'demo/1', params: { fast: 9, mode: 'sma' }, state: 'complete' as const, loss: -1.5 },
      { runId: 'demo', number: 2, key: 'demo/2', params: { fast: 30, mode: 'wma' }, state: 'fail' as const, loss: null, error: 'refused' },
    ];
    const html = renderHyperoptReport({ result, config: { strategy: 'demo', loss: 'sharpe' }, trials });
    assert.equal((html.match(/<circle /g) ?? []).length, 2);
    assert.match(html, /trial 2 failed: refused/);
    assert.match(html, /Deflated Sharpe Ratio/);
    assert.match(html, /aria-label="holdout equity"/);
    assert.ok(!/(src|href)="https?:/.test(html), 'no external resource');
  });
});
