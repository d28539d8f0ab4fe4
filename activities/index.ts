import type { Sql } from 'postgres';
import { Context } from '@temporalio/activity';
import type { Logger } from '../infra/logger';
import { createAlertActivities, createAlertDispatcher, type AlertDispatcher } from './alerts';
import { createTradingActivities, TRADING_ACTIVITY_NAMES, type TradingDeps } from './trading';
import type { AlertActivities, LedgerCheck, SystemCheckActivities, TradingActivities } from '../lib/contracts/activities';

export interface ActivityDeps {
  sql: Sql;
  log: Logger;
  /** The trading activities' dependencies; without them only the system check is registered. */
  trading?: TradingDeps;
  /** Where sendAlert puts alerts (logged only without Telegram); default: log-only. */
  alerts?: AlertDispatcher;
}

/**
 * Every side effect the workflows may cause, built from explicit dependencies so tests hand
 * in a real database of their own. Workflows type their proxies from the interfaces in
 * lib/contracts/activities.ts, which this factory is declared to implement.
 */
export function createActivities(deps: ActivityDeps): Activities {
  const { sql } = deps;
  // A worker without trading deps answers a trading activity with a clear failure rather than
  // "activity not registered".
  const trading: TradingActivities = deps.trading ? createTradingActivities(deps.trading) : missingTrading();
  return {
    ...trading,
    ...createAlertActivities(deps.alerts ?? createAlertDispatcher({}, deps.log)),
    /** Writes one audit row and reads it back: the ledger is reachable and writable. */
    async checkLedger(input: { event: string; workflowId: string }): Promise<LedgerCheck> {
      const info = Context.current().info;
      const log = deps.log.child({ workflowId: info.workflowExecution?.workflowId, runId: info.workflowExecution?.runId, activity: info.activityType });
      const [row] = await sql<{ id: string }[]>`
        insert into audit_log (event, actor, payload)
        values (${input.event}, ${'workflow:' + input.workflowId}, ${sql.json({ attempt: info.attempt })})
        returning id::text as id`;
      const [v] = await sql<{ version: string }[]>`select current_setting('server_version') as version`;
      const [m] = await sql<{ n: number }[]>`select count(*)::int as n from schema_migrations`;
      log.debug({ auditId: row.id }, 'ledger check');
      return { auditId: row.id, serverVersion: v.version, migrations: m.n };
    },
  };
}

export type Activities = TradingActivities & AlertActivities & SystemCheckActivities;

function missingTrading(): TradingActivities {
  const fail = async (): Promise<never> => {
    throw new Error('this worker was started without trading dependencies (venue, ledger); start it with `trader up` or `trader worker`');
  };
  return Object.fromEntries(TRADING_ACTIVITY_NAMES.map((n) => [n, fail])) as unknown as TradingActivities;
}
