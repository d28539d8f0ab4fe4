import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

import type { HyperoptProgress } from '../lib/contracts/hyperopt';
import type { DecisionView, EmergencyCloseResult, PortfolioStateView, StrategySwitchResult, SymbolStateView } from '../lib/contracts/trading';
import { MESSAGE_NAMES as N, type PortfolioStatusArgs, type ReloadModelArgs, type CommandArgs, type SetStrategyArgs, type PortfolioSetStrategyArgs } from '../lib/contracts/messages';

/**
 * Every message the trading workflows accept, defined once: the workflows, the `trader` CLI and
 * the Telegram bot import these definitions, so a name can never drift between sender and
 * receiver. Their names and arguments are in lib/contracts/messages.ts (activities send by them),
 * the plain types they carry in lib/contracts/trading.ts.
 */

// --- SymbolTraderWorkflow ---------------------------------------------------------------------

/** No new entries; protective exits keep working. */
export const pauseSignal = defineSignal<CommandArgs>(N.pause);
/** Back to `active` (also lifts `reduce-only`; a `halted` symbol resumes only by this signal too). */
export const resumeSignal = defineSignal<CommandArgs>(N.resume);
/** Only exits from now on (the open position may be closed or reduced, never increased). */
export const reduceOnlySignal = defineSignal<CommandArgs>(N.reduceOnly);
/** Reload the model at the given version (or the registry's champion when omitted). */
export const reloadModelSignal = defineSignal<ReloadModelArgs>(N.reloadModel);
/** Close the open position at market, cancel working orders, and halt. Returns what it closed. */
/** Switch to another strategy (or version, or parameters) from the next candle; send it through the portfolio, which checks it first. */
export const setStrategySignal = defineSignal<SetStrategyArgs>(N.setStrategy);
export const emergencyCloseUpdate = defineUpdate<EmergencyCloseResult, CommandArgs>(N.emergencyClose);
export const stateQuery = defineQuery<SymbolStateView>(N.state);
export const lastDecisionQuery = defineQuery<DecisionView | null>(N.lastDecision);

// --- PortfolioWorkflow ------------------------------------------------------------------------

/** Pause (symbol given) one symbol or (no symbol) every symbol. */
export const portfolioPauseSignal = defineSignal<PortfolioStatusArgs>(N.portfolioPause);
export const portfolioResumeSignal = defineSignal<PortfolioStatusArgs>(N.portfolioResume);
export const portfolioReduceOnlySignal = defineSignal<PortfolioStatusArgs>(N.portfolioReduceOnly);
/** Emergency close of every symbol; trips the kill switch. Returns one result per symbol. */
export const portfolioEmergencyUpdate = defineUpdate<EmergencyCloseResult[], CommandArgs>(N.portfolioEmergency);
/** Check a strategy switch on a trading worker, audit it, and pass it on to the symbol; refused with the reason when it cannot run. */
export const portfolioSetStrategyUpdate = defineUpdate<StrategySwitchResult, PortfolioSetStrategyArgs>(N.portfolioSetStrategy);
export const portfolioStateQuery = defineQuery<PortfolioStateView>(N.portfolioState);

/** A hyperopt run's progress: trials asked, complete and failed, the best so far (the CLI's progress bar). */
export const hyperoptProgressQuery = defineQuery<HyperoptProgress & { total: number }>('hyperoptProgress');
