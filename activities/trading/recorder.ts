import type { FillResult, Ledger } from '../../ledger/ledger';
import { marketCurrencies } from '../../ledger/ledger';
import { OrderNotFound } from '../../ledger/errors';
import type { Order } from '../../ledger/types';
import { canTransition, IllegalOrderTransition, isTerminalStatus, type OrderStatus } from '../../lib/order-status';
import { toDecimalString } from '../../lib/decimal';
import { lifecycleStatus, type ExchangeOrder } from '../../lib/exchange/types';

/**
 * Writes what the trading workflow does to the ledger: the intent before the exchange is called,
 * the exchange's answer, each fill, a refusal. Every method may be called again with the same
 * data (an activity retried after its first attempt committed) and then changes nothing: the
 * ledger is idempotent on the client order id and the exchange's fill id, and a status the order
 * already has, or has gone past, is not asked for again.
 *
 * Numbers from the engine and the exchange become decimal text here, once (lib/precision's
 * 15-significant-digit reading, which drops float noise), and the ledger works on that text.
 */

export interface TradeIntent {
  clientOrderId: string;
  symbol: string;
  side: 'buy' | 'sell';
  type: 'market' | 'limit' | 'stop_market';
  qty: number;
  price?: number;
  stopPrice?: number;
  decisionSeq?: number;
  reason: string;
  strategy?: { name: string; version: string; source: string; params: string };
  entryTag?: string;
}

export interface TradeFill {
  /** The exchange's trade id: the ledger's fill id. */
  tradeId: string;
  clientOrderId: string;
  /** Which of the decision's orders filled (entry, stop, target...): kept in the audit trail. */
  tag: string;
  side: 'buy' | 'sell';
  qty: number;
  price: number;
  /** In the symbol's quote currency. */
  fee: number;
  /** Epoch ms. */
  time: number;
}

/** The recorder the trading activities call (structurally the same as lib/trading/candle-io.ts's). */
export interface TradeRecorder {
  recordIntent(i: TradeIntent): Promise<unknown>;
  recordOrder(clientOrderId: string, order: ExchangeOrder): Promise<unknown>;
  recordFill(clientOrderId: string, fill: TradeFill): Promise<unknown>;
  recordRejection(clientOrderId: string, reason: string): Promise<unknown>;
  recordedFills(tradeIds: readonly string[]): Promise<ReadonlySet<string>>;
}

/** What a call did to an order: its status before, and the order as the ledger has it now. */
export interface OrderMove {
  before: OrderStatus;
  order: Order;
}

export type TradingMode = 'paper' | 'live' | 'replay';

export interface TradeRecorderContext {
  workflowId: string;
  mode: TradingMode;
  /** The venue key of the ledger's rows: the ExchangeAdapter's exchangeId ('paper' for the paper exchange). */
  exchange: string;
}

/** How far along the lifecycle a status is: a report of an earlier stage is old news, not a transition. */
const STAGE: Record<OrderStatus, number> = { intent: 0, submitted: 1, open: 2, partially_filled: 3, filled: 4, canceled: 4, rejected: 4, expired: 4 };

export class LedgerTradeRecorder implements TradeRecorder {
  private readonly ledger: Ledger;
  readonly context: Readonly<TradeRecorderContext>;

  constructor(ledger: Ledger, context: TradeRecorderContext) {
    if (!context.workflowId) throw new Error('LedgerTradeRecorder: workflowId is required (it is the audit trail actor)');
    if (!['paper', 'live', 'replay'].includes(context.mode)) throw new Error(`LedgerTradeRecorder: mode must be paper, live or replay, got ${JSON.stringify(context.mode)}`);
    if (!/^[a-z0-9]+$/.test(context.exchange ?? '')) throw new Error(`LedgerTradeRecorder: exchange must be a lowercase exchange id such as binance or paper, got ${JSON.stringify(context.exchange)}`);
    this.context = { ...context };
    this.ledger = ledger.withActor(`workflow:${context.workflowId}`).withAuditContext({ mode: context.mode });
  }

  /** Records the order before it is sent. Repeating it is a no-op (created: false); the same id for a different order throws OrderIntentConflict. */
  async recordIntent(i: TradeIntent): Promise<{ order: Order; created: boolean }> {
    return this.ledger.recordOrderIntent({
      clientOrderId: i.clientOrderId,
      exchange: this.context.exchange,
      symbol: i.symbol,
      side: i.side,
      type: i.type,
      qty: decimal(i.qty, 'qty', i.clientOrderId),
      price: i.price === undefined ? undefined : decimal(i.price, 'price', i.clientOrderId),
      stopPrice: i.stopPrice === undefined ? undefined : decimal(i.stopPrice, 'stopPrice', i.clientOrderId),
      workflowId: this.context.workflowId,
      decisionSeq: i.decisionSeq,
      reason: i.reason,
      ...(i.strategy ? { strategy: i.strategy } : {}),
      ...(i.entryTag !== undefined ? { entryTag: i.entryTag } : {}),
    });
  }

