import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InfluxDB } from '@influxdata/influxdb-client';
import { freePort } from './db';

/**
 * A real InfluxDB for tests: OSS 1.8.3 (`influxd`, built from the Go module proxy by
 * scripts/setup-influxdb.sh into .tools/influxdb/bin) on free ports, with its meta, data and WAL
 * directories in a temporary folder. With `flux-enabled` it accepts the v2 client's writes
 * (`/api/v2/write?bucket=DB/RP&org=-`, the token is ignored without auth) and answers Flux on
 * `/api/v2/query`: the same calls the bot and Grafana make to InfluxDB 2. `stop()` and `start()`
 * keep the data, so a test can take the server away mid-run and read what it kept afterwards.
 */

const REPO = path.resolve(__dirname, '..');
const TOOLS_BINARY = path.join(REPO, '.tools', 'influxdb', 'bin', 'influxd');

/** The influxd binary: INFLUXD_PATH, PATH, then .tools (built on first use when Go is installed). */
export function influxdPath(): string {
  const explicit = process.env.INFLUXD_PATH;
  if (explicit) {
    if (!fs.existsSync(explicit)) throw new Error(`INFLUXD_PATH=${explicit}: no such file`);
    return explicit;
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const p = path.join(dir, 'influxd');
    if (fs.existsSync(p) && versionOf(p).startsWith('InfluxDB v1.8')) return p;
  }
  if (!fs.existsSync(TOOLS_BINARY)) {
    try {
      execFileSync('bash', [path.join(REPO, 'scripts', 'setup-influxdb.sh')], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 15 * 60_000 });
    } catch {
      throw new Error('the metrics tests need InfluxDB 1.8 (influxd): run `npm run setup:influxdb` (needs Go) or set INFLUXD_PATH');
    }
  }
  return TOOLS_BINARY;
}

function versionOf(binary: string): string {
  try {
    return execFileSync(binary, ['version'], { encoding: 'utf8', timeout: 10_000 });
  } catch {
    return '';
  }
}

export interface InfluxTestServer {
  url: string;
  database: string;
  /** What the bot's config takes (INFLUXDB_*): the bucket is the database (its default retention policy). */
  env: { INFLUXDB_URL: string; INFLUXDB_TOKEN: string; INFLUXDB_ORG: string; INFLUXDB_BUCKET: string };
  target: { url: string; token: string; org: string; bucket: string };
  /** Another database (bucket) on the same server. */
  createDatabase(name: string): Promise<void>;
  /** A Flux query's rows (the v2 client's query API, as Grafana's Flux data source sends it). */
  flux(query: string): Promise<Record<string, unknown>[]>;
  running(): boolean;
  /** Stops the server (SIGTERM), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

/** Data folders of test processes that died before they could remove theirs. */
function removeLeftovers(): void {
  for (const entry of fs.readdirSync(os.tmpdir())) {
    const m = /^dt-influx-(\d+)-[0-9a-f]+$/.exec(entry);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
    }
  }
}

export async function startInfluxd(opts: { database?: string } = {}): Promise<InfluxTestServer> {
  const binary = influxdPath();
  removeLeftovers();
  const root = path.join(os.tmpdir(), `dt-influx-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  fs.mkdirSync(root, { recursive: true });
  const httpPort = await freePort();
  const rpcPort = await freePort();
  const database = opts.database ?? 'trading_bot';
  const config = path.join(root, 'influxd.conf');
  fs.writeFileSync(
    config,
    [
      'reporting-disabled = true',
      `bind-address = "127.0.0.1:${rpcPort}"`,
      '[meta]',
      `  dir = "${path.join(root, 'meta')}"`,
      '  logging-enabled = false',
      '[data]',
      `  dir = "${path.join(root, 'data')}"`,
      `  wal-dir = "${path.join(root, 'wal')}"`,
      '  query-log-enabled = false',
      '[monitor]',
      '  store-enabled = false',
      '[http]',
      `  bind-address = "127.0.0.1:${httpPort}"`,
      '  log-enabled = false',
      '  flux-enabled = true',
      '[logging]',
      '  level = "error"',
      '',
    ].join('\n'),
  );
  const url = `http://127.0.0.1:${httpPort}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const logFile = path.join(root, 'influxd.log');

  const start = async (): Promise<void> => {
    if (child) return;
    const out = fs.openSync(logFile, 'a');
    const c = spawn(binary, ['-config', config], { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    child = c;
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    void exited.then(() => {
      if (child === c) child = undefined;
    });
    // Start-up takes a few seconds (longer on a loaded machine).
    const deadline = Date.now() + 90_000;
    for (;;) {
      if (!child) throw new Error(`influxd exited during start-up:\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
      try {
        const r = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(1_000) });
        if (r.status === 204) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error(`influxd did not answer /ping within 90 s:\n${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    await createDatabase(database);
  };
  const createDatabase = async (name: string): Promise<void> => {
    const created = await fetch(`${url}/query`, { method: 'POST', body: new URLSearchParams({ q: `CREATE DATABASE "${name}"` }) });
    if (!created.ok) throw new Error(`CREATE DATABASE failed: ${created.status} ${await created.text()}`);
  };

  const stop = async (): Promise<void> => {
    const c = child;
    if (!c) return;
    c.kill('SIGTERM');
    const killer = setTimeout(() => c.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(killer);
  };

  // A test process that dies must not leave its server running.
  process.once('exit', () => child?.kill('SIGKILL'));
  await start();
  const target = { url, token: 'user:pass', org: '-', bucket: database };
  const queryApi = new InfluxDB({ url, token: target.token, timeout: 60_000 }).getQueryApi(target.org);
  return {
    url,
    database,
    target,
    env: { INFLUXDB_URL: url, INFLUXDB_TOKEN: target.token, INFLUXDB_ORG: target.org, INFLUXDB_BUCKET: database },
    createDatabase,
    flux: (query) => queryApi.collectRows<Record<string, unknown>>(query),
    running: () => child !== undefined,
    stop,
    start,
    async close() {
      await stop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
