import os from 'node:os';
import type postgres from 'postgres';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { BacktestSeries } from '../../lib/backtest';
import type { HyperoptData, HyperoptResult, HyperoptSetup, ResearchActivities, RunTrialResult } from '../../lib/contracts/hyperopt';
import { overfittingReport } from '../../lib/hyperopt/overfitting';
import { StrategyParamsError, type LoadedStrategy } from '../../lib/strategy/run';
import { HyperoptStore, type HyperoptTrialRow } from '../../ledger/hyperopt-store';
import { CandleStore, loadStoreSeries } from '../../ledger/candle-store';
import { loadSeriesFile } from '../../infra/candle-files';
import { holdoutBacktest, PERIODS_PER_YEAR, runTrial, type TrialSettings } from '../../lib/hyperopt/trial';
import { loadStrategy, paramsHash } from '../../infra/strategies';
import type { Logger } from '../../infra/logger';

/**
 * The research task queue's activities: a hyperopt trial is a backtest (lib/hyperopt/trial.ts),
 * written to the ledger database by (run, trial number) so a retry after a crash writes the same
 * row again; the run's end computes the overfitting guard over every trial's daily returns and
 * backtests the chosen parameters over the holdout.
 *
 * Candles and strategies are loaded once per process and kept (a run's trials all read the same).
 */

export interface ResearchDeps {
  sql: postgres.Sql;
  log: Logger;
  /** Who ran a trial (kept with it): host and pid by default. */
  identity?: string;
}

/** The last point of each UTC day. */
function dailyCloses(curve: ReadonlyArray<{ time: number; equity: number }>): Array<{ time: number; equity: number }> {
  const out: Array<{ time: number; equity: number }> = [];
  for (const p of curve) {
    const last = out.at(-1);
    if (last && Math.floor(last.time / 86_400_000) === Math.floor(p.time / 86_400_000)) out[out.length - 1] = { time: p.time, equity: p.equity };
    else out.push({ time: p.time, equity: p.equity });
  }
  return out;
}

const dataKey = (d: HyperoptData): string => JSON.stringify(d);

export function settingsOf(setup: HyperoptSetup): TrialSettings {
  return {
    loss: setup.loss,
    folds: setup.folds,
    initialCapital: setup.initialCapital,
    fees: { maker: setup.feeBps / 10_000, taker: setup.feeBps / 10_000 },
    slippageBps: setup.slippageBps,
    ...(setup.risk ? { risk: setup.risk } : {}),
    cutoff: setup.cutoff,
  };
}

