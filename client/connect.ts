import { Client, Connection } from '@temporalio/client';
import type { AppConfig } from '../infra/config';

/**
 * A Temporal client for the CLI's one-shot commands: the running stack's server (TEMPORAL_ADDRESS,
 * or the local dev server `trader up` starts on TEMPORAL_PORT), closed when `fn` is done. A stack
 * that is not running gets a message saying what to start, not a gRPC stack trace.
 */
export async function withTemporalClient<T>(cfg: AppConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  const address = cfg.temporal.address ?? `127.0.0.1:${cfg.temporal.port}`;
  let connection: Connection;
  try {
    connection = await Connection.connect({ address, connectTimeout: '5 seconds' });
  } catch (err) {
    throw new Error(`no Temporal server at ${address} (${(err as Error).message}); is \`trader up\` (npm start) running? Set TEMPORAL_ADDRESS for a cluster.`, { cause: err });
  }
  try {
    return await fn(new Client({ connection, namespace: cfg.temporal.namespace }));
  } finally {
    await connection.close();
  }
}
