import { decAdd, decDivTrunc, decIsZero, decMin, decMul, decNeg, decSub, toDecimalString } from '../lib/decimal';
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
  // Decimal strings in canonical form (lib/decimal.ts), as the ledger's rows hold them.
  qty: string;
  avg: string;
  entryQty: string;
  exitQty: string;
  exitNotional: string;
  realized: string;
  fees: string;
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
    const delta = toDecimalString(f.positionQtyDelta);
    const fee = toDecimalString(f.feeQuote);
    let p = open.get(key);
    if (f.side === 'buy') {
      if (!p) {
        p = {
          exchange: f.exchange, symbol: f.symbol, qty: delta, avg: toDecimalString(f.price), entryQty: delta,
          exitQty: '0', exitNotional: '0', realized: decNeg(fee), fees: fee, openedAt: f.ts, closedAt: null,
        };
        open.set(key, p);
        all.push(p);
        continue;
      }
      p.avg = decDivTrunc(decAdd(decMul(p.qty, p.avg), decMul(delta, f.price)), decAdd(p.qty, delta));
      p.qty = decAdd(p.qty, delta);
      p.entryQty = decAdd(p.entryQty, delta);
      p.fees = decAdd(p.fees, fee);
      p.realized = decSub(p.realized, fee);
      continue;
    }
    if (!p) continue;
    const q = decMin(p.qty, decNeg(delta));
    p.qty = decSub(p.qty, q);
    p.exitQty = decAdd(p.exitQty, q);
    p.exitNotional = decAdd(p.exitNotional, decMul(q, f.price));
    p.realized = decSub(decAdd(p.realized, decMul(decSub(f.price, p.avg), q)), fee);
    p.fees = decAdd(p.fees, fee);
    if (decIsZero(p.qty)) {
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
    qty: p.qty,
    avgEntryPrice: p.avg,
    entryQty: p.entryQty,
    exitQty: p.exitQty,
    exitNotional: p.exitNotional,
    realizedPnl: p.realized,
    fees: p.fees,
    openedAt: p.openedAt,
    closedAt: p.closedAt,
  }));
}
