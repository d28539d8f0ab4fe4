export * from './metrics';
export * from './cagr';
export * from './streaks';
export * from './trade-durations';
export * from './trade-returns';
export * from './period-returns';
export * from './breakdown';
export * from './percentile';
export * from './monte-carlo';
export * from './sharpe-difference';
export * from './statistics';
export * from './buy-and-hold';
export * from './drawdown-curve';
export * from './trade-equity';
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