export function createResearchActivities(deps: ResearchDeps): ResearchActivities {
  const store = new HyperoptStore(deps.sql);
  const identity = deps.identity ?? `${os.hostname()}:${process.pid}`;
  const series = new Map<string, Promise<BacktestSeries[]>>();
  const strategies = new Map<string, LoadedStrategy>();

  const candles = (data: HyperoptData): Promise<BacktestSeries[]> => {
    const key = dataKey(data);
    let p = series.get(key);
    if (!p) {
      p = (async () => {
        if (data.files && data.files.length > 0) return data.files.map((f) => loadSeriesFile(f));
        if (data.store) return loadStoreSeries(new CandleStore(deps.sql), data.store);
        throw ApplicationFailure.nonRetryable('a hyperopt run needs candle files or candle store series', 'HyperoptInputError');
      })();
      // A failed load is not kept: the next attempt reads again.
      p.catch(() => series.delete(key));
      series.set(key, p);
    }
    return p;
  };
  const strategy = (ref: string): LoadedStrategy => {
    let s = strategies.get(ref);
    if (!s) {
      try {
        s = loadStrategy(ref);
      } catch (err) {
        throw ApplicationFailure.nonRetryable(`strategy ${ref}: ${(err as Error).message}`, 'StrategyLoadError');
      }
      strategies.set(ref, s);
    }
    return s;
  };

  return {
    async hyperoptBegin({ runId, config, setup }) {
      await store.recordRun(runId, config);
      const loaded = await candles(setup.data);
      strategy(setup.strategy);
      const first = Math.min(...loaded.map((s) => s.candles[0]?.timestamp ?? Infinity));
      const end = setup.cutoff ?? Math.max(...loaded.map((s) => s.candles.at(-1)?.timestamp ?? -Infinity));
      return { days: Math.max(0, Math.round((end - first) / 86_400_000)) };
    },

    async hyperoptRunTrial({ runId, key, number, params, setup }): Promise<RunTrialResult> {
      Context.current().heartbeat({ number });
      const started = performance.now();
      const loaded = await candles(setup.data);
      const s = strategy(setup.strategy);
      const all = { ...(setup.baseParams ?? {}), ...params };
      let row: HyperoptTrialRow;
      try {
        const out = await runTrial(loaded, s, all, settingsOf(setup), paramsHash);
        const { loss, folds, whole } = out.score;
        if (!Number.isFinite(loss)) throw new Error(`the loss is ${loss}`);
        row = { runId, number, key, params: all, state: 'complete', loss, figures: { whole, folds }, returns: out.returns, days: out.days, trades: out.trades };
      } catch (err) {
        // Parameters the strategy refuses, or a strategy that fails: the trial fails, the search goes on.
        if (!(err instanceof StrategyParamsError) && !(err instanceof Error && /the loss is/.test(err.message))) throw err;
        row = { runId, number, key, params: all, state: 'fail', loss: null, error: err.message };
      }
      row.worker = identity;
      row.durationMs = Math.round(performance.now() - started);
      await store.recordTrial(row);
      deps.log.info({ runId, trial: number, loss: row.loss, trades: row.trades, ms: row.durationMs }, 'hyperopt trial');
      return { key, number, state: row.state, ...(row.loss !== null ? { loss: row.loss } : {}), ...(row.error ? { error: row.error } : {}), ...(row.trades != null ? { trades: row.trades } : {}) };
    },

    async hyperoptFinish({ runId, setup, importance, asked }): Promise<HyperoptResult> {
      const trials = await store.trials(runId);
      const complete = trials.filter((t) => t.state === 'complete' && t.loss !== null);
      // The lowest loss; the lowest number among equals (the same answer whichever worker ran what).
      const ranked = [...complete].sort((a, b) => a.loss! - b.loss! || a.number - b.number);
      const bestRow = ranked[0];
      let guard: HyperoptResult['guard'];
      const periods = bestRow?.returns?.length ?? 0;
      const usable = complete.filter((t) => t.returns && t.returns.length === periods);
      if (usable.length < 2) guard = { skipped: `the guard needs at least 2 complete trials (got ${usable.length})` };
      else if (periods < 8) guard = { skipped: `the guard needs at least 8 days of returns per trial (got ${periods})` };
      else {
        const partitions = Math.min(16, 2 * Math.floor(periods / 4));
        try {
          const r = overfittingReport({ trialReturns: usable.map((t) => t.returns!), selected: usable.indexOf(bestRow), periodsPerYear: PERIODS_PER_YEAR, partitions });
          guard = {
            dsr: r.deflatedSharpe.dsr,
            psr: r.deflatedSharpe.psr,
            sharpeAnnualized: r.deflatedSharpe.sharpeAnnualized,
            thresholdAnnualized: r.deflatedSharpe.thresholdAnnualized,
            trialSharpeVariance: r.deflatedSharpe.trialSharpeVariance,
            pbo: r.pbo.pbo,
            partitions: r.pbo.partitions,
            combinations: r.pbo.combinations,
            periods: r.periods,
            trials: r.trials,
          };
        } catch (err) {
          guard = { skipped: (err as Error).message };
        }
      }
      let best: HyperoptResult['best'] = null;
      if (bestRow) {
        const figures = bestRow.figures as { whole: { totalReturn: number; sharpe: number; sortino: number; calmar: number; maxDrawdown: number }; folds: Array<{ loss: number }> };
        let holdout = null;
        if (setup.cutoff !== null) {
          Context.current().heartbeat('holdout');
          const h = await holdoutBacktest(await candles(setup.data), strategy(setup.strategy), bestRow.params, { ...settingsOf(setup), cutoff: setup.cutoff }, paramsHash);
          holdout = { loss: h.loss, totalReturn: h.figures.totalReturn, sharpe: h.figures.sharpe, sortino: h.figures.sortino, calmar: h.figures.calmar, maxDrawdown: h.figures.maxDrawdown, trades: h.trades, days: h.days.length, equity: dailyCloses(h.equityCurve) };
        }
        const w = figures.whole;
        best = {
          number: bestRow.number,
          params: bestRow.params,
          loss: bestRow.loss!,
          inSearch: { totalReturn: w.totalReturn, sharpe: w.sharpe, sortino: w.sortino, calmar: w.calmar, maxDrawdown: w.maxDrawdown, trades: bestRow.trades ?? 0, foldLosses: figures.folds.map((f) => f.loss) },
          holdout,
        };
      }
      const result: HyperoptResult = {
        runId,
        study: `hyperopt-${runId}`,
        // A trial whose activity gave up has no row: failed is every asked trial that did not complete.
        trials: { asked, complete: complete.length, failed: asked - complete.length },
        best,
        guard,
        importance,
        top: ranked.slice(0, 10).map((t) => ({ number: t.number, loss: t.loss!, params: t.params })),
      };
      await store.finishRun(runId, result as unknown as Record<string, unknown>);
      return result;
    },
  };
}
