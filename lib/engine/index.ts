/**
 * The per-symbol trading engine, shared by the SymbolTraderWorkflow and the backtester. Pure: no
 * Node imports, no clock, no randomness, so it bundles into Temporal's workflow sandbox.
 */
export * from './types';
export { clientOrderId, clientOrderIdPrefix, cancelRequestId, parseClientOrderId, ORDER_CODES, type OrderCode, type ParsedClientOrderId } from './ids';
export { strategySignal, builtinParams } from './strategy';
export {
  initialSymbolState,
  decide,
  applyFill,
  applyRejection,
  applyOrderStatus,
  emergencyIntents,
  setStatus,
  sleeveEquity,
  watchedOrderIds,
  type DecideResult,
  type ApplyFillResult,
} from './engine';
export { runCandleStep, positionForStrategy, settle, applyOutcome, MAX_SEND_ROUNDS, EngineLoopError, type PreparedCandle, type ExecutionReport, type ExecutionOutcome, type FollowUp, type SettleOutcome, type StepCursor, type StepPorts, type StepOutcome } from './step';
export { markAccount, type Sleeve, type AccountMarks } from './portfolio';
