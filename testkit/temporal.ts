import os from 'node:os';
import path from 'node:path';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Worker, bundleWorkflowCode, type WorkerOptions } from '@temporalio/worker';
import { ENCRYPTED_FAILURE_CONVERTER_PATH, executableFor, installTemporalRuntime } from '../infra/temporal';
import { createLogger } from '../infra/logger';
import { SEARCH_ATTRIBUTES } from '../infra/temporal';
import { devServerExtraArgs } from '../infra/dev-server-lifecycle';

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
