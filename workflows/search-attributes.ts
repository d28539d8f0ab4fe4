import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import { SEARCH_ATTRIBUTE_NAMES as N } from '../lib/contracts/search-attributes';

/** Typed keys of the custom search attributes (names and meaning: lib/contracts/search-attributes.ts). */
export const SymbolKey = defineSearchAttributeKey(N.symbol, SearchAttributeType.KEYWORD);
export const ExchangeKey = defineSearchAttributeKey(N.exchange, SearchAttributeType.KEYWORD);
export const ModeKey = defineSearchAttributeKey(N.mode, SearchAttributeType.KEYWORD);
export const TradingStatusKey = defineSearchAttributeKey(N.tradingStatus, SearchAttributeType.KEYWORD);
