import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * Other processes on this machine, as the embedded servers' crash recovery needs to see them: is
 * a recorded pid still alive, what program is it now (pids are reused), who is its parent (a
 * server whose parent died is an orphan of a killed trader), and stopping one. Linux reads
 * /proc; elsewhere `ps` answers.
 */

export interface ProcessInfo {
  pid: number;
  /** Undefined when the parent could not be read. */
  ppid?: number;
  /** Empty when the command line could not be read (another user's process on macOS, say). */
  argv: string[];
}

/** Undefined when no such process exists. */
export function describeProcess(pid: number): ProcessInfo | undefined {
  if (!isAlive(pid)) return undefined;
  const fromProc = readProc(pid);
  if (fromProc) return fromProc;
  try {
    const out = execFileSync('ps', ['-o', 'ppid=,args=', '-p', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const m = /^(\d+)\s+(.*)$/.exec(out);
    // ps joins the arguments with spaces: good enough to recognise a program, not to parse paths with spaces.
    if (m) return { pid, ppid: Number(m[1]), argv: m[2].split(/\s+/) };
  } catch {
    // ps missing or the process just ended
  }
  return isAlive(pid) ? { pid, argv: [] } : undefined;
}

/** Every process whose command line we can read. */
export function listProcesses(): ProcessInfo[] {
  let entries: string[] | undefined;
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    entries = undefined;
  }
  if (entries) return entries.flatMap((e) => readProc(Number(e)) ?? []);
  try {
    const out = execFileSync('ps', ['-A', '-o', 'pid=,ppid=,args='], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 16 * 1024 * 1024 });
    return out.split('\n').flatMap((line) => {
      const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
      return m ? [{ pid: Number(m[1]), ppid: Number(m[2]), argv: m[3].split(/\s+/) }] : [];
    });
  } catch {
    return [];
  }
}

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Sends `signal` and waits up to `graceMs` for the process to go; then SIGKILL and up to 5 s
 * more. Resolves how it ended; throws when even SIGKILL did not end it (not ours to kill).
 */
export async function stopProcess(pid: number, opts: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<'exited' | 'killed'> {
  const gone = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (!isAlive(pid) || isZombie(pid)) return true;
      await new Promise((r) => setTimeout(r, 50));
    }
    return !isAlive(pid) || isZombie(pid);
  };
  try {
    process.kill(pid, opts.signal ?? 'SIGTERM');
  } catch {
    return 'exited';
  }
  if (await gone(opts.graceMs ?? 10_000)) return 'exited';
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    return 'exited';
  }
  if (await gone(5_000)) return 'killed';
  throw new Error(`process ${pid} did not exit even after SIGKILL`);
}

function readProc(pid: number): ProcessInfo | undefined {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return { pid, ppid, argv };
  } catch {
    return undefined;
  }
}

/** A zombie has exited; only its parent's wait() is missing (an orphan's new parent reaps it soon). */
function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}
