import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { retrainFailedAlert, type Alert } from '../lib/alerts';
import { TradingWatchdog, type QueueObservation, type SymbolObservation, type WatchdogThresholds } from '../lib/watchdog';
import { RETRAIN_WORKFLOW_TYPE } from '../lib/contracts/retrain';
import { stateQuery } from '../workflows/messages';
import type { AppConfig } from '../infra/config';
import type { TradingControl } from './trading-control';

/**
 * The trading watchdog: a dead trading worker cannot send its own alert, so a process that does
 * not run it (the Telegram worker, `trader up` beside its worker) looks from outside, every
 * `intervalMs`: the trading task queue's pollers (DescribeTaskQueue), every running symbol
 * workflow's state (its last candle, by query), and retrains that failed since it started. What
 * counts as stopped is lib/watchdog.ts's; alerts go to the process's alert queue.
 */

export interface WatchdogOptions extends WatchdogThresholds {
  client: Client;
  /** The symbol workflows' account and exchange: how they are listed and queried. */
  control: TradingControl;
  taskQueue: string;
  /** For the alerts' text. */
  temporalAddress: string;
  intervalMs: number;
  raise(alert: Alert): void;
  log: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  now?: () => number;
}

// Temporal's enums (temporal.api.enums.v1), by value: @temporalio/proto is not a direct dependency.
const TASK_QUEUE_KIND_NORMAL = 1;
const TASK_QUEUE_TYPE_WORKFLOW = 1;
const TASK_QUEUE_TYPE_ACTIVITY = 2;

export class Watchdog {
  private readonly judge: TradingWatchdog;
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly retrainsSeen = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly o: WatchdogOptions) {
    this.now = o.now ?? Date.now;
    this.startedAt = this.now();
    this.judge = new TradingWatchdog({ noPollerAfterMs: o.noPollerAfterMs, replayStallMinMs: o.replayStallMinMs }, o.temporalAddress, this.startedAt);
  }

  /** Checks every intervalMs until stop(); a check that fails is logged and the next one runs. */
  start(): this {
    const tick = () => {
      this.running = this.check()
        .then(
          () => undefined,
          (err: unknown) => this.o.log.warn({ err }, 'watchdog check failed'),
        )
        .finally(() => {
          // Never keeps the process alive on its own.
          if (!this.stopped) this.timer = setTimeout(tick, this.o.intervalMs).unref();
        });
    };
    this.o.log.info({ taskQueue: this.o.taskQueue, intervalMs: this.o.intervalMs, noPollerAfterMs: this.o.noPollerAfterMs }, 'trading watchdog running');
    tick();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }

  /** One round: observe, judge, raise. Returns the alerts it raised. */
  async check(): Promise<Alert[]> {
    const queue = await this.observeQueue();
    const alerts = this.judge.queue(queue, this.now());
    if (queue.error === undefined) {
      alerts.push(...this.judge.symbolsSeen(await this.observeSymbols(), this.now()));
      alerts.push(...(await this.failedRetrains()));
    }
    for (const a of alerts) this.o.raise(a);
    return alerts;
  }

  private async observeQueue(): Promise<QueueObservation> {
    const describe = (taskQueueType: number) =>
      this.o.client.workflowService.describeTaskQueue({
        namespace: this.o.client.options.namespace,
        taskQueue: { name: this.o.taskQueue, kind: TASK_QUEUE_KIND_NORMAL },
        taskQueueType,
      });
    try {
      const answers = await this.o.client.withDeadline(this.now() + 10_000, () => Promise.all([describe(TASK_QUEUE_TYPE_WORKFLOW), describe(TASK_QUEUE_TYPE_ACTIVITY)]));
      const pollers = answers.flatMap((a) => a.pollers ?? []);
      const times = pollers.flatMap((p) => (p.lastAccessTime ? [tsToMs(p.lastAccessTime)] : []));
      return { taskQueue: this.o.taskQueue, pollers: new Set(pollers.map((p) => p.identity)).size, lastPollAt: times.length > 0 ? Math.max(...times) : null };
    } catch (err) {
      return { taskQueue: this.o.taskQueue, pollers: 0, lastPollAt: null, error: err instanceof Error ? err.message : String(err) };
    }
  }

  private async observeSymbols(): Promise<SymbolObservation[]> {
    const running = await this.o.control.listSymbols();
    // Without a worker a query waits for its deadline: keep it short, and skip the queries while
    // the queue is known to have no worker (each symbol is then judged on what it said last).
    if (this.judge.noWorker) return running.map((r) => ({ symbol: r.symbol, unreachable: 'no trading worker' }));
    const deadline = Math.min(this.o.intervalMs, 5_000);
    return Promise.all(
      running.map(async (r): Promise<SymbolObservation> => {
        try {
          const view = await this.o.client.withDeadline(this.now() + deadline, () => this.o.client.workflow.getHandle(r.workflowId).query(stateQuery));
          return { symbol: r.symbol, view };
        } catch (err) {
          return { symbol: r.symbol, unreachable: err instanceof Error ? err.message : String(err) };
        }
      }),
    );
  }

  /** Retrain runs that failed or timed out since the watchdog started, each alerted once. */
  private async failedRetrains(): Promise<Alert[]> {
    const since = new Date(this.startedAt).toISOString();
    const out: Alert[] = [];
    try {
      const query = `WorkflowType = '${RETRAIN_WORKFLOW_TYPE}' AND ExecutionStatus IN ('Failed', 'TimedOut') AND CloseTime > '${since}'`;
      for await (const wf of this.o.client.workflow.list({ query })) {
        if (this.retrainsSeen.has(wf.runId)) continue;
        this.retrainsSeen.add(wf.runId);
        out.push(retrainFailedAlert({ workflowId: wf.workflowId, status: wf.status.name, error: await this.failureOf(wf.workflowId, wf.runId) }));
      }
    } catch (err) {
      this.o.log.warn({ err }, 'watchdog could not list failed retrains');
    }
    return out;
  }

  private async failureOf(workflowId: string, runId: string): Promise<string> {
    try {
      await this.o.client.workflow.getHandle(workflowId, runId).result();
      return 'unknown failure';
    } catch (err) {
      // WorkflowFailedError -> ActivityFailure -> ApplicationFailure: the innermost message says what broke.
      let e: unknown = err;
      while (e instanceof Error && e.cause instanceof Error) e = e.cause;
      return (e instanceof Error ? e.message : String(e)) || 'unknown failure';
    }
  }
}

/** The watchdog as a process runs it, from the configuration; null when WATCHDOG=false. */
export function startWatchdog(
  cfg: Pick<AppConfig, 'watchdog' | 'temporal'>,
  o: Pick<WatchdogOptions, 'client' | 'control' | 'temporalAddress' | 'raise' | 'log'>,
): Watchdog | null {
  if (!cfg.watchdog.enabled) return null;
  const { noPollerAfterMs, intervalMs } = cfg.watchdog;
  // A replay's symbol counts as stalled after the same quiet time as a missing worker.
  return new Watchdog({ ...o, taskQueue: cfg.temporal.taskQueue, intervalMs, noPollerAfterMs, replayStallMinMs: noPollerAfterMs }).start();
}
