import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

import type {
  DecisionView,
  EmergencyCloseResult,
  MessageOrigin,
  PortfolioStateView,
  SymbolStateView,
} from '../lib/contracts/trading';

/**
 * Every message the trading workflows accept, defined once: the workflows, the `trader` CLI and
 * the Telegram bot import these definitions, so a name can never drift between sender and
 * receiver. The plain types they carry are in lib/contracts/trading.ts.
 */

// --- SymbolTraderWorkflow ---------------------------------------------------------------------

/** No new entries; protective exits keep working. */
export const pauseSignal = defineSignal<[MessageOrigin]>('pause');
/** Back to `active` (also lifts `reduce-only`; a `halted` symbol resumes only by this signal too). */
export const resumeSignal = defineSignal<[MessageOrigin]>('resume');
/** Only exits from now on (the open position may be closed or reduced, never increased). */
export const reduceOnlySignal = defineSignal<[MessageOrigin]>('reduceOnly');
/** Reload the model at the given version (or the registry's champion when omitted). */
export const reloadModelSignal = defineSignal<[{ version?: string } & MessageOrigin]>('reloadModel');
/** Close the open position at market, cancel working orders, and halt. Returns what it closed. */
export const emergencyCloseUpdate = defineUpdate<EmergencyCloseResult, [MessageOrigin]>('emergencyClose');
export const stateQuery = defineQuery<SymbolStateView>('state');
export const lastDecisionQuery = defineQuery<DecisionView | null>('lastDecision');

// --- PortfolioWorkflow ------------------------------------------------------------------------

/** Pause (symbol given) one symbol or (no symbol) every symbol. */
export const portfolioPauseSignal = defineSignal<[{ symbol?: string } & MessageOrigin]>('portfolioPause');
export const portfolioResumeSignal = defineSignal<[{ symbol?: string } & MessageOrigin]>('portfolioResume');
export const portfolioReduceOnlySignal = defineSignal<[{ symbol?: string } & MessageOrigin]>('portfolioReduceOnly');
/** Emergency close of every symbol; trips the kill switch. Returns one result per symbol. */
export const portfolioEmergencyUpdate = defineUpdate<EmergencyCloseResult[], [MessageOrigin]>('portfolioEmergency');
export const portfolioStateQuery = defineQuery<PortfolioStateView>('portfolioState');
