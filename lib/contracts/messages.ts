import type { MessageOrigin, TradingStatus } from './trading';

/**
 * The names of the messages the trading workflows accept, as recorded in workflow histories
 * (never rename one), and what each carries. workflows/messages.ts defines the signals, queries
 * and updates from these names (defineSignal is workflow API, which lib/ does not import); the
 * CLI, the Telegram bot and the tests use those definitions, and activities, which do not import
 * workflow code, send by these names with these argument types.
 */
export const MESSAGE_NAMES = {
  // SymbolTraderWorkflow
  pause: 'pause',
  resume: 'resume',
  reduceOnly: 'reduceOnly',
  reloadModel: 'reloadModel',
  setStrategy: 'setStrategy',
  emergencyClose: 'emergencyClose',
  state: 'state',
  lastDecision: 'lastDecision',
  // PortfolioWorkflow
  portfolioPause: 'portfolioPause',
  portfolioResume: 'portfolioResume',
  portfolioReduceOnly: 'portfolioReduceOnly',
  portfolioEmergency: 'portfolioEmergency',
  portfolioState: 'portfolioState',
  portfolioSetStrategy: 'portfolioSetStrategy',
} as const;

/** Who asked: a symbol's status signals (pause, resume, reduceOnly), emergencyClose and portfolioEmergency. */
export type CommandArgs = [MessageOrigin];
/** reloadModel: the version to load (the registry's champion when omitted). */
export type ReloadModelArgs = [{ version?: string } & MessageOrigin];
/** setStrategy: the strategy a symbol switches to at its next candle (checked by the portfolio first). */
export type SetStrategyArgs = [{ ref: string; params?: Record<string, unknown>; /** `name@version`, as the check loaded it (for the alert). */ label?: string } & MessageOrigin];
/** portfolioSetStrategy: one symbol's switch, checked on a trading worker (it loads, its parameters are valid) before it is passed on. */
export type PortfolioSetStrategyArgs = [{ symbol: string; ref: string; params?: Record<string, unknown> } & MessageOrigin];

/** The portfolio's status signals: one symbol (symbol given) or every symbol. */
export type PortfolioStatusArgs = [{ symbol?: string } & MessageOrigin];

/** The signal that puts a symbol in each status an operator or the portfolio may ask for. */
export const STATUS_SIGNAL_NAMES = {
  active: MESSAGE_NAMES.resume,
  paused: MESSAGE_NAMES.pause,
  'reduce-only': MESSAGE_NAMES.reduceOnly,
} as const satisfies Record<Exclude<TradingStatus, 'halted'>, string>;
