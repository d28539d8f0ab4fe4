import type { Client } from '@temporalio/client';
import type { AppConfig } from '../infra/config';
import { connectTemporalClient } from '../infra/temporal';

/**
 * A Temporal client for the CLI's one-shot commands: the running stack's server (TEMPORAL_ADDRESS,
 * or the local dev server `trader up` starts on TEMPORAL_PORT) with the configured TLS, API key and
 * payload encryption, closed when `fn` is done. A stack that is not running gets a message saying
 * what to start, not a gRPC stack trace.
 */
export async function withTemporalClient<T>(cfg: AppConfig, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await connectTemporalClient(cfg.temporal, { connectTimeout: '5 seconds' });
  try {
    return await fn(client);
  } finally {
    await client.connection.close();
  }
}
