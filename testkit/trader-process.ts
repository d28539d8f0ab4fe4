import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from './db';

/**
 * The environment of a `trader` process run by a test on its own embedded stack: its own
 * TRADER_HOME, free ports for the Temporal dev server, its UI and PostgreSQL, warnings only, and
 * nothing of the developer's own setup that would point it elsewhere (TEMPORAL_ADDRESS,
 * DATABASE_URL). `extra` adds or overrides variables.
 */
export async function embeddedStackEnv(home: string, extra: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TRADER_HOME: home,
    TEMPORAL_PORT: String(await freePort()),
    TEMPORAL_UI_PORT: String(await freePort()),
    POSTGRES_PORT: String(await freePort()),
    LOG_LEVEL: 'warn',
    // Tests read the child's log lines as JSON, whatever the developer's shell exports.
    LOG_FORMAT: 'json',
    ...extra,
  };
  delete env.TEMPORAL_ADDRESS;
  delete env.DATABASE_URL;
  return env;
}

/** A `trader` command run as a user runs it (bin/trader.js in a child process), its output collected. */
export interface TraderRun {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

const TRADER = path.resolve(__dirname, '..', 'bin', 'trader.js');

/** `trader ARGS` with exactly this environment (embeddedStackEnv makes one), in its TRADER_HOME; stdout and stderr as one text. */
export function traderProcess(args: string[], env: NodeJS.ProcessEnv): TraderRun {
  let out = '';
  const child = spawn(process.execPath, [TRADER, ...args], { cwd: env.TRADER_HOME, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** The first match of `re` in the run's output within `ms`; an error quoting the output otherwise (or when the process ended first). */
export async function waitForOutput(run: TraderRun, re: RegExp, ms: number): Promise<RegExpMatchArray> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const m = run.output().match(re);
    if (m) return m;
    if (run.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`did not see ${re} in time; output:\n${run.output()}`);
}
