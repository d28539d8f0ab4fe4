/**
 * Risk maths shared by the trading workflow and the backtester. Pure: no I/O, no clock, no
 * randomness, no Node imports, so it runs unchanged inside Temporal's workflow sandbox.
 */
export * from './config';
export * from './sizing';
export * from './protective';
export * from './limits';
export * from './stop-outs';
export * from './gates';
