import { loadFile } from '../../backtester/run';
import { loadStrategy, paramsHash } from '../../infra/strategies';
import { settingsOf } from '../../activities/research/hyperopt';
import { holdoutCutoff, runTrial } from '../../lib/hyperopt/trial';
import { searchSpace } from '../../lib/hyperopt/space';

/**
 * A child process of the hyperopt bench: runs the same trial (runTrial, what a research worker's
 * activity runs, without Temporal) `count` times after `warmup` untimed ones, and prints one line
 * of JSON with the timed trials' milliseconds. One of these alone, then two at once, is what the
 * machine gives two CPU-bound processes: the ceiling of two research workers' speed-up.
 *
 *   node -r tsx/cjs bench/helpers/trial-loop.ts STRATEGY COUNT WARMUP FILE...
 */

async function main(): Promise<void> {
  const [strategy, countArg, warmupArg, ...files] = process.argv.slice(2);
  const loaded = loadStrategy(strategy);
  const series = files.map((f) => loadFile(f));
  const space = searchSpace(loaded.strategy);
  const params = Object.fromEntries(Object.entries(space).map(([k, r]) => [k, r.type === 'categorical' ? r.choices[0] : (r.low + r.high) / 2]));
  const settings = settingsOf({ strategy, data: { files }, loss: 'sharpe', folds: 2, cutoff: holdoutCutoff(series, 0.2, 2), initialCapital: 10_000, feeBps: 10, slippageBps: 0 });
  for (let i = 0; i < Number(warmupArg); i++) await runTrial(series, loaded, params, settings, paramsHash);
  const ms: number[] = [];
  for (let i = 0; i < Number(countArg); i++) {
    const t0 = performance.now();
    await runTrial(series, loaded, params, settings, paramsHash);
    ms.push(performance.now() - t0);
  }
  console.log(JSON.stringify({ ms }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
