import { spawn, execFile, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { stringify } from 'yaml';
import { findExecutable } from '../infra/temporal';
import { connect } from '../infra/postgres';
import { createLogger } from '../infra/logger';
import { freePort, portIsFree } from '../infra/ports';

/**
 * The production Temporal server (go.temporal.io/server, built by scripts/setup-temporal-server.sh)
 * as a cluster of `nodes` processes on this machine, each running every role (frontend, history,
 * matching, worker), finding each other through the membership table in PostgreSQL: persistence
 * and SQL visibility in a PostgreSQL of the caller's (the `temporal` and `temporal_visibility`
 * databases). The schema and the namespace are set up by the very scripts docker-compose.yml runs
 * (deploy/temporal/setup-schema.sh, deploy/temporal/create-namespace.sh), with the same server
 * version, so what users start is what the tests ran.
 *
 * Clients and workers talk to node 1's frontend (`address`); `crashAndRestart()` SIGKILLs a node
 * (node 1 by default: the one everyone is connected to) and starts it again on the same ports.
 */

const REPO = path.resolve(__dirname, '..');
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** History shards: fixed for the life of a cluster's database; 4 is the development configs' figure. */
const SHARDS = 4;
const silentLogger = createLogger({ level: 'silent', name: 'temporal-cluster' });

export interface TemporalServerTools {
  server: string;
  sqlTool: string;
  schemaDir: string;
  /** The Temporal CLI (create-namespace.sh runs `temporal operator ...`). */
  cli: string;
}

/** Where scripts/setup-temporal-server.sh put the server (TEMPORAL_SERVER_DIR overrides), or undefined. */
export function findTemporalServerTools(): TemporalServerTools | undefined {
  const dir = process.env.TEMPORAL_SERVER_DIR ?? path.join(REPO, '.tools', 'temporal-server');
  const server = path.join(dir, 'bin', 'temporal-server');
  const sqlTool = path.join(dir, 'bin', 'temporal-sql-tool');
  const schemaDir = path.join(dir, 'schema');
  const cli = findExecutable('temporal', process.env.TEMPORAL_CLI_PATH);
  if (!cli || !fs.existsSync(server) || !fs.existsSync(sqlTool) || !fs.existsSync(path.join(schemaDir, 'postgresql', 'v12'))) return undefined;
  return { server, sqlTool, schemaDir, cli };
}

interface PostgresEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
}

/** host, port, user and password of a postgres:// URL. */
function postgresEndpoint(url: string): PostgresEndpoint {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 5432), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

interface NodePorts {
  frontend: number;
  frontendHttp: number;
  frontendMembership: number;
  history: number;
  historyMembership: number;
  matching: number;
  matchingMembership: number;
  worker: number;
  workerMembership: number;
}

