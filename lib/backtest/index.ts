export * from './metrics';
export {
  simulateBacktest,
  BacktestInputError,
  BacktestOptionsSchema,
  DEFAULT_FEE_BPS,
  DEFAULT_SLIPPAGE_BPS,
  type SimulateOptions,
  type BacktestSeries,
  type BacktestResult,
  type OpenPositionReport,
  type SymbolSummary,
} from './simulate';
