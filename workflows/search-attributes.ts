import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/**
 * Custom search attributes, so an operator finds any symbol in the Temporal UI with a
 * visibility query (e.g. `TradingStatus = "paused"`). Registered by the local dev server at
 * start; on an external cluster `trader up` registers them (see infra/temporal.ts).
 */
export const SymbolKey = defineSearchAttributeKey('Symbol', SearchAttributeType.KEYWORD);
export const ExchangeKey = defineSearchAttributeKey('Exchange', SearchAttributeType.KEYWORD);
export const ModeKey = defineSearchAttributeKey('Mode', SearchAttributeType.KEYWORD);
export const TradingStatusKey = defineSearchAttributeKey('TradingStatus', SearchAttributeType.KEYWORD);

export const SEARCH_ATTRIBUTES = [SymbolKey, ExchangeKey, ModeKey, TradingStatusKey];
