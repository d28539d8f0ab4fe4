import { CcxtExchangeAdapter } from '../exchange/ccxt-adapter';
import type { ExchangeResilience, ResilienceOptions } from '../exchange/resilience';
import { BadSymbolError, ExchangeRejectedError } from '../../lib/exchange/errors';
import type { Logger } from '../../infra/logger';

/**
 * The exchange as a source of public candles for the store: the trading adapter (same rate
 * limiter, same retries and circuit breaker), never in sandbox mode (testnet prices are not
 * market data), no keys.
 */

export interface MarketDataExchangeConfig {
  id: string;
  /** EXCHANGE_API_URL. */
  apiUrl?: string;
  /** EXCHANGE_CCXT_OPTIONS. */
  ccxtOptions?: Record<string, unknown>;
}

export function createMarketDataExchange(
  exchange: MarketDataExchangeConfig,
  opts: { resilience?: ExchangeResilience | ResilienceOptions; timeoutMs?: number; now?: () => number; log?: Logger } = {},
): CcxtExchangeAdapter {
  return CcxtExchangeAdapter.create(
    { exchangeId: exchange.id, apiUrl: exchange.apiUrl, ccxtOptions: exchange.ccxtOptions, timeoutMs: opts.timeoutMs },
    { resilience: opts.resilience, now: opts.now, log: opts.log },
  );
}

/**
 * The market-data client for exchange `id`: EXCHANGE_API_URL and EXCHANGE_CCXT_OPTIONS belong to
 * the configured exchange, not to another one a command or a retrain names.
 */
export function marketDataExchangeFor(
  configured: MarketDataExchangeConfig,
  id: string,
  opts: { resilience?: ExchangeResilience | ResilienceOptions; timeoutMs?: number; now?: () => number; log?: Logger } = {},
): CcxtExchangeAdapter {
  const own = id === configured.id;
  return createMarketDataExchange({ id, apiUrl: own ? configured.apiUrl : undefined, ccxtOptions: own ? configured.ccxtOptions : undefined }, opts);
}

/** Candles per request: the most the exchange answers (ccxt's `features`), else ccxt's common default. */
export function pageSizeOf(adapter: CcxtExchangeAdapter, symbol?: string): number {
  const features = (adapter.exchange as unknown as { features?: Record<string, unknown> }).features;
  const market = symbol ? adapter.exchange.markets?.[symbol] : undefined;
  const kind = market?.type === 'swap' || market?.type === 'future' ? market.type : 'spot';
  const node = features?.[kind] as Record<string, unknown> | undefined;
  const flavour = kind === 'spot' ? node : ((node?.[market?.linear === false ? 'inverse' : 'linear'] ?? node) as Record<string, unknown> | undefined);
  const limit = (flavour?.fetchOHLCV as { limit?: unknown } | undefined)?.limit;
  return typeof limit === 'number' && Number.isInteger(limit) && limit > 0 ? limit : 500;
}

/**
 * Refuses, before anything is downloaded, symbols the exchange does not list and a timeframe it
 * does not offer, naming close matches: a typo should cost a message, not a run.
 */
export async function checkMarkets(adapter: CcxtExchangeAdapter, symbols: string[], timeframe: string): Promise<void> {
  const listed = await adapter.loadMarkets();
  const unknown = symbols.filter((s) => !listed.includes(s));
  if (unknown.length > 0) {
    const hints = unknown.map((s) => {
      const base = s.split('/')[0];
      const near = listed.filter((l) => l.split('/')[0] === base).slice(0, 5);
      return near.length > 0 ? `${s} (listed for ${base}: ${near.join(', ')})` : s;
    });
    throw new BadSymbolError(`${adapter.exchangeId} does not list ${hints.join('; ')}`, { exchangeId: adapter.exchangeId, operation: 'loadMarkets' });
  }
  if (!adapter.exchange.has['fetchOHLCV']) throw new ExchangeRejectedError(`${adapter.exchangeId} offers no candles (no OHLCV endpoint)`, { exchangeId: adapter.exchangeId, operation: 'fetchCandles' });
  const offered = Object.keys(adapter.exchange.timeframes ?? {});
  if (offered.length > 0 && !offered.includes(timeframe)) {
    throw new ExchangeRejectedError(`${adapter.exchangeId} has no ${timeframe} candles (it offers ${offered.join(', ')})`, { exchangeId: adapter.exchangeId, operation: 'fetchCandles' });
  }
}
