/**
 * The exchange adapters that do I/O: ccxt (any exchange id) behind the resilience policy, and the
 * factory that puts the paper exchange (lib/exchange) in front of it in DRY_RUN.
 */
import { CcxtExchangeAdapter, type CcxtExchangeOptions, type ClosedCandlesSink } from './ccxt-adapter';
import { PaperExchange, type PaperExchangeOptions } from '../../lib/exchange/paper-exchange';
import type { ResilienceOptions } from './resilience';
import type { ExchangeAdapter } from '../../lib/exchange/types';

export * from './error-mapping';
export { CcxtExchangeAdapter, createCcxtExchange, type CcxtExchangeOptions, type CcxtAdapterOptions, type ClosedCandlesSink } from './ccxt-adapter';
export { ExchangeResilience, resilienceFor, breakerStates, type BreakerStatus, type ResilienceOptions } from './resilience';

export interface TradingExchangeConfig {
  exchange: { id: string; apiKey?: string; secret?: string; password?: string; sandbox: boolean; apiUrl?: string; ccxtOptions?: Record<string, unknown> };
  /** true: orders go to the paper exchange; market data and market rules still come from the venue. */
  dryRun: boolean;
  resilience?: ResilienceOptions;
  /** Required with dryRun. */
  paper?: Omit<PaperExchangeOptions, 'marketData' | 'markets'>;
  /** Where the closed candles read from the venue go (the candle store); not used in sandbox mode, whose prices are not the market's. */
  candleSink?: ClosedCandlesSink;
}

/**
 * The adapter the trading activities use. In DRY_RUN the venue is still asked for candles and
 * market rules (public endpoints, no keys needed) so paper orders obey the real precision and
 * minimums; only orders and balances are simulated.
 */
export function createTradingExchange(cfg: TradingExchangeConfig): ExchangeAdapter {
  const ccxtOpts: CcxtExchangeOptions = { exchangeId: cfg.exchange.id, sandbox: cfg.exchange.sandbox, apiUrl: cfg.exchange.apiUrl, ccxtOptions: cfg.exchange.ccxtOptions };
  if (!cfg.dryRun) Object.assign(ccxtOpts, { apiKey: cfg.exchange.apiKey, secret: cfg.exchange.secret, password: cfg.exchange.password });
  const live = CcxtExchangeAdapter.create(ccxtOpts, { resilience: cfg.resilience, onClosedCandles: cfg.exchange.sandbox ? undefined : cfg.candleSink });
  if (!cfg.dryRun) return live;
  if (!cfg.paper) throw new Error('DRY_RUN needs paper exchange options (account, store, timeframe, initial balances)');
  return new PaperExchange({ ...cfg.paper, marketData: live, markets: live });
}
