import { add, dec, divTrunc, isZero, min, mul, neg, str, sub, type Dec } from './decimal';
import type { RebuiltPosition } from './types';

export interface FillForRebuild {
  exchange: string;
  symbol: string;
  side: 'buy' | 'sell';
  price: string;
  feeQuote: string;
  positionQtyDelta: string;
  ts: Date;
}

interface Working {
  exchange: string;
  symbol: string;
  qty: Dec;
  avg: Dec;
  entryQty: Dec;
  exitQty: Dec;
  exitNotional: Dec;
  realized: Dec;
  fees: Dec;
  openedAt: Date;
  closedAt: Date | null;
}

/**
 * Long-only average-cost positions from fills, in recording order: a buy opens or increases
 * (average price weighted by quantity received, truncated at 18 places), a sell reduces at the
 * average cost and realizes (price - average) x quantity; every fee is subtracted from realized
 * PnL. A sell with nothing open, or the part of a sell beyond the open quantity, touches no
 * position. Written independently of the SQL in ledger.ts (same rules, other code) so that
 * comparing the two catches a bug in either.
 */
export function rebuildPositions(fills: readonly FillForRebuild[]): RebuiltPosition[] {
  const open = new Map<string, Working>();
  const all: Working[] = [];
  for (const f of fills) {
    const key = `${f.exchange}\u0000${f.symbol}`;
    const delta = dec(f.positionQtyDelta);
    const fee = dec(f.feeQuote);
    let p = open.get(key);
    if (f.side === 'buy') {
      if (!p) {
        p = {
          exchange: f.exchange, symbol: f.symbol, qty: delta, avg: dec(f.price), entryQty: delta,
          exitQty: dec('0'), exitNotional: dec('0'), realized: neg(fee), fees: fee, openedAt: f.ts, closedAt: null,
        };
        open.set(key, p);
        all.push(p);
        continue;
      }
      p.avg = divTrunc(add(mul(p.qty, p.avg), mul(delta, f.price)), add(p.qty, delta));
      p.qty = add(p.qty, delta);
      p.entryQty = add(p.entryQty, delta);
      p.fees = add(p.fees, fee);
      p.realized = sub(p.realized, fee);
      continue;
    }
    if (!p) continue;
    const q = min(p.qty, neg(delta));
    p.qty = sub(p.qty, q);
    p.exitQty = add(p.exitQty, q);
    p.exitNotional = add(p.exitNotional, mul(q, f.price));
    p.realized = sub(add(p.realized, mul(sub(f.price, p.avg), q)), fee);
    p.fees = add(p.fees, fee);
    if (isZero(p.qty)) {
      p.closedAt = f.ts;
      open.delete(key);
    }
  }
  const order = (a: Working, b: Working) => (a.exchange < b.exchange ? -1 : a.exchange > b.exchange ? 1 : a.symbol < b.symbol ? -1 : a.symbol > b.symbol ? 1 : 0);
  // Array.prototype.sort is stable: positions of one market keep their opening order.
  return [...all].sort(order).map((p) => ({
    exchange: p.exchange,
    symbol: p.symbol,
    status: p.closedAt ? 'closed' : 'open',
    qty: str(p.qty),
    avgEntryPrice: str(p.avg),
    entryQty: str(p.entryQty),
    exitQty: str(p.exitQty),
    exitNotional: str(p.exitNotional),
    realizedPnl: str(p.realized),
    fees: str(p.fees),
    openedAt: p.openedAt,
    closedAt: p.closedAt,
  }));
}
