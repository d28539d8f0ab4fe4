export * from './metrics';
export {
  runBacktest,
  BacktestInputError,
  BacktestOptionsSchema,
  isBacktestInputError,
  DEFAULT_FEE_BPS,
  DEFAULT_SLIPPAGE_BPS,
  type BacktestOptions,
  type BacktestResult,
  type OpenPositionReport,
  type SymbolSummary,
} from './run';
export { FrozenPaperStateStore } from '../exchange/frozen-paper-store';
