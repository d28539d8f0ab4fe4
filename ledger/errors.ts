/**
 * Ledger errors, named so Temporal activities can list them in nonRetryableErrorTypes: each
 * means the request itself is wrong (or the ledger disagrees with it), and a retry returns the
 * same answer. Transient database errors (connection lost, serialization) are not wrapped.
 */

export class OrderNotFound extends Error {
  override readonly name = 'OrderNotFound';
  constructor(readonly clientOrderId: string) {
    super(`no order with client order id ${clientOrderId} in the ledger`);
  }
}

/** The client order id is already taken by a different order: the id derivation collided. */
export class OrderIntentConflict extends Error {
  override readonly name = 'OrderIntentConflict';
  constructor(readonly clientOrderId: string, readonly existing: Record<string, unknown>, readonly requested: Record<string, unknown>) {
    super(`client order id ${clientOrderId} is already recorded for a different order: ${JSON.stringify(existing)} vs ${JSON.stringify(requested)}`);
  }
}

/** The same exchange fill id was reported before with different values. */
export class FillConflict extends Error {
  override readonly name = 'FillConflict';
  constructor(readonly fillId: string, detail: string) {
    super(`fill ${fillId} is already recorded with different values: ${detail}`);
  }
}

/** A fee in a third currency (e.g. BNB) needs feeQuote: the ledger does not guess a conversion rate. */
export class FeeConversionRequired extends Error {
  override readonly name = 'FeeConversionRequired';
  constructor(readonly fillId: string, readonly feeCurrency: string, readonly symbol: string) {
    super(`fill ${fillId} pays its fee in ${feeCurrency}, neither side of ${symbol}: pass feeQuote (the fee in the quote currency)`);
  }
}

/** A fill would take an order's filled quantity past the order's quantity. */
export class OrderOverfilled extends Error {
  override readonly name = 'OrderOverfilled';
  constructor(readonly clientOrderId: string, readonly fillId: string) {
    super(`fill ${fillId} would take order ${clientOrderId} past its quantity (a double-counted fill, or an intent recorded with the wrong quantity)`);
  }
}
