import { Worker, type NativeConnection } from '@temporalio/worker';
import type { Activities } from '../activities';

export interface TradingWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  activities: Activities;
}

/** The trading worker: every workflow in workflows/ and the activities built for this process. */
export async function createTradingWorker(opts: TradingWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue,
    workflowsPath: require.resolve('../workflows'),
    activities: opts.activities,
  });
}
