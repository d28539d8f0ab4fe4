/**
 * Strategies: the interface a user's strategy implements, the built-ins written against it, and
 * the code that runs one on a closed candle (the same in the workflow's candle read, the
 * backtester and `trader strategy check`). Pure: it bundles into workflow code like lib/engine.
 *
 * A strategy file imports what it needs from here as `durable-trader/strategy` (the loader maps
 * the name to this folder), including zod as `z` and technicalindicators as `ti`.
 */
export * from './types';
export * from './run';
export { BUILTIN_STRATEGIES, isBuiltinStrategy } from './builtins';
export { z } from 'zod';
export * as ti from 'technicalindicators';
export { StrategyHost } from './host';
export { alignEnd } from './columns';
