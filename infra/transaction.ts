import type postgres from 'postgres';

/**
 * `sql.begin` without a postgres.js 3.4.x defect (porsager/postgres#1133, #1208, still open in
 * 3.4.9): when a connection dies inside `sql.begin` (server restart, failover,
 * pg_terminate_backend), begin() sends its own ROLLBACK on the dead connection; that write
 * runs from a setImmediate on a null socket and throws an uncatchable TypeError, which kills
 * the process, and the pool cannot reconnect afterwards (every connect times out).
 *
 * Here a connection-loss error inside the transaction is not handed back to begin(): begin()
 * rejects anyway, through its connection-close handler, with CONNECTION_CLOSED, and no rollback
 * is written (the server already rolled back the transaction of a connection that died). If
 * the connection has not closed within 10 s, the error is handed back after all, since then the
 * socket is alive and the library's rollback is safe. Measured here: the process survives and
 * the pool serves the next transaction (the first query after the kill may still fail once
 * with the dead backend's 57P01: a transient error, retried like any other).
 *
 * Use this everywhere instead of `sql.begin`.
 */
export async function transaction<T>(sql: postgres.Sql, fn: (tx: postgres.TransactionSql) => Promise<T>, options = ''): Promise<T> {
  let settled = false;
  try {
    return (await sql.begin(options, (tx) =>
      fn(tx).catch((err: unknown) => {
        if (!isConnectionLoss(err)) throw err;
        return new Promise<never>((_, reject) => {
          setTimeout(() => settled || reject(err), 10_000).unref();
        });
      }),
    )) as T;
  } finally {
    settled = true;
  }
}

const LOSS_CODES = new Set(['CONNECTION_CLOSED', 'CONNECTION_DESTROYED', 'CONNECTION_ENDED', 'ECONNRESET', 'EPIPE', '57P01', '57P02', '57P03']);

/** The connection is gone (not a statement error): the transaction cannot have committed. */
export function isConnectionLoss(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && (LOSS_CODES.has(code) || code.startsWith('08'));
}
