import { continueAsNew, log, proxyActivities, setCurrentDetails, setHandler } from '@temporalio/workflow';
import { OPTUNA_BAD_INPUT, OPTUNA_TASK_QUEUE, RESEARCH_TASK_QUEUE, type HyperoptInput, type HyperoptProgress, type HyperoptResult, type OptunaActivities, type ResearchActivities, type RunTrialResult } from '../lib/contracts/hyperopt';
import { hyperoptProgressQuery } from './messages';

/**
 * A parameter search (`trader hyperopt`, id `hyperopt/<runId>`): batches of trials asked of the
 * Optuna worker (task queue `optuna`, ask-and-tell, the study in PostgreSQL), each trial a
 * backtest activity on the `research` queue that any number of `trader worker --queue research`
 * processes share, the batch's losses told back in trial order, until the trials asked for are
 * done; then the overfitting guard and the holdout backtest of the best parameters.
 *
 * The schedule (which keys are asked in which batch, the order they are told in) depends only on
 * the input, never on how many workers run the trials or which finished first, so a run with the
 * same seed and batch size samples the same parameters whatever crashed in between: a trial is
 * asked by key (`<runId>/<n>`), and a retried ask or tell changes nothing in the study.
 */

const RECENT = 60;

export async function hyperoptWorkflow(input: HyperoptInput): Promise<HyperoptResult> {
  const researchQueue = input.researchTaskQueue ?? RESEARCH_TASK_QUEUE;
  const research = proxyActivities<ResearchActivities>({
    taskQueue: researchQueue,
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: '10 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: ['HyperoptInputError', 'StrategyLoadError', 'BacktestInputError'] },
  });
  // A trial's time limit is how soon a research worker's death is noticed: its trial then runs again elsewhere.
  const trials = proxyActivities<ResearchActivities>({
    taskQueue: researchQueue,
    startToCloseTimeout: input.trialTimeoutMs ?? 60_000,
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: ['HyperoptInputError', 'StrategyLoadError', 'BacktestInputError'] },
  });
  const optuna = proxyActivities<OptunaActivities>({
    taskQueue: input.optunaTaskQueue ?? OPTUNA_TASK_QUEUE,
    startToCloseTimeout: '2 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '30 seconds', nonRetryableErrorTypes: [OPTUNA_BAD_INPUT] },
  });

  const { runId, setup } = input;
  const study = `hyperopt-${runId}`;
  const p: HyperoptProgress = input.carried ?? { asked: 0, complete: 0, failed: 0, best: null, recent: [] };
  const publish = (): void => {
    const best = p.best ? `best loss ${p.best.loss.toFixed(4)} (trial ${p.best.number}): ${JSON.stringify(p.best.params)}` : 'no complete trial yet';
    setCurrentDetails(`**hyperopt ${runId}**: ${setup.strategy}, loss ${setup.loss}, ${setup.folds} fold(s)\n\n${p.complete + p.failed} of ${input.trials} trials done (${p.failed} failed); ${best}`);
  };
  setHandler(hyperoptProgressQuery, () => ({ ...p, total: input.trials }));
  publish();

  if (!input.carried) {
    await research.hyperoptBegin({
      runId,
      setup,
      config: { strategy: setup.strategy, baseParams: setup.baseParams ?? {}, data: setup.data, loss: setup.loss, folds: setup.folds, holdout: input.holdout, cutoff: setup.cutoff, trials: input.trials, batchSize: input.batchSize, seed: input.seed, space: input.space, spaces: input.spaces ?? null },
    });
    await optuna.optunaCreateStudy({ study, seed: input.seed, attrs: { strategy: setup.strategy, loss: setup.loss, folds: setup.folds, trials: input.trials, runId } });
  }

  const batchesPerRun = input.batchesPerRun ?? 25;
  for (let batches = 0; p.asked < input.trials; ) {
    const n = Math.min(input.batchSize, input.trials - p.asked);
    const keys = Array.from({ length: n }, (_, i) => `${runId}/${p.asked + i}`);
    const asked = await optuna.optunaAsk({ study, seed: input.seed, space: input.space, keys, ...(input.startupTrials !== undefined ? { startupTrials: input.startupTrials } : {}) });
    const results: RunTrialResult[] = await Promise.all(
      asked.map((t) =>
        trials.hyperoptRunTrial({ runId, key: t.key, number: t.number, params: t.params, setup }).catch((err: unknown): RunTrialResult => {
          log.warn('trial failed', { trial: t.number, error: String(err) });
          return { key: t.key, number: t.number, state: 'fail', error: String(err) };
        }),
      ),
    );
    // Told in the order asked, whichever finished first.
    await optuna.optunaTell({ study, results: results.map((r) => ({ key: r.key, number: r.number, state: r.state, ...(r.loss !== undefined ? { value: r.loss } : {}) })) });
    p.asked += n;
    for (const [i, r] of results.entries()) {
      if (r.state === 'complete' && r.loss !== undefined) {
        p.complete++;
        if (!p.best || r.loss < p.best.loss) p.best = { number: r.number, loss: r.loss, params: asked[i].params };
      } else p.failed++;
      p.recent.push(r.loss ?? null);
    }
    p.recent.splice(0, Math.max(0, p.recent.length - RECENT));
    publish();
    if (++batches >= batchesPerRun && p.asked < input.trials) return continueAsNew<typeof hyperoptWorkflow>({ ...input, carried: p });
  }

  const summary = await optuna.optunaSummary({ study, top: 10 });
  const result = await research.hyperoptFinish({ runId, setup, top: summary.best, importance: summary.importance, asked: p.asked });
  setCurrentDetails(`**hyperopt ${runId}** done: ${result.trials.complete} complete, ${result.trials.failed} failed; best loss ${result.best?.loss.toFixed(4) ?? 'none'}`);
  return result;
}
