/**
 * When a long-lived trading workflow (one per symbol, one per account) starts a new run with its
 * state carried over: once its history passes the configured number of events, well under the
 * server's warning at 10,240 events / 10 MB, or when the server says so itself
 * (`continueAsNewSuggested`, set near its history limits).
 */

export const DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS = 4000;

/** The two fields of Temporal's `workflowInfo()` this reads. */
export interface RunHistory {
  historyLength: number;
  continueAsNewSuggested: boolean;
}

export function continueAsNewDue(run: RunHistory, afterEvents: number = DEFAULT_CONTINUE_AS_NEW_AFTER_EVENTS): boolean {
  return run.historyLength > afterEvents || run.continueAsNewSuggested;
}
