import {
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  type RetryPolicy,
  circuitBreaker,
  halfJitterGenerator,
  handleWhen,
  retry,
} from 'cockatiel';
import { logger, type Logger } from '../../infra/logger';
import { ExchangeCircuitOpenError, ExchangeError } from '../../lib/exchange/errors';
import { toExchangeError } from './error-mapping';
import type { BreakerStateName, BreakerStatus } from '../../lib/exchange/types';

export type { BreakerStateName, BreakerStatus };

/**
 * Every exchange call goes through here: errors mapped to our classes once, transient ones
 * retried with exponential backoff and jitter, and a circuit breaker per exchange that stops calling a venue
 * that keeps failing, so a worker does not hammer a down exchange and get its IP banned.
 * Only transient failures count against the breaker: an unfunded or invalid order means the
 * exchange is answering fine.
 *
 * Jitter is "half" jitter: attempt n waits a random time in [d/2, d) with d = initial * 2^n. The
 * randomness keeps a fleet of workers from retrying in lock-step; the floor keeps a retry after a
 * 429 from following it almost at once (full or decorrelated jitter can draw ~0 ms), which is
 * what gets an IP banned.
 */

export interface ResilienceOptions {
  /** Retries after the first attempt (default 3). */
  maxRetries?: number;
  /** First backoff delay (default 250 ms); later ones grow exponentially with jitter. */
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** Consecutive transient failures that open the breaker (default 5). */
  breakerThreshold?: number;
  /** How long the breaker stays open before letting one trial call through (default 30 s). */
  halfOpenAfterMs?: number;
}

const STATE_NAMES: Record<CircuitState, BreakerStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Isolated]: 'isolated',
};

const isTransient = (e: Error) => e instanceof ExchangeError && e.retryable && !(e instanceof ExchangeCircuitOpenError);

export class ExchangeResilience {
  private readonly retryPolicy: RetryPolicy;
  private readonly breaker: CircuitBreakerPolicy;
  private readonly log: Logger;
  private stateSince = Date.now();
  private consecutiveFailures = 0;
  private lastFailure?: string;
  /** Attempts actually sent and retries scheduled, for status and tests. */
  readonly stats = { calls: 0, attempts: 0, retries: 0, failures: 0, recentRetryDelaysMs: [] as number[] };

  constructor(
    readonly exchangeId: string,
    opts: ResilienceOptions = {},
    log?: Logger,
  ) {
    this.log = (log ?? logger()).child({ exchangeId });
    this.retryPolicy = retry(handleWhen(isTransient), {
      maxAttempts: opts.maxRetries ?? 3,
      backoff: new ExponentialBackoff({
        generator: halfJitterGenerator,
        initialDelay: opts.initialDelayMs ?? 250,
        maxDelay: opts.maxDelayMs ?? 10_000,
      }),
    });
    this.breaker = circuitBreaker(handleWhen(isTransient), {
      halfOpenAfter: opts.halfOpenAfterMs ?? 30_000,
      breaker: new ConsecutiveBreaker(opts.breakerThreshold ?? 5),
    });
    this.retryPolicy.onRetry((e) => {
      this.stats.retries++;
      this.stats.recentRetryDelaysMs = [...this.stats.recentRetryDelaysMs, e.delay].slice(-20);
      const error = 'error' in e ? e.error.message : 'unexpected result';
      this.log.warn({ attempt: e.attempt, delayMs: Math.round(e.delay), error }, 'exchange call failed, retrying');
    });
    this.breaker.onStateChange((state) => {
      this.stateSince = Date.now();
      const name = STATE_NAMES[state];
      if (name === 'open') this.log.error({ breaker: name, consecutiveFailures: this.consecutiveFailures, lastFailure: this.lastFailure }, 'exchange circuit breaker opened: calls refused until it half-opens');
      else this.log.info({ breaker: name }, `exchange circuit breaker ${name.replace('_', '-')}`);
    });
  }

  /** Runs one exchange call (`operation` names it in logs and errors) with retries and the breaker. */
  async run<T>(operation: string, fn: () => Promise<T>, symbol?: string): Promise<T> {
    const ctx = { exchangeId: this.exchangeId, operation, symbol };
    this.stats.calls++;
    try {
      return await this.retryPolicy.execute(() =>
        this.breaker.execute(async () => {
          this.stats.attempts++;
          try {
            const result = await fn();
            this.consecutiveFailures = 0;
            return result;
          } catch (err) {
            const mapped = toExchangeError(err, ctx);
            if (mapped.retryable) {
              this.consecutiveFailures++;
              this.lastFailure = `${mapped.name}: ${mapped.message}`.slice(0, 300);
            }
            throw mapped;
          }
        }),
      );
    } catch (err) {
      this.stats.failures++;
      throw toExchangeError(err, ctx);
    }
  }

  breakerState(): BreakerStatus {
    return {
      exchangeId: this.exchangeId,
      state: STATE_NAMES[this.breaker.state],
      since: this.stateSince,
      consecutiveFailures: this.consecutiveFailures,
      lastFailure: this.lastFailure,
    };
  }
}

const shared = new Map<string, ExchangeResilience>();

/**
 * The process-wide resilience of one exchange (keyed by id, plus ':sandbox' for testnets): every
 * adapter of the same venue shares its breaker, because the venue's health is shared.
 * Options apply when it is first created.
 */
export function resilienceFor(key: string, opts?: ResilienceOptions): ExchangeResilience {
  let r = shared.get(key);
  if (!r) {
    r = new ExchangeResilience(key, opts);
    shared.set(key, r);
  }
  return r;
}

/** Breaker state of every exchange used in this process, for status output. */
export function breakerStates(): BreakerStatus[] {
  return [...shared.values()].map((r) => r.breakerState());
}
