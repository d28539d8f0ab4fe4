import assert from 'node:assert/strict';
import * as ccxt from 'ccxt';
import { BrokenCircuitError } from 'cockatiel';
import { ApplicationFailure } from '@temporalio/common';
import { asActivityCall, toExchangeError, toTemporalFailure } from '../../activities/exchange';
import { BadSymbolError, DuplicateOrderIdError, ExchangeAuthError, ExchangeCircuitOpenError, type ExchangeError, ExchangeNetworkError, ExchangeRateLimitError, ExchangeRejectedError, ExchangeTimeoutError, ExchangeUnavailableError, InsufficientFundsError, InvalidOrderError, MalformedResponseError, NON_RETRYABLE_EXCHANGE_ERRORS, OrderNotFoundError, UnexpectedExchangeError, scrubExchangeMessage } from '../../lib/exchange/errors';

type ErrorClass = new (message: string) => Error;
const ccxtErrors = Object.entries(ccxt as unknown as Record<string, unknown>).filter(
  (e): e is [string, ErrorClass] => typeof e[1] === 'function' && (e[1] as { prototype: unknown }).prototype instanceof Error,
);

describe('exchange errors: ccxt classes -> ours, with a retry decision', () => {
  it('decides every error class ccxt exports: its transient branch retryable, everything else not', () => {
    assert.ok(ccxtErrors.length >= 40, `found ${ccxtErrors.length} ccxt error classes`);
    for (const [name, Cls] of ccxtErrors) {
      const mapped = toExchangeError(new Cls(`binance ${name}`), { exchangeId: 'binance', operation: 'test' });
      const transient = new Cls('x') instanceof ccxt.OperationFailed && !(new Cls('x') instanceof ccxt.BadResponse);
      assert.equal(mapped.retryable, transient, `${name} -> ${mapped.name}`);
      assert.ok(mapped.cause instanceof Cls);
    }
  });

  it('maps subclasses to the most specific of our classes (ccxt nests them)', () => {
    const cases: Array<[Error, new (...a: never[]) => ExchangeError]> = [
      [new ccxt.OrderNotFound('x'), OrderNotFoundError], // an InvalidOrder in ccxt
      [new ccxt.DuplicateOrderId('x'), DuplicateOrderIdError], // an InvalidOrder in ccxt
      [new ccxt.OrderImmediatelyFillable('x'), InvalidOrderError],
      [new ccxt.InsufficientFunds('x'), InsufficientFundsError],
      [new ccxt.PermissionDenied('x'), ExchangeAuthError], // an AuthenticationError in ccxt
      [new ccxt.AccountSuspended('x'), ExchangeAuthError],
      [new ccxt.BadSymbol('x'), BadSymbolError], // a BadRequest in ccxt
      [new ccxt.BadRequest('x'), ExchangeRejectedError],
      [new ccxt.NotSupported('x'), ExchangeRejectedError],
      [new ccxt.MarketClosed('x'), ExchangeRejectedError],
      [new ccxt.RateLimitExceeded('x'), ExchangeRateLimitError], // a NetworkError in ccxt
      [new ccxt.DDoSProtection('x'), ExchangeRateLimitError],
      [new ccxt.RequestTimeout('x'), ExchangeTimeoutError],
      [new ccxt.OnMaintenance('x'), ExchangeUnavailableError], // an ExchangeNotAvailable in ccxt
      [new ccxt.ExchangeNotAvailable('x'), ExchangeUnavailableError],
      [new ccxt.InvalidNonce('x'), ExchangeNetworkError],
      [new ccxt.NetworkError('x'), ExchangeNetworkError],
      [new ccxt.OperationFailed('x'), ExchangeUnavailableError],
      [new ccxt.NullResponse('x'), MalformedResponseError],
    ];
    for (const [err, ours] of cases) {
      const mapped = toExchangeError(err);
      assert.equal(mapped.constructor, ours, `${err.constructor.name} -> ${mapped.name}, expected ${ours.name}`);
      assert.equal(mapped.name, ours.name, 'the type name Temporal sees is the class name');
    }
    assert.ok(toExchangeError(new ccxt.RateLimitExceeded('x')) instanceof ExchangeNetworkError);
  });

  it('maps our circuit breaker and unknown failures, and passes ours through unchanged', () => {
    assert.ok(toExchangeError(new BrokenCircuitError()) instanceof ExchangeCircuitOpenError);
    const ours = new InsufficientFundsError('no money');
    assert.equal(toExchangeError(ours), ours);
    const bug = toExchangeError(new TypeError('x is undefined'), { exchangeId: 'binance', operation: 'createOrder' });
    assert.ok(bug instanceof UnexpectedExchangeError && !bug.retryable);
    assert.match(bug.message, /binance createOrder failed unexpectedly: TypeError: x is undefined/);
  });

  it('turns permanent errors into non-retryable Temporal failures typed by class name', async () => {
    for (const err of [new InsufficientFundsError('a'), new InvalidOrderError('b'), new ExchangeAuthError('c'), new BadSymbolError('d'), new MalformedResponseError('e', 'candles[0].close')]) {
      const f = toTemporalFailure(err);
      assert.ok(f instanceof ApplicationFailure);
      assert.deepEqual([f.nonRetryable, f.type, f.message], [true, err.name, err.message]);
      assert.ok((NON_RETRYABLE_EXCHANGE_ERRORS as readonly string[]).includes(err.name));
    }
    const transient = toTemporalFailure(new ExchangeRateLimitError('slow down'));
    assert.ok(transient instanceof ApplicationFailure && transient.nonRetryable === false);
    assert.ok(!(NON_RETRYABLE_EXCHANGE_ERRORS as readonly string[]).includes('ExchangeRateLimitError'));
    const plain = new Error('not ours');
    assert.equal(toTemporalFailure(plain), plain);
    await assert.rejects(
      asActivityCall(async () => {
        throw new InsufficientFundsError('USDT 5 < 10');
      }),
      (e: unknown) => e instanceof ApplicationFailure && e.nonRetryable && e.type === 'InsufficientFundsError',
    );
  });

  it('scrubs signatures and keys from messages', () => {
    const msg = 'binance GET https://api.binance.com/api/v3/account?timestamp=1&recvWindow=5000&signature=abcdef0123 fetch failed; ?apiKey=K123&x=1';
    assert.equal(scrubExchangeMessage(msg), 'binance GET https://api.binance.com/api/v3/account?timestamp=1&recvWindow=5000&signature=[REDACTED] fetch failed; ?apiKey=[REDACTED]&x=1');
    const mapped = toExchangeError(new ccxt.NetworkError(msg));
    assert.ok(!mapped.message.includes('abcdef0123'));
  });
});
