import { freePort } from './db';

/**
 * The environment of a `trader` process run by a test on its own embedded stack: its own
 * TRADER_HOME, free ports for the Temporal dev server, its UI and PostgreSQL, warnings only, and
 * nothing of the developer's own setup that would point it elsewhere (TEMPORAL_ADDRESS,
 * DATABASE_URL). `extra` adds or overrides variables.
 */
export async function embeddedStackEnv(home: string, extra: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    TRADER_HOME: home,
    TEMPORAL_PORT: String(await freePort()),
    TEMPORAL_UI_PORT: String(await freePort()),
    POSTGRES_PORT: String(await freePort()),
    LOG_LEVEL: 'warn',
    // Tests read the child's log lines as JSON, whatever the developer's shell exports.
    LOG_FORMAT: 'json',
    ...extra,
  };
  delete env.TEMPORAL_ADDRESS;
  delete env.DATABASE_URL;
  return env;
}
