import { BadSymbolError } from './errors';
import { MarketInfo, type SyncMarketCatalog } from './types';

/**
 * Market rules known in advance: for replays and backtests over recorded candles, where no venue
 * is asked. Unknown symbols are refused, so a typo cannot trade under made-up rules.
 */
export class StaticMarketCatalog implements SyncMarketCatalog {
  private readonly markets = new Map<string, MarketInfo>();

  constructor(markets: MarketInfo[]) {
    for (const m of markets) this.markets.set(m.symbol, MarketInfo.parse(m));
  }

  async market(symbol: string): Promise<MarketInfo> {
    return this.marketSync(symbol);
  }

  marketSync(symbol: string): MarketInfo {
    const m = this.markets.get(symbol);
    if (!m) throw new BadSymbolError(`no market rules for ${symbol} (known: ${[...this.markets.keys()].join(', ') || 'none'})`, { exchangeId: 'paper', operation: 'market', symbol });
    return m;
  }

  async loadMarkets(): Promise<string[]> {
    return [...this.markets.keys()];
  }
}

/**
 * A spot market with the given rules. Defaults (8-decimal lots, no tick, no minimums) are only
 * a starting point: pass the venue's real step, tick, minimum amount and minimum notional when
 * the replay should refuse what the venue would.
 */
export function spotMarket(symbol: string, rules: Partial<Omit<MarketInfo, 'symbol' | 'base' | 'quote'>> = {}): MarketInfo {
  const [base, quoteAndSettle] = symbol.split('/');
  const quote = (quoteAndSettle ?? '').split(':')[0];
  if (!base || !quote) throw new BadSymbolError(`'${symbol}' is not BASE/QUOTE`);
  return MarketInfo.parse({ type: 'spot', active: true, amountPrecision: { kind: 'step', step: '0.00000001' }, ...rules, symbol, base, quote });
}
