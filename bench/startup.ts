import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { loadLine, machineLine, numberArg, parseArgs } from './helpers/trading-stack';

/**
 * How long `trader --help` takes, spawn to exit: what every `trader` command pays before it does
 * anything (Node's start, bin/trader.js choosing the build or the sources, the command table).
 *
 *   npm run build && npm run bench -- startup [--runs 11] [--from dist|src] [--npx]
 *
 * Runs `node bin/trader.js --help` and `node bin/trader.js backtest --help` (a command's help:
 * still the table only) --runs times each, from what bin/trader.js picks (dist/ when the build is
 * fresh, see bin/build-state.js) or what --from forces. --npx also times `npx trader --help` and, as its
 * floor, `npx --version`: npm's own start, which no change here touches.
 */

const args = parseArgs(process.argv.slice(2), { runs: 'value', from: 'value', npx: 'flag' });
const RUNS = numberArg(args, 'runs', 11, (x) => Number.isInteger(x) && x >= 1);
const fromArg = args.get('from');
if (fromArg !== undefined && fromArg !== 'dist' && fromArg !== 'src') throw new Error(`--from dist or --from src, got ${String(fromArg)}`);
const from: 'dist' | 'src' | undefined = fromArg;
const REPO = path.resolve(__dirname, '..');
const TRADER = path.join(REPO, 'bin', 'trader.js');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/** Wall-clock ms of each run of `cmd args`, which must exit 0. */
function time(cmd: string, argv: string[], env: NodeJS.ProcessEnv): number[] {
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, argv, { cwd: REPO, env, encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited ${r.status}: ${r.stderr}`);
    out.push(ms);
  }
  return out;
}

function main(): void {
  const env: NodeJS.ProcessEnv = { ...process.env, ...(from ? { TRADER_FROM: from } : {}) };
  delete env.NODE_OPTIONS; // bin/bench.js's process runs under tsx; the CLI must start as a user's does
  const probe = spawnSync(process.execPath, [TRADER, '--help'], { cwd: REPO, env: { ...env, TRADER_STARTUP_DEBUG: '1' }, encoding: 'utf8' });
  const chose = /^trader: from (dist\/|the TypeScript sources)[^:]*: (.*)$/m.exec(probe.stderr);
  const used = chose?.[1] === 'dist/' ? 'dist' : 'src';
  const help = time(process.execPath, [TRADER, '--help'], env);
  const cmdHelp = time(process.execPath, [TRADER, 'backtest', '--help'], env);
  const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
  console.log(`startup bench: spawn to exit, ${RUNS} runs each, from ${used} (${chose?.[2] ?? 'unknown'})`);
  console.log(`  machine: ${machineLine()}; load ${loadLine()}`);
  console.log(`  node bin/trader.js --help:          median ${median(help).toFixed(0)} ms (${fmt(help)})`);
  console.log(`  node bin/trader.js backtest --help: median ${median(cmdHelp).toFixed(0)} ms (${fmt(cmdHelp)})`);
  const result: Record<string, number | string> = { help_ms_p50: Number(median(help).toFixed(1)), command_help_ms_p50: Number(median(cmdHelp).toFixed(1)), from: used };
  if (args.get('npx')) {
    // As from a user's shell, not with the variables `npm run bench` sets.
    const shell = Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('npm_')));
    const npx = time('npx', ['trader', '--help'], shell);
    const floor = time('npx', ['--version'], shell);
    console.log(`  npx trader --help:                  median ${median(npx).toFixed(0)} ms (${fmt(npx)})`);
    console.log(`  npx --version (npm's own start):    median ${median(floor).toFixed(0)} ms (${fmt(floor)})`);
    result.npx_help_ms_p50 = Number(median(npx).toFixed(1));
    result.npx_version_ms_p50 = Number(median(floor).toFixed(1));
  }
  console.log(`  reproduce: npm run build && npm run bench -- startup --runs ${RUNS}${from ? ` --from ${from}` : ''}${args.get('npx') ? ' --npx' : ''}`);
  console.log(JSON.stringify(result));
}

main();