  /**
   * Records the exchange's view of the order (after placing, fetching or cancelling it): its
   * exchange order id and its status in the ledger's lifecycle. A report older than what the
   * ledger knows (`open` after fills made it `filled`) only attaches the exchange order id. A
   * contradiction (the ledger says canceled, the exchange filled) is not forced into the ledger:
   * it is written once to the audit trail as `order.status_conflict` for reconciliation.
   */
  async recordOrder(clientOrderId: string, order: ExchangeOrder): Promise<OrderMove> {
    if (order.clientOrderId !== undefined && order.clientOrderId !== clientOrderId) {
      throw new Error(`recordOrder ${clientOrderId}: the exchange order ${order.id} carries client order id ${order.clientOrderId}`);
    }
    const reported = lifecycleStatus(order);
    const reason = order.reason ?? `exchange ${this.context.exchange} reports ${order.status}${order.filledQty > 0 ? ` (filled ${order.filledQty} of ${order.qty})` : ''}`;
    return this.moveTo(clientOrderId, reported, { exchangeOrderId: order.id, reason, check: (o) => o.symbol === order.symbol || `it is a ${o.symbol} order, the exchange reports ${order.symbol}` });
  }

  /** Records one fill (position, trade and fees follow in the ledger). The same trade id again changes nothing (created: false). */
  async recordFill(clientOrderId: string, fill: TradeFill): Promise<{ before: OrderStatus; result: FillResult }> {
    if (fill.clientOrderId !== clientOrderId) throw new Error(`recordFill ${clientOrderId}: fill ${fill.tradeId} belongs to client order id ${fill.clientOrderId}`);
    const order = await this.order(clientOrderId);
    if (order.side !== fill.side) throw new Error(`recordFill ${clientOrderId}: fill ${fill.tradeId} is a ${fill.side}, the order a ${order.side}`);
    if (!Number.isFinite(fill.time)) throw new Error(`recordFill ${clientOrderId}: fill ${fill.tradeId} time must be epoch milliseconds, got ${fill.time}`);
    const [, quote] = marketCurrencies(order.symbol);
    const result = await this.ledger.withAuditContext({ tag: fill.tag }).recordFill({
      clientOrderId,
      fillId: fill.tradeId,
      qty: decimal(fill.qty, 'fill qty', clientOrderId),
      price: decimal(fill.price, 'fill price', clientOrderId),
      fee: decimal(fill.fee, 'fee', clientOrderId),
      feeCurrency: quote,
      ts: new Date(fill.time),
    });
    return { before: order.status, result };
  }

  /** The exchange (or the pre-send checks) refused the order. */
  async recordRejection(clientOrderId: string, reason: string): Promise<OrderMove> {
    return this.moveTo(clientOrderId, 'rejected', { reason });
  }

  /**
   * Which of these exchange trade ids are recorded as fills on this recorder's exchange. A fill
   * row commits with the order and position it moves, so a recorded one needs nothing more.
   */
  async recordedFills(tradeIds: readonly string[]): Promise<ReadonlySet<string>> {
    return this.ledger.knownFillIds(this.context.exchange, tradeIds);
  }

  private async order(clientOrderId: string): Promise<Order> {
    const order = await this.ledger.getOrder(clientOrderId);
    if (!order) throw new OrderNotFound(clientOrderId);
    if (order.exchange !== this.context.exchange) {
      throw new Error(`order ${clientOrderId} is recorded on exchange ${order.exchange}, this recorder writes for ${this.context.exchange}`);
    }
    return order;
  }

  private async moveTo(
    clientOrderId: string,
    to: OrderStatus,
    opts: { exchangeOrderId?: string; reason: string; check?: (o: Order) => true | string },
  ): Promise<OrderMove> {
    // Twice at most: another writer (a fill recorded concurrently) may move the order between the read and the write.
    for (let attempt = 1; ; attempt++) {
      const current = await this.order(clientOrderId);
      const problem = opts.check?.(current);
      if (typeof problem === 'string') throw new Error(`order ${clientOrderId}: ${problem}`);
      if (opts.exchangeOrderId !== undefined && current.exchangeOrderId !== null && current.exchangeOrderId !== opts.exchangeOrderId) {
        throw new Error(`order ${clientOrderId}: the ledger has exchange order id ${current.exchangeOrderId}, the exchange reports ${opts.exchangeOrderId} (one client order id, two exchange orders)`);
      }
      const attach = opts.exchangeOrderId !== undefined && current.exchangeOrderId === null ? { exchangeOrderId: opts.exchangeOrderId } : {};
      try {
        if (current.status === to || canTransition(current.status, to)) {
          return { before: current.status, order: await this.ledger.transitionOrder(clientOrderId, to, { ...attach, reason: opts.reason }) };
        }
        if (!isTerminalStatus(to) && STAGE[current.status] > STAGE[to]) {
          // Old news: the ledger is further along. Keep the exchange order id, nothing else.
          return { before: current.status, order: attach.exchangeOrderId ? await this.ledger.transitionOrder(clientOrderId, current.status, attach) : current };
        }
      } catch (err) {
        if (err instanceof IllegalOrderTransition && attempt < 2) continue;
        throw err;
      }
      await this.ledger.auditOnce('order.status_conflict', {
        clientOrderId,
        ledgerStatus: current.status,
        reportedStatus: to,
        exchangeOrderId: opts.exchangeOrderId ?? current.exchangeOrderId,
        reason: opts.reason,
      });
      return { before: current.status, order: current };
    }
  }
}

function decimal(x: number, what: string, clientOrderId: string): string {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`order ${clientOrderId}: ${what} must be a finite number, got ${String(x)}`);
  return toDecimalString(x);
}
