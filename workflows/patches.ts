import { patched } from '@temporalio/workflow';

/**
 * The workflows' patches, asked for where replay cannot move them: at the very start of a run.
 *
 * `patched(id)` answers in a replay from the workflow task it is called in (true when that task's
 * events hold the patch's marker). Code that runs after a local activity's result may run one
 * workflow task later live than in a replay: a recorded history of the strategy-switch test
 * holds the candle read's marker in the task that scheduled the read, and the order batch (with
 * the patch's marker) in the task after it, while a replay resolves the read, and so reaches the
 * patch, in the first of the two. The patch then answered false in the replay, and the replay
 * failed ("Non-deprecated patch marker encountered ... but there is no corresponding change
 * command"); live workers replaying a cached-out workflow can hit the same.
 *
 * So a run started by this code records one marker, `patches-at-start`, as the first command of
 * its first task, before any activity, and every patch below holds for it without a marker of its
 * own. A history recorded before (no such marker; its first task is always replayed) asks each
 * patch where it always did, and replays as it ran.
 *
 * The list is closed: `patches-at-start` stands for exactly these changes. A later change asks
 * for its own `patched('its-id')` at the start of the run, next to this call, never after an
 * activity. An id and its old branch leave once no history without it is kept
 * (test/histories/README.md).
 */
export type PatchId =
  | 'follow-ups-in-one-activity'
  | 'keep-status-changed-during-step'
  | 'alert-order-rejected'
  | 'status-commands-by-activity'
  | 'close-alongside-trip-alert'
  | 'reconcile-on-timer'
  | 'equity-snapshots';

/** Call first thing in a workflow function; the returned function answers `patched(id)` for the run. */
export function runPatches(): (id: PatchId) => boolean {
  const atStart = patched('patches-at-start');
  return (id) => atStart || patched(id);
}
