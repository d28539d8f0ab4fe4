import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Worker, bundleWorkflowCode, type WorkerOptions } from '@temporalio/worker';
import { ENCRYPTED_FAILURE_CONVERTER_PATH, executableFor, installTemporalRuntime } from '../infra/temporal';
import { createLogger } from '../infra/logger';
import { SEARCH_ATTRIBUTES } from '../infra/temporal';
import { devServerExtraArgs } from '../infra/dev-server-lifecycle';
import { IN_MOCHA_WORKER } from './mocha-process';

/**
 * Temporal servers for tests, from installed binaries (TEMPORAL_TEST_SERVER_PATH /
 * TEMPORAL_CLI_PATH, PATH, or .tools/py/bin, as .ci/run installs them); without one the SDK
 * downloads its own, which needs the internet.
 */
const downloadHome = path.join(os.tmpdir(), 'durable-trader-temporal');

function quietRuntime(): void {
  installTemporalRuntime(createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'warn', name: 'test' }));
}

export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: executableFor('temporal-test-server', process.env.TEMPORAL_TEST_SERVER_PATH, downloadHome) },
  });
}

/** `dynamicConfig`: the server's dynamic config values (KEY=JSON), e.g. a shorter long poll. */
export async function devServerEnv(opts: { dbFilename?: string; port?: number; dynamicConfig?: string[] } = {}): Promise<TestWorkflowEnvironment> {
  quietRuntime();
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: executableFor('temporal', process.env.TEMPORAL_CLI_PATH, downloadHome),
      ip: '127.0.0.1',
      port: opts.port,
      dbFilename: opts.dbFilename,
      searchAttributes: SEARCH_ATTRIBUTES,
      log: { format: 'json', level: 'error' },
      extraArgs: devServerExtraArgs({ dynamicConfig: opts.dynamicConfig }),
    },
  });
}

/**
 * Integration tests share one dev server per test process (one per mocha worker in parallel
 * mode, one for a serial run), started on first use. Each caller gets a namespace of its own,
 * created with the server (`--namespace`, so it is usable at once, search attributes included):
 * workflow ids a file reuses across its tests cannot collide with another file's, and a
 * file's workflows left running cannot be picked up by another file's workers.
 */
const SHARED_NAMESPACES = 40;
let sharedServer: Promise<TestWorkflowEnvironment> | undefined;
let namespacesTaken = 0;

function sharedDevServer(): Promise<TestWorkflowEnvironment> {
  sharedServer ??= (async () => {
    quietRuntime();
    const env = await TestWorkflowEnvironment.createLocal({
      server: {
        executable: executableFor('temporal', process.env.TEMPORAL_CLI_PATH, downloadHome),
        ip: '127.0.0.1',
        searchAttributes: SEARCH_ATTRIBUTES,
        log: { format: 'json', level: 'error' },
        extraArgs: [...devServerExtraArgs(), ...Array.from({ length: SHARED_NAMESPACES }, (_, i) => ['--namespace', sharedNamespace(i)]).flat()],
      },
    });
    stopWithThisProcess(env.address);
    return env;
  })();
  return sharedServer;
}

/**
 * The SDK does not stop its ephemeral server when a mocha worker ends (workerpool ends it from
 * outside): the server was left running after every parallel run. So the server's process is
 * found among ours (Linux /proc: the dev server's command line holds its port) and killed when
 * this process exits, is told to terminate, or loses its parent.
 */
function stopWithThisProcess(address: string): void {
  const port = address.split(':').pop()!;
  const pid = ownChildWith(['start-dev', port]);
  if (pid === undefined) return;
  const kill = () => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  process.once('exit', kill);
  process.once('disconnect', kill);
  if (IN_MOCHA_WORKER) {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        kill();
        process.exit(1);
      });
    }
  }
}

/** A child process of this one whose command line has every one of `words`, on Linux; else undefined. */
function ownChildWith(words: string[]): number | undefined {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return undefined;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (words.every((w) => argv.includes(w))) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  return undefined;
}

const sharedNamespace = (i: number): string => `it-${i + 1}`;

/**
 * A client and worker connection to this process's shared dev server, on a fresh namespace.
 * Its teardown closes the connections only; the server lives until the process ends.
 */
export async function sharedDevServerEnv(): Promise<TestWorkflowEnvironment> {
  const server = await sharedDevServer();
  if (namespacesTaken >= SHARED_NAMESPACES) {
    throw new Error(`this test process used all ${SHARED_NAMESPACES} namespaces of its shared dev server; raise SHARED_NAMESPACES in testkit/temporal.ts`);
  }
  return TestWorkflowEnvironment.createFromExistingServer({ address: server.address, namespace: sharedNamespace(namespacesTaken++) });
}

async function stopSharedDevServer(): Promise<void> {
  const server = await sharedServer?.catch(() => undefined);
  sharedServer = undefined;
  namespacesTaken = 0;
  await server?.teardown();
}

// A root-level hook (this module is loaded while mocha collects files): in a serial run it runs
// once, after every suite.
if (typeof after === 'function' && !IN_MOCHA_WORKER) after(stopSharedDevServer);

let bundle: ReturnType<typeof bundleWorkflowCode> | undefined;
/**
 * Bundling takes seconds, so a test process bundles workflows/ once. Bundling in the first
 * test also means a workflow file that imports a Node module fails the suite, not production.
 */
export function workflowBundle(): ReturnType<typeof bundleWorkflowCode> {
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: new DefaultLogger('WARN') });
  return bundle;
}

let encryptedBundle: ReturnType<typeof bundleWorkflowCode> | undefined;
/** The bundle of a worker with payload encryption: its failure converter is bundled in (infra/failure-converter.ts). */
export function encryptedWorkflowBundle(): ReturnType<typeof bundleWorkflowCode> {
  encryptedBundle ??= bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    failureConverterPath: ENCRYPTED_FAILURE_CONVERTER_PATH,
    logger: new DefaultLogger('WARN'),
  });
  return encryptedBundle;
}

let queueSeq = 0;
/** A fresh task queue per test, so workers of different tests never steal each other's tasks. */
export function freshTaskQueue(name = 'test'): string {
  return `${name}-${process.pid}-${++queueSeq}-${Date.now()}`;
}

/** Runs `fn` while a worker (all workflows in workflows/) polls a fresh task queue. */
export async function withWorker<T>(
  env: TestWorkflowEnvironment,
  opts: Omit<WorkerOptions, 'connection' | 'taskQueue' | 'workflowsPath' | 'workflowBundle' | 'namespace'> & { taskQueue?: string },
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const taskQueue = opts.taskQueue ?? freshTaskQueue();
  const worker = await Worker.create({
    ...opts,
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    workflowBundle: await workflowBundle(),
  });
  return worker.runUntil(fn(taskQueue));
}
