/**
 * The order lifecycle as a closed state machine. Pure and dependency-free so workflows, the
 * paper exchange and the ledger share one table. The ledger's migration holds the same table
 * (order_status_transitions) and a trigger refuses anything else; a test keeps the two equal.
 */

export const ORDER_STATUSES = [
  /** Recorded in the ledger before the exchange is called: a crash after sending leaves a trace. */
  'intent',
  /** Sent; the exchange has not confirmed it yet. */
  'submitted',
  /** Resting on the book. */
  'open',
  'partially_filled',
  'filled',
  'canceled',
  'rejected',
  'expired',
] as const;

export type OrderStatus = (typeof ORDER_STATUSES)[number];

/**
 * from -> allowed next statuses. `intent` may jump straight to open/filled: a market order's
 * send can return filled, and reconciliation after a crash finds orders whose `submitted` step
 * was never recorded. `partially_filled -> partially_filled` is the one self-loop (each further
 * partial fill). Terminal statuses have no way out: a late fill on a canceled or expired order
 * is still recorded as a fill, but the order keeps its final status.
 */
export const ORDER_TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  intent: ['submitted', 'open', 'partially_filled', 'filled', 'canceled', 'rejected', 'expired'],
  submitted: ['open', 'partially_filled', 'filled', 'canceled', 'rejected', 'expired'],
  open: ['partially_filled', 'filled', 'canceled', 'expired'],
  partially_filled: ['partially_filled', 'filled', 'canceled', 'expired'],
  filled: [],
  canceled: [],
  rejected: [],
  expired: [],
};

export const TERMINAL_ORDER_STATUSES: readonly OrderStatus[] = ORDER_STATUSES.filter((s) => ORDER_TRANSITIONS[s].length === 0);

export function isOrderStatus(value: unknown): value is OrderStatus {
  return typeof value === 'string' && (ORDER_STATUSES as readonly string[]).includes(value);
}

export function isTerminalStatus(status: OrderStatus): boolean {
  return ORDER_TRANSITIONS[status].length === 0;
}

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return ORDER_TRANSITIONS[from]?.includes(to) ?? false;
}

/** Named so Temporal activities can list it in nonRetryableErrorTypes: retrying cannot make it legal. */
export class IllegalOrderTransition extends Error {
  override readonly name = 'IllegalOrderTransition';
  constructor(
    readonly from: string,
    readonly to: string,
    readonly clientOrderId?: string,
  ) {
    super(`illegal order transition ${from} -> ${to}${clientOrderId ? ` (order ${clientOrderId})` : ''}`);
  }
}

export function assertTransition(from: OrderStatus, to: OrderStatus, clientOrderId?: string): void {
  if (!isOrderStatus(from) || !isOrderStatus(to) || !canTransition(from, to)) {
    throw new IllegalOrderTransition(from, to, clientOrderId);
  }
}
