import fs from 'node:fs';
import type { Client } from '@temporalio/client';
import type { AppConfig } from '../infra/config';
import { devServerDbFile, temporalHome } from '../infra/dev-server-lifecycle';
import { createLogger } from '../infra/logger';
import { freePort } from '../infra/ports';
import { connectTemporalClient, openTemporal, TemporalConnectError } from '../infra/temporal';

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

/**
 * withTemporalClient for commands that read what the workflows left behind (`trader history
 * export`): when no TEMPORAL_ADDRESS is set and the local dev server is not running (`trader up`
 * has exited), the histories are still in TRADER_HOME's SQLite file, so a temporary dev server is
 * started on that file (free ports, stopped afterwards) instead of asking the user to serve it by
 * hand. A cluster that does not answer is still an error.
 */
export async function withTemporalHistoryClient<T>(cfg: AppConfig, fn: (client: Client) => Promise<T>, say: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Promise<T> {
  try {
    return await withTemporalClient(cfg, fn);
  } catch (err) {
    const file = devServerDbFile(temporalHome(cfg.home));
    if (cfg.temporal.address || !(err instanceof TemporalConnectError) || !fs.existsSync(file)) throw err;
    say(`no Temporal server on 127.0.0.1:${cfg.temporal.port} (\`trader up\` is not running): reading ${file} through a temporary dev server`);
  }
  const stack = await openTemporal({ ...cfg.temporal, address: undefined, home: temporalHome(cfg.home), port: await freePort(), uiPort: await freePort(), log: createLogger({ level: 'warn' }) });
  try {
    return await fn(stack.client);
  } finally {
    await stack.close();
  }
}

