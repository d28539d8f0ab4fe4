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

/** A logger that takes the message first and the fields second, as Temporal's workflow `log` does. */
export interface MessageFirstLogger {
  debug(message: string, attrs?: Record<string, unknown>): void;
  info(message: string, attrs?: Record<string, unknown>): void;
  warn(message: string, attrs?: Record<string, unknown>): void;
  error(message: string, attrs?: Record<string, unknown>): void;
}

/**
 * This port over a message-first logger: workflow code passes Temporal's replay-aware `log`
 * (which drops lines while a history is replayed) to the lib/ classes it wraps.
 */
export function messageFirstLog(logger: MessageFirstLogger, bindings: Record<string, unknown> = {}): Log {
  const at =
    (level: keyof MessageFirstLogger) =>
    (fields: object, msg?: string): void =>
      logger[level](msg ?? '', { ...bindings, ...fields });
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: (b) => messageFirstLog(logger, { ...bindings, ...b }) };
}
