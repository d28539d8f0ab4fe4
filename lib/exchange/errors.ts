/**
 * Our exchange errors, each carrying `retryable`: the vocabulary every venue speaks (the paper
 * exchange throws them directly; activities/exchange/error-mapping.ts maps ccxt's into them).
 *
 * ccxt's errors form a class tree (errorHierarchy.ts): RateLimitExceeded, DDoSProtection,
 * RequestTimeout and ExchangeNotAvailable are all NetworkErrors; OrderNotFound and
 * DuplicateOrderId are InvalidOrders; PermissionDenied and AccountSuspended are
 * AuthenticationErrors. We map by `instanceof`, most specific class first, into our own named
 * classes, each carrying `retryable`. Transient ones are retried in-process (resilience.ts) and,
 * if they persist, by Temporal; permanent ones stop at once: resending an order the exchange
 * called invalid, or unfunded, only repeats the refusal.
 */

export interface ExchangeErrorContext {
  exchangeId?: string;
  operation?: string;
  symbol?: string;
  cause?: unknown;
}

export abstract class ExchangeError extends Error {
  readonly exchangeId?: string;
  readonly operation?: string;
  readonly symbol?: string;

  protected constructor(
    message: string,
    readonly retryable: boolean,
    ctx: ExchangeErrorContext = {},
  ) {
    super(message, ctx.cause === undefined ? undefined : { cause: ctx.cause });
    // Temporal matches failures by type name: the class name is the contract.
    this.name = new.target.name;
    this.exchangeId = ctx.exchangeId;
    this.operation = ctx.operation;
    this.symbol = ctx.symbol;
  }
}

// --- transient: worth another try -------------------------------------------------------------

export class ExchangeNetworkError extends ExchangeError {
  constructor(message: string, ctx?: ExchangeErrorContext) {
    super(message, true, ctx);
  }
}
export class ExchangeTimeoutError extends ExchangeNetworkError {}
export class ExchangeRateLimitError extends ExchangeNetworkError {}
export class ExchangeUnavailableError extends ExchangeNetworkError {}

/** Our circuit breaker for this exchange is open: calls are refused without reaching it. */
export class ExchangeCircuitOpenError extends ExchangeError {
  constructor(message: string, ctx?: ExchangeErrorContext) {
    super(message, true, ctx);
  }
}

/** Two writers changed the same paper account at once; reload and try again. */
export class PaperStateConflictError extends ExchangeError {
  constructor(message: string, ctx?: ExchangeErrorContext) {
    super(message, true, ctx);
  }
}

// --- permanent: stop and tell someone ---------------------------------------------------------

abstract class PermanentExchangeError extends ExchangeError {
  constructor(message: string, ctx?: ExchangeErrorContext) {
    super(message, false, ctx);
  }
}

export class InsufficientFundsError extends PermanentExchangeError {}
export class InvalidOrderError extends PermanentExchangeError {}
/** Refused before sending: amount or value below the market's minimums after rounding. */
export class OrderBelowMinimumError extends InvalidOrderError {
  constructor(
    message: string,
    readonly reason: string,
    ctx?: ExchangeErrorContext,
  ) {
    super(message, ctx);
  }
}
export class OrderNotFoundError extends PermanentExchangeError {}
export class DuplicateOrderIdError extends PermanentExchangeError {}
export class ExchangeAuthError extends PermanentExchangeError {}
export class BadSymbolError extends PermanentExchangeError {}
/** The exchange said no for a reason of its own (bad request, not supported, market closed...). */
export class ExchangeRejectedError extends PermanentExchangeError {}
/** A payload we cannot read; `field` names what was wrong. */
export class MalformedResponseError extends PermanentExchangeError {
  constructor(
    message: string,
    readonly field: string,
    ctx?: ExchangeErrorContext,
  ) {
    super(message, ctx);
  }
}
/** Anything else (a bug, an unknown library error): not retried blindly. */
export class UnexpectedExchangeError extends PermanentExchangeError {}

/** Type names Temporal must not retry (for `nonRetryableErrorTypes` in a retry policy). */
export const NON_RETRYABLE_EXCHANGE_ERRORS = [
  'InsufficientFundsError',
  'InvalidOrderError',
  'OrderBelowMinimumError',
  'OrderNotFoundError',
  'DuplicateOrderIdError',
  'ExchangeAuthError',
  'BadSymbolError',
  'ExchangeRejectedError',
  'MalformedResponseError',
  'UnexpectedExchangeError',
] as const;

/** Query parameters that must never reach a log line or a workflow history. */
const SECRET_PARAMS = /([?&](?:signature|sign|apikey|api_key|key|secret|passphrase|password|token)=)[^&\s]*/gi;

export function scrubExchangeMessage(message: string): string {
  return message.replace(SECRET_PARAMS, '$1[REDACTED]');
}
