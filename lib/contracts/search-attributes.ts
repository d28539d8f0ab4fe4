/**
 * The custom search attributes of the trading workflows, all of type Keyword, so an operator
 * finds any symbol in the Temporal UI with a visibility query (e.g. `TradingStatus = "paused"`).
 * Names only: workflows/search-attributes.ts turns them into typed keys, and infra/temporal.ts
 * registers them (on the local dev server at start; on a cluster when `trader up` connects).
 */
export const SEARCH_ATTRIBUTE_NAMES = {
  symbol: 'Symbol',
  exchange: 'Exchange',
  mode: 'Mode',
  tradingStatus: 'TradingStatus',
} as const;
