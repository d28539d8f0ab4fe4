import type { Logger } from '../../infra/logger';
import { CandleStoreError, type CandleStore } from '../../ledger/candle-store';
import { storableCandles } from '../../lib/candle-hygiene';
import { timeframeToMs, type Candle } from '../../lib/candles';
import type { ClosedCandlesSink } from '../exchange/ccxt-adapter';

/**
 * The live loop's side of the candle store: every closed candle the trading activities read from
 * the exchange (the decision candles, the feature history, the 1m candles the paper exchange
 * fills against) is stored, after the same hygiene as a download. A failure here is logged and
 * never stops trading: the store is a record, not an input of the live decision.
 */
export function candleStoreSink(store: CandleStore, exchange: string, log: Logger, now: () => number = Date.now): ClosedCandlesSink {
  return async (symbol: string, timeframe: string, candles: Candle[]) => {
    let tfMs: number;
    try {
      tfMs = timeframeToMs(timeframe);
    } catch {
      return;
    }
    const { candles: storable, rejected } = storableCandles(candles, tfMs, now());
    if (rejected.length > 0) log.warn({ exchange, symbol, timeframe, rejected: rejected.map((i) => `${i.kind}: ${i.message}`) }, 'candles read from the exchange were kept out of the store');
    try {
      const r = await store.upsert(exchange, symbol, timeframe, storable);
      for (const c of r.conflicts) {
        log.warn({ exchange, symbol, timeframe, openTime: new Date(c.timestamp).toISOString(), stored: c.stored, offered: c.offered }, 'the exchange reports a stored candle differently; the stored one is kept');
      }
    } catch (err) {
      // A series the store cannot hold (e.g. weekly candles) is not an error of trading.
      if (err instanceof CandleStoreError) log.debug({ err, exchange, symbol, timeframe }, 'candles not stored');
      else throw err;
    }
  };
}
