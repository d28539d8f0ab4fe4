import type { OrderStatus } from '../../lib/order-status';
import type { ExchangeOrder } from '../../lib/exchange/types';
import { parseClientOrderId } from '../../lib/engine/ids';
import type { OrderEvent } from '../../lib/metrics';
import type { Order } from '../../ledger/types';
import type { TradingMetrics } from '../metrics/trading';
import type { LedgerTradeRecorder, OrderMove, TradeFill, TradeIntent, TradeRecorder } from './recorder';

/**
 * The ledger recorder, plus a metric point for what the ledger actually changed: an order placed
 * (its intent row created), filled, rejected or canceled, a position moved by a fill, a trade
 * closed. Only changes count, so an activity retried after its first attempt committed writes no
 * second point, and the trade points add up to the ledger's trades.
 *
 * Points carry market time: a fill's own time, and for the rest the clock of the activity (the
 * replayed candle's close in a replay, the wall clock live).
 */

const EVENT_OF: Partial<Record<OrderStatus, OrderEvent>> = { filled: 'filled', rejected: 'rejected', canceled: 'canceled', expired: 'canceled' };

export class MeteredTradeRecorder implements TradeRecorder {
  /** Trades this recorder closed (the activity values the account afterwards). */
  tradesClosed = 0;

  constructor(
    private readonly inner: LedgerTradeRecorder,
    private readonly metrics: TradingMetrics,
    private readonly clock: () => number,
  ) {}

  async recordIntent(i: TradeIntent): Promise<unknown> {
    const r = await this.inner.recordIntent(i);
    if (r.created) this.orderEvent(r.order, 'placed', this.clock());
    return r;
  }

  async recordOrder(clientOrderId: string, order: ExchangeOrder): Promise<unknown> {
    const r = await this.inner.recordOrder(clientOrderId, order);
    this.moved(r, this.clock());
    return r;
  }

  async recordFill(clientOrderId: string, fill: TradeFill): Promise<unknown> {
    const r = await this.inner.recordFill(clientOrderId, fill);
    if (!r.result.created) return r;
    this.moved({ before: r.before, order: r.result.order }, fill.time);
    const p = r.result.position;
    if (p) this.metrics.position({ symbol: p.symbol, open: p.status === 'open', qty: p.qty, avgEntryPrice: p.avgEntryPrice, realizedPnl: p.realizedPnl }, fill.time);
    const t = r.result.trade;
    if (t) {
      this.tradesClosed++;
      this.metrics.trade({
        symbol: t.symbol,
        qty: t.qty,
        entryTime: t.entryTime.getTime(),
        exitTime: t.exitTime.getTime(),
        entryPrice: t.entryPrice,
        exitPrice: t.exitPrice,
        fees: t.fees,
        pnl: t.pnl,
        exitReason: t.exitReason,
      });
    }
    return r;
  }

  async recordRejection(clientOrderId: string, reason: string): Promise<unknown> {
    const r = await this.inner.recordRejection(clientOrderId, reason);
    this.moved(r, this.clock());
    return r;
  }

  recordedFills(tradeIds: readonly string[]): Promise<ReadonlySet<string>> {
    return this.inner.recordedFills(tradeIds);
  }

  private moved(m: OrderMove, time: number): void {
    if (m.before === m.order.status) return;
    const event = EVENT_OF[m.order.status];
    if (event) this.orderEvent(m.order, event, time);
  }

  private orderEvent(o: Order, status: OrderEvent, time: number): void {
    this.metrics.order(
      {
        symbol: o.symbol,
        side: o.side,
        orderType: o.type,
        intent: parseClientOrderId(o.clientOrderId)?.tag ?? 'other',
        status,
        qty: o.qty,
        price: o.price ?? o.stopPrice,
        clientOrderId: o.clientOrderId,
      },
      time,
    );
  }
}
