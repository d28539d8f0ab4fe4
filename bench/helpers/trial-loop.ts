import { loadFile } from '../../backtester/run';
import { loadStrategy, paramsHash } from '../../infra/strategies';
import { settingsOf } from '../../activities/research/hyperopt';
import { holdoutCutoff, runTrial } from '../../lib/hyperopt/trial';
import { searchSpace } from '../../lib/hyperopt/space';

/**
 * A child process of the hyperopt bench: runs a trial (runTrial, what a research worker's
 * activity runs, without Temporal) `count` times after `warmup` untimed ones, each with its own
 * parameters drawn in the space, and prints one line of JSON with the timed trials' milliseconds.
 * One of these alone, then two at once, is what the machine gives two CPU-bound processes: the
 * ceiling of two research workers' speed-up.
 *
 *   node -r tsx/cjs bench/helpers/trial-loop.ts STRATEGY COUNT WARMUP FILE...
 */

async function main(): Promise<void> {
  const [strategy, countArg, warmupArg, ...files] = process.argv.slice(2);
  const loaded = loadStrategy(strategy);
  const series = files.map((f) => loadFile(f));
  const space = searchSpace(loaded.strategy);
  // Each trial its own parameters, drawn in the space as a sampler would (seeded: the same every run).
  let seed = 12345;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const draw = () =>
    Object.fromEntries(
      Object.entries(space).map(([k, r]) => [k, r.type === 'categorical' ? r.choices[Math.floor(random() * r.choices.length)] : r.type === 'int' ? r.low + Math.floor(random() * (r.high - r.low + 1)) : r.low + random() * (r.high - r.low)]),
    );
  const settings = settingsOf({ strategy, data: { files }, loss: 'sharpe', folds: 2, cutoff: holdoutCutoff(series, 0.2, 2), initialCapital: 10_000, feeBps: 10, slippageBps: 0 });
  for (let i = 0; i < Number(warmupArg); i++) await runTrial(series, loaded, draw(), settings, paramsHash);
  const ms: number[] = [];
  for (let i = 0; i < Number(countArg); i++) {
    const params = draw();
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
