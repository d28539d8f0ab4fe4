import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describeProcess, isAlive, listProcesses } from '../../infra/processes';
import { syntheticSymbols, writeSyntheticCandleFiles } from '../../testkit/candles';
import { tradeKey as key, type TradeRow } from '../../testkit/trading';
import { embeddedStackEnv } from '../../testkit/trader-process';

/**
 * Restart after a crash, as an operator meets it: `trader up --replay ... --exit-when-done` is
 * killed with SIGKILL mid-run (what the OOM killer does), which leaves its Temporal dev server and
 * PostgreSQL running as orphans; the SAME command run again, with no clean-up in between, must
 * replace them and give exactly the trades of `trader backtest` on the same candles. And a start
 * that cannot succeed (the port taken by another program, the TRADER_HOME in use by a running
 * trader) must say so and exit within seconds.
 */

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '..', '..');
const TRADER = path.join(REPO, 'bin', 'trader.js');


interface Up {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

describe('restart after a crash (trader up killed with SIGKILL, then run again)', function () {
  this.timeout(900_000); // `trader up --replay` killed with SIGKILL mid-run, then run again to the end
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let files: string[];
  const started: ChildProcess[] = [];

  const up = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Up => {
    let out = '';
    const child = spawn(process.execPath, [TRADER, 'up', ...args], { cwd: dir, env: { ...env, ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    started.push(child);
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() })));
    return { child, output: () => out, exited };
  };
  const trader = (args: string[]) => run(process.execPath, [TRADER, ...args], { env, cwd: dir, maxBuffer: 64 * 1024 * 1024 });
  const waitFor = async (what: string, probe: () => Promise<boolean> | boolean, ms: number, u?: Up): Promise<void> => {
    const deadline = Date.now() + ms;
    for (;;) {
      if (await Promise.resolve(probe()).catch(() => false)) return;
      if (u && u.child.exitCode !== null) throw new Error(`trader up exited (${u.child.exitCode}) while waiting for ${what}:\n${u.output()}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${u ? `:\n${u.output()}` : ''}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  /** Processes started for this TRADER_HOME: its dev server (by SQLite file) and PostgreSQL (by data directory). */
  const servers = () =>
    listProcesses().filter((p) => {
      const args = p.argv.join(' ');
      return args.includes(path.join(dir, 'home', 'temporal', 'temporal.sqlite')) || (path.basename(p.argv[0] ?? '') === 'postgres' && args.includes(path.join(dir, 'home', 'postgres')));
    });

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-crash-'));
    fs.chmodSync(dir, 0o755); // the embedded PostgreSQL runs as `postgres` when we are root
    // Two symbols of generated 1m candles: the rules strategy trades on them from the first few
    // hundred candles. Long enough that the first run is still replaying when it is killed: with
    // 1,200 candles a quick machine finished the replay while the second trader was being refused.
    files = writeSyntheticCandleFiles(path.join(dir, 'candles'), syntheticSymbols(2), { timeframe: '1m', count: 3000 });
    env = await embeddedStackEnv(path.join(dir, 'home'), {
      STRATEGY: 'rules',
    });
    delete env.TELEGRAM_BOT_TOKEN;
  });
  after(async () => {
    for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    // Whatever a failed test left: stop this home's servers so they do not outlive the run.
    for (const p of servers()) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a second trader on a TRADER_HOME in use, then, killed with SIGKILL mid-replay, the same command again gives exactly the backtest trades', async () => {
    const cmd = ['--replay', ...files, '--strategy', 'rules', '--exit-when-done'];
    const first = up(cmd);
    await waitFor('the replay to start', () => first.output().includes('Replaying 2 file(s)'), 300_000, first);
    await waitFor(
      'some decisions of the first run',
      async () => {
        const status = JSON.parse((await trader(['status', '--json'])).stdout) as { decisions: number }[];
        return status.length === 2 && status.every((s) => s.decisions >= 100);
      },
      300_000,
      first,
    );

    // A second trader on the same TRADER_HOME is refused before it touches the first one's servers.
    const second = up(cmd);
    const refused = await second.exited;
    assert.equal(refused.code, 1, second.output());
    assert.match(second.output(), /belongs to a running process \(pid \d+/);
    assert.equal(first.child.exitCode, null, 'the first trader kept running');

    const status = JSON.parse((await trader(['status', '--json'])).stdout) as { symbol: string; decisions: number; done: boolean }[];
    assert.ok(status.every((s) => !s.done), `killed mid-run, not after the end: ${JSON.stringify(status)}`);
    const orphans = servers();
    assert.ok(orphans.some((p) => p.argv.includes('start-dev')), 'the dev server is running');
    first.child.kill('SIGKILL');
    await first.exited;
    // The children outlive a SIGKILLed parent: that is what the next start must cope with.
    await waitFor('the servers to be re-parented', () => orphans.every((p) => describeProcess(p.pid)?.ppid !== first.child.pid), 10_000);
    assert.ok(orphans.every((p) => isAlive(p.pid)), 'orphans are left running');

    // The same command again, nothing cleaned up by hand.
    const again = up(cmd);
    const done = await again.exited;
    assert.equal(done.code, 0, again.output());
    assert.match(again.output(), /found an orphaned Temporal dev server/);
    assert.match(again.output(), /Replay finished/);
    for (const p of orphans) assert.ok(!isAlive(p.pid) || describeProcess(p.pid)?.argv.join(' ') !== p.argv.join(' '), `orphan ${p.pid} (${p.argv[0]}) was stopped`);
    assert.deepEqual(servers(), [], 'nothing of this TRADER_HOME runs after a clean exit');

    const ledger = JSON.parse((await trader(['trades', '--json'])).stdout) as TradeRow[];
    const out = path.join(dir, 'backtest.json');
    await trader(['backtest', '--data', ...files, '--strategy', 'rules', '--json', out]);
    const backtest = (JSON.parse(fs.readFileSync(out, 'utf8')) as { trades: TradeRow[] }).trades;
    assert.ok(backtest.length >= 10, `the backtest trades on this data (${backtest.length} trades)`);
    assert.deepEqual(ledger.map(key).sort(), backtest.map(key).sort(), 'the restarted replay and the backtest disagree');
  });

  it('exits within seconds when the Temporal port is taken by another program', async () => {
    const blocker = net.createServer();
    const port = await new Promise<number>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as net.AddressInfo).port)));
    try {
      const u = up(['--replay', ...files, '--exit-when-done'], { TEMPORAL_PORT: String(port) });
      let errorAt = 0;
      u.child.stderr!.on('data', (d: Buffer) => {
        if (!errorAt && d.toString().includes('is already in use')) errorAt = Date.now();
      });
      const exit = await Promise.race([u.exited, new Promise<null>((r) => setTimeout(() => r(null), 240_000))]);
      assert.ok(exit, `still running 4 minutes later:\n${u.output()}`);
      assert.equal(exit.code, 1, u.output());
      assert.match(u.output(), new RegExp(`port ${port} \\(TEMPORAL_PORT\\) is already in use`));
      assert.ok(errorAt > 0 && exit.at - errorAt < 5_000, `exited ${exit.at - errorAt} ms after the error`);
      assert.deepEqual(servers(), [], 'nothing left running');
    } finally {
      blocker.close();
    }
  });
});