class ServerNode {
  child?: ChildProcess;
  private exitHook?: () => void;
  constructor(
    readonly index: number,
    readonly dir: string,
    readonly ports: NodePorts,
    private readonly tools: TemporalServerTools,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.ports.frontend}`;
  }

  get logFile(): string {
    return path.join(this.dir, 'server.log');
  }

  launch(): void {
    // A Go server outlives a parent that exits without stopping it (a crashed test or bench):
    // killed on this process's exit, however it exits short of SIGKILL.
    if (!this.exitHook) {
      this.exitHook = () => this.child?.kill('SIGKILL');
      process.once('exit', this.exitHook);
    }
    const out = fs.openSync(this.logFile, 'a');
    this.child = spawn(this.tools.server, ['--config-file', path.join(this.dir, 'config.yaml'), '--allow-no-auth', 'start'], { stdio: ['ignore', out, out], cwd: this.dir });
    fs.closeSync(out);
  }

  get alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async kill(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await Promise.race([gone, sleep(30_000)]);
    if (this.alive) {
      child.kill('SIGKILL');
      await gone;
    }
  }
}

export class TemporalClusterProcess {
  restarts = 0;
  private constructor(
    private readonly nodes: ServerNode[],
    private readonly postgresUrl: string,
  ) {}

  /** Node 1's frontend: what TEMPORAL_ADDRESS is set to. */
  get address(): string {
    return this.nodes[0].address;
  }

  /**
   * Sets up the schema in `postgresUrl`'s server (databases `temporal` and `temporal_visibility`,
   * created when missing), starts `nodes` server processes under `dir`, waits until every node's
   * frontend answers and the cluster has all of them as members, and registers the namespace.
   */
  static async start(dir: string, postgresUrl: string, o: { nodes?: number; namespace?: string } = {}): Promise<TemporalClusterProcess> {
    const tools = findTemporalServerTools();
    if (!tools) throw new Error('no Temporal server build: run `bash scripts/setup-temporal-server.sh` (it builds .tools/temporal-server from the Go module proxy), or set TEMPORAL_SERVER_DIR; the Temporal CLI too (TEMPORAL_CLI_PATH or npm run setup:temporal)');
    const pg = postgresEndpoint(postgresUrl);
    fs.mkdirSync(dir, { recursive: true });
    await setupSchema(tools, pg, path.join(dir, 'schema-setup.log'));
    const count = o.nodes ?? 2;
    const nodes: ServerNode[] = [];
    for (let i = 1; i <= count; i++) {
      const ports: NodePorts = {
        frontend: await freePort(),
        frontendHttp: await freePort(),
        frontendMembership: await membershipPort(),
        history: await freePort(),
        historyMembership: await membershipPort(),
        matching: await freePort(),
        matchingMembership: await membershipPort(),
        worker: await freePort(),
        workerMembership: await membershipPort(),
      };
      const nodeDir = path.join(dir, `node${i}`);
      fs.mkdirSync(nodeDir, { recursive: true });
      nodes.push(new ServerNode(i, nodeDir, ports, tools));
    }
    for (const n of nodes) fs.writeFileSync(path.join(n.dir, 'config.yaml'), stringify(nodeConfig(n, nodes[0], pg)));
    const cluster = new TemporalClusterProcess(nodes, postgresUrl);
    try {
      // One after the other: the first start of a fresh database writes the cluster's metadata,
      // and two nodes doing it at once make one of them exit.
      for (const n of nodes) {
        n.launch();
        await cluster.waitReady(180_000, [n]);
      }
      await createNamespace(tools, cluster.address, o.namespace ?? 'default', path.join(dir, 'namespace.log'));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /**
   * Every node of `nodes` answers on its frontend, and every live node's roles heartbeat in the
   * membership table under a session other than `staleHosts` (a restarted node's old rows keep
   * their recent heartbeats for a while: without this the wait would pass on them).
   */
  private async waitReady(ms: number, nodes: ServerNode[] = this.nodes, staleHosts: ReadonlySet<string> = new Set()): Promise<void> {
    const deadline = Date.now() + ms;
    for (const n of nodes) {
      for (;;) {
        if (!n.alive) throw new Error(`Temporal server node ${n.index} exited (${n.child?.exitCode ?? n.child?.signalCode}); see ${n.logFile}:\n${tail(n.logFile)}`);
        try {
          const c = await Connection.connect({ address: n.address, connectTimeout: 1000 });
          try {
            await c.workflowService.getSystemInfo({});
            break;
          } finally {
            await c.close();
          }
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`Temporal server node ${n.index} (${n.address}) was not ready within ${ms / 1000} s: ${(err as Error).message}; see ${n.logFile}:\n${tail(n.logFile)}`, { cause: err });
          await sleep(500);
        }
      }
    }
    await this.waitMembers(deadline, staleHosts);
  }

  /** Until every live node's roles heartbeat in the membership table (the ring each node builds from it), in sessions not in `staleHosts`. */
  private async waitMembers(deadline: number, staleHosts: ReadonlySet<string>): Promise<void> {
    const want = this.nodes.filter((n) => n.alive).flatMap(membershipPorts);
    await this.withTemporalDb(async (sql) => {
      let seen: number[] = [];
      for (;;) {
        const rows = await this.members(sql).catch(() => []);
        seen = rows.filter((r) => !staleHosts.has(r.host)).map((r) => r.port);
        if (want.every((p) => seen.includes(p))) return;
        if (Date.now() > deadline) throw new Error(`the Temporal cluster's membership lists ports ${seen.join(', ')}, not all of ${want.join(', ')}`);
        await sleep(500);
      }
    });
  }

  /** The membership rows heartbeating in the last 20 s: port and session (host id). */
  private async members(sql: ReturnType<typeof connect>): Promise<Array<{ port: number; host: string }>> {
    const rows = await sql<Array<{ rpc_port: number; host: string }>>`select rpc_port, encode(host_id, 'hex') as host from cluster_membership where last_heartbeat > now() - interval '20 seconds'`;
    return rows.map((r) => ({ port: Number(r.rpc_port), host: r.host }));
  }

  private async withTemporalDb<T>(fn: (sql: ReturnType<typeof connect>) => Promise<T>): Promise<T> {
    const u = new URL(this.postgresUrl);
    u.pathname = '/temporal';
    const sql = connect(u.toString(), silentLogger, { max: 1 });
    try {
      return await fn(sql);
    } finally {
      await sql.end({ timeout: 5 });
    }
  }

  /** SIGKILL node `index` (1-based; default 1, the frontend everyone uses), then start it again on the same ports. Returns the seconds it was down. */
  async crashAndRestart(downMs = 2000, index = 1): Promise<number> {
    const started = Date.now();
    const node = this.nodes[index - 1];
    const ports = membershipPorts(node);
    const stale = new Set((await this.withTemporalDb((sql) => this.members(sql))).filter((r) => ports.includes(r.port)).map((r) => r.host));
    await node.kill('SIGKILL');
    await sleep(downMs);
    node.launch();
    await this.waitReady(180_000, [node], stale);
    this.restarts++;
    return (Date.now() - started) / 1000;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill('SIGTERM')));
  }
}

