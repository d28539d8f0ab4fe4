/**
 * The logging port of lib/ code: pino's call shape (fields first, then the message), so the
 * process logger (infra/logger.ts) is passed in as it is, and lib/ never reaches for a global.
 */
export interface Log {
  debug(fields: object, msg?: string): void;
  info(fields: object, msg?: string): void;
  warn(fields: object, msg?: string): void;
  error(fields: object, msg?: string): void;
  child(bindings: Record<string, unknown>): Log;
}

/** For callers that want nothing logged (the backtester, tests). */
export const silentLog: Log = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLog,
};
