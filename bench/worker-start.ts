import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sampledMarketCandles, writeCandleFile } from '../testkit/candles';
import { workflowBundleDir } from '../infra/workflow-bundle';
import { openCluster, TraderProcess } from '../testkit/cluster-processes';
import { benchLog, loadLine, machineLine, numberArg, parseArgs } from './helpers/trading-stack';

/**
 * How long a `trader worker --replay` process takes from spawn to polling ("serving the replay"),
 * with the workflow code bundled at start (cold: the bundle cache under TRADER_HOME emptied before
 * each start, which is what every start did before the cache) and loaded from the cache (warm).
 * This decides how fast a crashed worker is replaced, and how many kills a chaos run can take.
 *
 *   npm run bench -- worker-start [--starts 5]
 *
 * A real Temporal dev server and PostgreSQL as processes of their own, `trader up --replay` over
 * two generated series at a slow speed (so the replay is there to join), then the starts one after
 * the other, each stopped with SIGTERM once it polls.
 */

const args = parseArgs(process.argv.slice(2), { starts: 'value' });
const STARTS = numberArg(args, 'starts', 5, (x) => Number.isInteger(x) && x >= 1);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function main(): Promise<void> {
  const log = benchLog();
  const dir = path.join(os.tmpdir(), `dt-bench-worker-start-${process.pid}`);
  const cluster = await openCluster(dir, log);
  const procs: TraderProcess[] = [];
  try {
    const files = ['AAA/USDT', 'BBB/USDT'].map((s, i) => writeCandleFile(dir, { exchange: 'binance', symbol: s, timeframe: '1m' }, sampledMarketCandles(s, 60_000, Date.UTC(2025, 0, 1), 900, i)));
    const up = new TraderProcess('up', ['up', '--replay', ...files, '--speed', '1'], cluster.env(), path.join(dir, 'up.log'), dir);
    procs.push(up);
    await up.waitFor(/durable-trader is up/, 300_000);

    const times: Record<'cold' | 'warm', number[]> = { cold: [], warm: [] };
    for (const kind of ['cold', 'warm'] as const) {
      for (let i = 0; i < STARTS; i++) {
        if (kind === 'cold') fs.rmSync(workflowBundleDir(path.join(dir, 'home')), { recursive: true, force: true });
        const w = new TraderProcess(`worker-${kind}-${i}`, ['worker', '--replay'], cluster.env(), path.join(dir, `worker-${kind}-${i}.log`), dir);
        procs.push(w);
        await w.waitFor(/serving the replay/, 300_000);
        times[kind].push((w.readyAt! - w.startedAt) / 1000);
        w.kill('SIGTERM');
        await w.exited;
        console.log(`  ${kind} start ${i + 1}: ${times[kind][i].toFixed(2)} s (load ${loadLine()})`);
      }
    }
    const cold = median(times.cold);
    const warm = median(times.warm);
    console.log(`worker-start bench: trader worker --replay, spawn to polling, ${STARTS} starts each`);
    console.log(`  machine: ${machineLine()}; load ${loadLine()}`);
    console.log(`  cold (bundling the workflow code at start, as before the cache): median ${cold.toFixed(2)} s (${times.cold.map((t) => t.toFixed(2)).join(', ')})`);
    console.log(`  warm (bundle loaded from TRADER_HOME/workflow-bundles):           median ${warm.toFixed(2)} s (${times.warm.map((t) => t.toFixed(2)).join(', ')})`);
    console.log(`  reproduce: npm run bench -- worker-start --starts ${STARTS}`);
    console.log(JSON.stringify({ cold_start_s_p50: Number(cold.toFixed(2)), warm_start_s_p50: Number(warm.toFixed(2)) }));
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    await cluster.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