function membershipPorts(n: ServerNode): number[] {
  return [n.ports.frontendMembership, n.ports.historyMembership, n.ports.matchingMembership, n.ports.workerMembership];
}

/** One node's configuration: every role on its own ports, persistence and visibility in PostgreSQL, membership through it. */
function nodeConfig(n: ServerNode, first: ServerNode, pg: PostgresEndpoint): Record<string, unknown> {
  const sql = (databaseName: string, maxConns: number) => ({
    sql: { pluginName: 'postgres12', databaseName, connectAddr: `${pg.host}:${pg.port}`, connectProtocol: 'tcp', user: pg.user, password: pg.password, maxConns, maxIdleConns: maxConns, maxConnLifetime: '1h' },
  });
  const role = (grpcPort: number, membershipPort: number, extra: Record<string, unknown> = {}) => ({ rpc: { grpcPort, membershipPort, bindOnLocalHost: true, ...extra } });
  return {
    log: { stdout: true, level: 'warn', format: 'json' },
    persistence: {
      defaultStore: 'postgres-default',
      visibilityStore: 'postgres-visibility',
      numHistoryShards: SHARDS,
      // Per role and node: 4 roles x 2 nodes x (4 + 2) stays well under PostgreSQL's 100 connections.
      datastores: { 'postgres-default': sql('temporal', 4), 'postgres-visibility': sql('temporal_visibility', 2) },
    },
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' } },
    services: {
      frontend: role(n.ports.frontend, n.ports.frontendMembership, { httpPort: n.ports.frontendHttp }),
      history: role(n.ports.history, n.ports.historyMembership),
      matching: role(n.ports.matching, n.ports.matchingMembership),
      worker: role(n.ports.worker, n.ports.workerMembership),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: { active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: first.address } },
    },
    dcRedirectionPolicy: { policy: 'noop' },
  };
}

/** deploy/temporal/setup-schema.sh, as the compose file's temporal-schema service runs it, with this machine's tool and schema files. */
async function setupSchema(tools: TemporalServerTools, pg: PostgresEndpoint, logFile: string): Promise<void> {
  const env = {
    ...process.env,
    PATH: `${path.dirname(tools.sqlTool)}${path.delimiter}${process.env.PATH ?? ''}`,
    POSTGRES_SEEDS: pg.host,
    DB_PORT: String(pg.port),
    POSTGRES_USER: pg.user,
    SQL_PASSWORD: pg.password,
    TEMPORAL_SCHEMA_DIR: tools.schemaDir,
  };
  try {
    const { stdout, stderr } = await run('sh', [path.join(REPO, 'deploy', 'temporal', 'setup-schema.sh')], { env, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
    fs.writeFileSync(logFile, stdout + stderr);
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    fs.writeFileSync(logFile, `${e.stdout ?? ''}${e.stderr ?? ''}`);
    throw new Error(`Temporal schema setup failed: ${e.message}\n${(e.stderr ?? '').slice(-3000)}`, { cause: err });
  }
}

/** deploy/temporal/create-namespace.sh, as the compose file's temporal-namespace service runs it. */
async function createNamespace(tools: TemporalServerTools, address: string, namespace: string, logFile: string): Promise<void> {
  const env = { ...process.env, PATH: `${path.dirname(tools.cli)}${path.delimiter}${process.env.PATH ?? ''}`, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace };
  try {
    const { stdout, stderr } = await run('sh', [path.join(REPO, 'deploy', 'temporal', 'create-namespace.sh')], { env, timeout: 120_000 });
    fs.writeFileSync(logFile, stdout + stderr);
  } catch (err) {
    throw new Error(`registering namespace ${namespace} failed: ${(err as Error).message}`, { cause: err });
  }
  // A namespace is seen by every frontend after their namespace caches refresh (seconds).
  const deadline = Date.now() + 60_000;
  for (;;) {
    const c = await Connection.connect({ address, connectTimeout: 2000 });
    try {
      // The operator API reads the namespace registry on its own: wait for it too (a search
      // attribute registered before it answers is refused with "namespace not found").
      await c.workflowService.describeNamespace({ namespace });
      await c.operatorService.listSearchAttributes({ namespace });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`namespace ${namespace} not visible on ${address}: ${(err as Error).message}`, { cause: err });
    } finally {
      await c.close();
    }
    await sleep(1000);
  }
}

/**
 * A free port below 32768 for a membership address: the SQL cluster_membership table keeps the
 * port in a smallint, and the kernel's ephemeral ports (what freePort gets) are above it.
 */
async function membershipPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (await portIsFree(port)) return port;
  }
  throw new Error('no free port between 20000 and 32000 for a Temporal membership address');
}

function tail(file: string, chars = 3000): string {
  try {
    const s = fs.readFileSync(file, 'utf8');
    return s.slice(-chars);
  } catch {
    return '(no log)';
  }
}
