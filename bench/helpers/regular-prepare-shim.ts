/**
 * Measurement variant only (bench decision-latency): bundled in place of `@temporalio/workflow`
 * for the workflow code, so SymbolTraderWorkflow's `proxyLocalActivities` becomes a regular
 * activity proxy with the same timeouts and retry policy, and nothing else changes. The product
 * workflow file is untouched; this lets the bench compare the two choices on the same candles.
 */
import { proxyActivities } from '@temporalio/workflow/lib/index';
import type { ActivityOptions, LocalActivityOptions } from '@temporalio/common';

export * from '@temporalio/workflow/lib/index';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- mirrors the SDK's own signature
export function proxyLocalActivities<A = any>(options: LocalActivityOptions): A {
  const { localRetryThreshold: _threshold, ...regular } = options;
  return proxyActivities<A extends object ? A : never>(regular as ActivityOptions) as unknown as A;
}
