import type { defineSearchAttributeKey } from '@temporalio/common';

/**
 * The custom search attributes of the trading workflows, all of type Keyword, so an operator
 * finds any symbol in the Temporal UI with a visibility query (e.g. `TradingStatus = "paused"`).
 * infra/temporal.ts registers them (on the local dev server at start; on a cluster when `trader
 * up` connects).
 */
export const SEARCH_ATTRIBUTE_NAMES = {
  symbol: 'Symbol',
  exchange: 'Exchange',
  mode: 'Mode',
  tradingStatus: 'TradingStatus',
} as const;

/**
 * Their typed keys, for the workflows (upsert) and whoever starts or lists them: plain data,
 * exactly what the SDK's defineSearchAttributeKey returns (`{ name, type }`), so lib/ needs only
 * the SDK's types.
 */
type KeywordKey = ReturnType<typeof defineSearchAttributeKey<'KEYWORD'>>;
const keyword = (name: string): KeywordKey => ({ name, type: 'KEYWORD' });
export const SymbolKey = keyword(SEARCH_ATTRIBUTE_NAMES.symbol);
export const ExchangeKey = keyword(SEARCH_ATTRIBUTE_NAMES.exchange);
export const ModeKey = keyword(SEARCH_ATTRIBUTE_NAMES.mode);
export const TradingStatusKey = keyword(SEARCH_ATTRIBUTE_NAMES.tradingStatus);
