import * as ccxt from 'ccxt';
import { isBrokenCircuitError } from 'cockatiel';
import { ApplicationFailure } from '@temporalio/common';
import {
  BadSymbolError,
  DuplicateOrderIdError,
  ExchangeAuthError,
  ExchangeCircuitOpenError,
  ExchangeError,
  ExchangeNetworkError,
  ExchangeRateLimitError,
  ExchangeRejectedError,
  ExchangeTimeoutError,
  ExchangeUnavailableError,
  InsufficientFundsError,
  InvalidOrderError,
  MalformedResponseError,
  OrderNotFoundError,
  scrubExchangeMessage,
  UnexpectedExchangeError,
  type ExchangeErrorContext,
} from '../../lib/exchange/errors';

/**
 * The one place that turns exchange failures into retry decisions.
 *
 * ccxt's errors form a class tree (errorHierarchy.ts): RateLimitExceeded, DDoSProtection,
 * RequestTimeout and ExchangeNotAvailable are all NetworkErrors; OrderNotFound and
 * DuplicateOrderId are InvalidOrders; PermissionDenied and AccountSuspended are
 * AuthenticationErrors. We map by `instanceof`, most specific class first, into our own named
 * classes (lib/exchange/errors.ts), each carrying `retryable`. Transient ones are retried
 * in-process (resilience.ts) and, if they persist, by Temporal; permanent ones stop at once:
 * resending an order the exchange called invalid, or unfunded, only repeats the refusal.
 */

type Ctor = new (message: string, ctx?: ExchangeErrorContext) => ExchangeError;

// Most specific first: the first `instanceof` that matches wins.
const CCXT_TO_OURS: ReadonlyArray<readonly [abstract new (...args: never[]) => Error, Ctor]> = [
  [ccxt.OrderNotFound, OrderNotFoundError],
  [ccxt.DuplicateOrderId, DuplicateOrderIdError],
  [ccxt.InsufficientFunds, InsufficientFundsError],
  [ccxt.BadSymbol, BadSymbolError],
  [ccxt.AuthenticationError, ExchangeAuthError], // incl. PermissionDenied, AccountSuspended, AccountNotEnabled
  [ccxt.InvalidOrder, InvalidOrderError],
  [ccxt.RateLimitExceeded, ExchangeRateLimitError],
  [ccxt.DDoSProtection, ExchangeRateLimitError], // Binance answers 418/429 bans with it
  [ccxt.RequestTimeout, ExchangeTimeoutError],
  [ccxt.ExchangeNotAvailable, ExchangeUnavailableError], // incl. OnMaintenance
  [ccxt.NetworkError, ExchangeNetworkError], // incl. InvalidNonce, ChecksumError
  [ccxt.CancelPending, ExchangeUnavailableError],
  // OperationFailed itself is what ccxt raises for "internal error, please try again" answers
  // (Binance -1000, -1001, -1006): the venue failed, not the request.
  [ccxt.OperationFailed, ExchangeUnavailableError],
  [ccxt.ExchangeError, ExchangeRejectedError], // BadRequest, NotSupported, OperationRejected, ...
];

/** Any thrown value -> one of our classes (already-mapped errors pass through unchanged). */
export function toExchangeError(err: unknown, ctx: ExchangeErrorContext = {}): ExchangeError {
  if (err instanceof ExchangeError) return err;
  const full = { ...ctx, cause: err };
  if (isBrokenCircuitError(err)) {
    return new ExchangeCircuitOpenError(`${ctx.exchangeId ?? 'exchange'}: circuit breaker open, ${ctx.operation ?? 'call'} not sent`, full);
  }
  const message = scrubExchangeMessage(err instanceof Error ? err.message : String(err));
  if (err instanceof ccxt.BadResponse) {
    return new MalformedResponseError(`${ctx.exchangeId ?? 'exchange'} ${ctx.operation ?? ''}: unreadable response: ${message}`.trim(), 'body', full);
  }
  for (const [ccxtClass, ours] of CCXT_TO_OURS) {
    if (err instanceof ccxtClass) return new ours(message, full);
  }
  if (err instanceof ccxt.BaseError) return new ExchangeRejectedError(message, full);
  // ccxt choking on a payload (a number that is not a number) throws plain JS errors from its parsers.
  if (err instanceof Error && /[\\/]ccxt[\\/]/.test(err.stack ?? '')) {
    return new MalformedResponseError(`${ctx.exchangeId ?? 'exchange'} ${ctx.operation ?? 'call'}: malformed payload ccxt could not parse (${err.name}: ${message})`, 'payload', full);
  }
  const what = err instanceof Error ? `${err.name}: ${message}` : message;
  return new UnexpectedExchangeError(`${ctx.exchangeId ?? 'exchange'} ${ctx.operation ?? 'call'} failed unexpectedly: ${what}`, full);
}

/**
 * For activities: a permanent exchange error becomes `ApplicationFailure.nonRetryable` so
 * Temporal stops at once (type = our class name); a transient one stays retryable, typed the same
 * way. Anything else is returned untouched.
 */
export function toTemporalFailure(err: unknown): unknown {
  if (!(err instanceof ExchangeError)) return err;
  const details = { exchangeId: err.exchangeId, operation: err.operation, symbol: err.symbol };
  if (!err.retryable) return ApplicationFailure.nonRetryable(err.message, err.name, details);
  return ApplicationFailure.retryable(err.message, err.name, details);
}

/** Runs an exchange call inside an activity, rethrowing failures in Temporal's terms. */
export async function asActivityCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toTemporalFailure(err);
  }
}
