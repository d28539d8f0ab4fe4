import { spawn } from 'node:child_process';
import path from 'node:path';
import { loadLine, machineLine, numberArg, parseArgs } from './helpers/trading-stack';
import { runBench } from './helpers/run';

/**
 * The symbols-per-worker method (bench/symbols-per-worker.ts: N symbol workflows in paper mode,
 * every 1m candle closing at the same moment, p99 of close -> decision done against a 10 s
 * deadline) on the Temporal dev server and on the production server as a two-node cluster on
 * PostgreSQL (testkit/temporal-cluster.ts; `bash scripts/setup-temporal-server.sh` builds it),
 * one after the other on the same machine, each in a process of its own, with the same steps.
 * Prints, for each: the largest N that passed, its p99, decisions per second (that close's
 * decisions over the time from the timer's due time to the last one done), and the worker's CPU
 * per decision; then every N both ran side by side, passed or not, and the ratio of decisions per
 * second at the first (the JSON line's `cluster_over_dev_decisions_per_s`).
 *
 *   npm run bench -- cluster [--steps 250,500,1000] [--workers 1] [--budget-min 12]
 *
 * --workers K: K Worker instances in the bench's process for both servers (see symbols-per-worker).
 * Everything shares the two cores: the cluster's two server processes and its PostgreSQL against
 * the dev server's one process and SQLite.
 */

const args = parseArgs(process.argv.slice(2), { steps: 'value', workers: 'value', 'budget-min': 'value' });
const STEPS = String(args.get('steps') ?? '250,500,1000');
const WORKERS = numberArg(args, 'workers', 1, (x) => Number.isInteger(x) && x >= 1 && x <= 8);
const BUDGET = numberArg(args, 'budget-min', 12, (x) => x > 0);

interface Figures {
  max_symbols: number;
  worker_cpu_ms_per_decision: number | null;
  decisions_per_s: number | null;
  p99_ms: number | null;
  temporal: string;
  workers: number;
  steps: Array<{ n: number; p99_ms: number | null; decisions_per_s: number; worker_cpu_ms_per_decision: number; pass: boolean }>;
}

function runOne(extra: string[]): Promise<Figures> {
  const argv = [path.join(__dirname, '..', 'bin', 'bench.js'), 'symbols-per-worker', '--steps', STEPS, '--workers', String(WORKERS), '--budget-min', String(BUDGET), ...extra];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      process.stdout.write(d.toString().replace(/^/gm, '    '));
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !last.startsWith('{')) return reject(new Error(`symbols-per-worker ${extra.join(' ')} exited ${code}`));
      resolve(JSON.parse(last) as Figures);
    });
  });
}

async function main(): Promise<void> {
  console.log(`cluster bench: the symbols-per-worker method on the dev server, then on two production server nodes on PostgreSQL; steps ${STEPS}, ${WORKERS} worker instance(s), ${BUDGET} min each`);
  console.log(`  machine: ${machineLine()}; load average before ${loadLine()}`);
  console.log('  dev server:');
  const dev = await runOne([]);
  console.log('  two-node cluster:');
  const cluster = await runOne(['--cluster']);
  const line = (name: string, f: Figures) =>
    `  ${name.padEnd(18)} max N ${String(f.max_symbols).padStart(5)}   p99 ${f.p99_ms === null ? '-' : `${(f.p99_ms / 1000).toFixed(2)} s`}   ${f.decisions_per_s ?? '-'} decisions/s   worker CPU ${f.worker_cpu_ms_per_decision ?? '-'} ms/decision`;
  console.log('');
  console.log(line('dev server', dev));
  console.log(line('two-node cluster', cluster));
  // Every step both ran, passed or not: the comparison at the same N.
  console.log('      N   dev: p99, decisions/s, worker CPU ms   cluster: p99, decisions/s, worker CPU ms   cluster / dev decisions/s');
  const same = dev.steps.filter((d) => cluster.steps.some((c) => c.n === d.n));
  const fmt = (x: Figures['steps'][number]) => `${x.p99_ms === null ? '-' : `${(x.p99_ms / 1000).toFixed(2)} s`}${x.pass ? '' : ' (over)'}, ${x.decisions_per_s}, ${x.worker_cpu_ms_per_decision}`;
  for (const d of same) {
    const c = cluster.steps.find((x) => x.n === d.n)!;
    console.log(`  ${String(d.n).padStart(5)}   ${fmt(d).padEnd(35)}   ${fmt(c).padEnd(39)}   ${(c.decisions_per_s / d.decisions_per_s).toFixed(2)}`);
  }
  const first = same[0];
  const firstCluster = first ? cluster.steps.find((x) => x.n === first.n) : undefined;
  const ratio = first && firstCluster ? firstCluster.decisions_per_s / first.decisions_per_s : null;
  console.log(`  cluster / dev server decisions per second at N=${first?.n ?? '-'}: ${ratio === null ? '-' : ratio.toFixed(2)}; load average after ${loadLine()}`);
  const argv = process.argv.slice(2).join(' ');
  console.log(`  reproduce: npm run bench -- cluster${argv ? ` ${argv}` : ''}`);
  console.log(
    JSON.stringify({
      dev_max_symbols: dev.max_symbols,
      dev_p99_ms: dev.p99_ms,
      dev_decisions_per_s: dev.decisions_per_s,
      cluster_max_symbols: cluster.max_symbols,
      cluster_p99_ms: cluster.p99_ms,
      cluster_decisions_per_s: cluster.decisions_per_s,
      cluster_over_dev_decisions_per_s: ratio === null ? null : Number(ratio.toFixed(2)),
      at_n: first?.n ?? null,
      dev_steps: dev.steps,
      cluster_steps: cluster.steps,
      workers: WORKERS,
    }),
  );
}

runBench(main);
