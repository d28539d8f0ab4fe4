import fs from 'node:fs';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createAlertActivities, type AlertDispatcher } from '../activities/alerts';
import { TradingControl } from '../control/trading-control';
import { FEATURE_SCHEMA } from '../lib/features';
import { RiskConfig } from '../lib/risk';
import { stateQuery } from '../workflows/messages';
import { tradingHarness, tradingTmpDir, type RunningWorker, type TradingHarness } from './trading';
import { fixtureCandleFile } from './fixtures';
import { portfolioWorkflowId, type EmergencyCloseResult, type SymbolStateView } from '../lib/contracts/trading';
import type { PortfolioInput } from '../lib/contracts/workflows';

/**
 * The REAL trading workflows for the control and Telegram end-to-end tests: portfolioWorkflow
 * (workflows/portfolio.ts), which starts one symbolTraderWorkflow per symbol, with the real
 * trading activities (testkit/trading.ts wires them as `trader up --replay` does: replay
 * venue, paper exchange on PostgreSQL, ledger recorder, feature cache) and the real alert
 * activity feeding the test's AlertDispatcher, on a fresh embedded PostgreSQL database and a
 * fresh task queue of the given Temporal server.
 *
 * The symbols replay recorded candles at a fixed speed, so they keep running (and can be paused,
 * resumed and closed) while a test talks to them. Each replays a WINDOW of a recorded file,
 * chosen so the rules strategy behaves the way the tests need from the first decision on (the
 * engine decides from candle FEATURE_SCHEMA.warmup of the window). The windows were found by
 * running the backtester (lib/backtest, `trader backtest`) over candidate windows; a replay
 * through Temporal makes the same trades (test/e2e/parity.test.ts). Tests still read positions by
 * query and assert what they rely on (e.g. which symbols hold one) rather than assume it.
 */

export interface ReplayWindow {
  /** A fixture candle file (testkit/fixtures.ts; its name gives symbol and timeframe). */
  file: string;
  /** First row (0-based, header excluded) and number of rows to replay. */
  from: number;
  rows: number;
}

/** Warm-up rows plus `n` decisions. */
const WARMUP_PLUS = (n: number) => FEATURE_SCHEMA.warmup + n;

/**
 * Default windows (1h candles; "candle k" = k-th decision):
 * - BTC/USDT from row 119: enters on candle 0, exits at take-profit on candle 22.
 * - ETH/USDT from row 601: enters on candle 0, exits on a signal on candle 14.
 * - XRP/USDT from row 0: no entry in its window (stays flat).
 * (Found with `trader backtest --strategy rules` over windows of the fixture files.)
 * So from their first decision on, BTC and ETH hold a position for 14 candles (~20 s at
 * DEFAULT_SPEED) while XRP is flat. The windows start at different rows: each symbol replays on
 * its own simulated clock, as in `trader up --replay`.
 */
export const HOLDING_WINDOWS: readonly ReplayWindow[] = [
  { file: 'fixture_BTC-USDT_1h.csv', from: 119, rows: WARMUP_PLUS(80) },
  { file: 'synthetic_ETH-USDT_1h.csv', from: 601, rows: WARMUP_PLUS(80) },
  { file: 'synthetic_XRP-USDT_1h.csv', from: 0, rows: WARMUP_PLUS(80) },
];

/** ETH/USDT from row 223 enters on candle 0 and is stopped out at a loss on candle 2; BTC as above. */
export const LOSING_WINDOWS: readonly ReplayWindow[] = [
  { file: 'fixture_BTC-USDT_1h.csv', from: 119, rows: WARMUP_PLUS(80) },
  { file: 'synthetic_ETH-USDT_1h.csv', from: 223, rows: WARMUP_PLUS(80) },
];

/**
 * Real seconds per 1h candle is 3600 / speed: 2400 gives 1.5 s, slow enough that a test talks to
 * symbols that hold their positions for ~20 s, fast enough that the first entries come in ~3 s.
 */
export const DEFAULT_SPEED = 2400;

export interface FixtureOptions {
  alerts: AlertDispatcher;
  windows?: readonly ReplayWindow[];
  /** Simulated seconds per real second (see DEFAULT_SPEED). */
  speed?: number;
  /** false: the symbol workflows are started directly (as the portfolio's activity would) and no portfolio runs. */
  withPortfolio?: boolean;
  limits?: Partial<PortfolioInput['limits']>;
  /** How often the portfolio checks equity (ms). */
  checkEveryMs?: number;
}

/** The audit row of the portfolio's emergencyCloseSymbols activity (activities/trading/index.ts). */
export interface KillSwitchClose {
  ts: Date;
  by: string;
  reason?: string;
  results: EmergencyCloseResult[];
}

export interface TradingFixture {
  account: string;
  /** Label of the symbol workflows (`trader/<exchange>/<SYMBOL>`), what TradingControl addresses. */
  exchange: string;
  symbols: string[];
  harness: TradingHarness;
  control: TradingControl;
  state(symbol: string): Promise<SymbolStateView>;
  /** Polls until every listed symbol holds a position; returns the states then. */
  waitForPositions(symbols: string[], timeoutMs?: number): Promise<SymbolStateView[]>;
  /** Polls `probe` until it returns a value (not undefined/false). */
  waitFor<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs?: number): Promise<T>;
  /** Signals the portfolio workflow received (its history), to prove what was or was not sent. */
  portfolioSignals(): Promise<string[]>;
  /** Signals and updates every symbol workflow received (their histories), as `SYMBOL:name`. */
  symbolMessages(): Promise<string[]>;
  /** What the portfolio's kill switch closed, as its emergencyCloseSymbols activity audited it. */
  killSwitchCloses(): Promise<KillSwitchClose[]>;
  terminatePortfolio(): Promise<void>;
  stop(): Promise<void>;
}

let seq = 0;

/** Writes `rows` rows of a fixture candle file from row `from` under `dir`, with its conventional name. */
export function writeWindow(dir: string, w: ReplayWindow): string {
  const src = fixtureCandleFile(w.file);
  if (!Number.isInteger(w.from) || w.from < 0 || !Number.isInteger(w.rows) || w.rows < 2) {
    throw new RangeError(`window of ${w.file}: from must be an integer >= 0 and rows an integer >= 2, got from ${w.from}, rows ${w.rows}`);
  }
  const lines = fs.readFileSync(src, 'utf8').split('\n').filter((l) => l.length > 0);
  if (lines.length - 1 < w.from + w.rows) throw new RangeError(`${w.file} has ${lines.length - 1} rows, fewer than ${w.from} + ${w.rows}`);
  const out = path.join(dir, w.file);
  fs.writeFileSync(out, [lines[0], ...lines.slice(1 + w.from, 1 + w.from + w.rows)].join('\n') + '\n');
  return out;
}

async function poll<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function startTradingFixture(env: TestWorkflowEnvironment, opts: FixtureOptions): Promise<TradingFixture> {
  const n = ++seq;
  const account = `acct${process.pid}x${n}`;
  const dir = tradingTmpDir('dt-fixture-');
  const files = (opts.windows ?? HOLDING_WINDOWS).map((w) => writeWindow(dir, w));
  let h: TradingHarness | undefined;
  let worker: RunningWorker | undefined;
  try {
    h = await tradingHarness(env, { files, account, exchange: `fx${process.pid}x${n}` });
    const harness = h;
    worker = await harness.startWorker(createAlertActivities(opts.alerts));
    const client = env.client;
    const inputs = harness.symbols.map((s) => harness.symbolInput(s, { speed: opts.speed ?? DEFAULT_SPEED }));
    const defaults = RiskConfig.parse({});
    if (opts.withPortfolio ?? true) {
      const input: PortfolioInput = {
        account,
        exchange: harness.exchange,
        mode: harness.mode,
        symbols: inputs,
        taskQueue: harness.taskQueue,
        limits: { maxDrawdown: defaults.maxDrawdown, dailyLossLimit: defaults.dailyLossLimit, ...opts.limits },
        checkEveryMs: opts.checkEveryMs ?? 2_000,
      };
      await client.workflow.start('portfolioWorkflow', { taskQueue: harness.taskQueue, workflowId: portfolioWorkflowId(account), args: [input] });
    } else {
      // What the portfolio's startSymbolWorkflows activity does, called directly.
      await harness.activities.startSymbolWorkflows({ workflows: inputs, taskQueue: harness.taskQueue });
    }
    const control = new TradingControl(client, { account, exchange: harness.exchange, queryTimeoutMs: 5_000, emergencyTimeoutMs: 30_000 });
    // Visibility is eventually consistent: wait until every symbol workflow is listed.
    await poll('the symbol workflows to appear in visibility', async () => (await control.listSymbols()).length === harness.symbols.length, 20_000);

    const state = (symbol: string) => client.workflow.getHandle(harness.workflowId(symbol)).query(stateQuery);
    const running = worker;
    let stopped = false;
    return {
      account,
      exchange: harness.exchange,
      symbols: harness.symbols,
      harness,
      control,
      state,
      waitFor: (what, probe, timeoutMs = 20_000) => poll(what, probe, timeoutMs),
      waitForPositions: (symbols, timeoutMs = 20_000) =>
        poll(
          `positions in ${symbols.join(', ')}`,
          async () => {
            const states = await Promise.all(symbols.map(state));
            return states.every((s) => s.position) && states;
          },
          timeoutMs,
        ),
      async portfolioSignals() {
        const history = await client.workflow.getHandle(portfolioWorkflowId(account)).fetchHistory();
        return (history.events ?? []).flatMap((e) => (e.workflowExecutionSignaledEventAttributes ? [e.workflowExecutionSignaledEventAttributes.signalName ?? '?'] : []));
      },
      async symbolMessages() {
        const perSymbol = await Promise.all(
          harness.symbols.map(async (s) => {
            const history = await client.workflow.getHandle(harness.workflowId(s)).fetchHistory();
            return (history.events ?? []).flatMap((e) => {
              const name = e.workflowExecutionSignaledEventAttributes?.signalName ?? e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name;
              return name ? [`${s}:${name}`] : [];
            });
          }),
        );
        return perSymbol.flat();
      },
      async killSwitchCloses() {
        const rows = await harness.db.ledger.auditTrail({ event: 'killswitch.emergency_close' });
        return rows.map((r) => ({ ts: r.ts, ...(r.payload as Omit<KillSwitchClose, 'ts'>) }));
      },
      async terminatePortfolio() {
        await client.workflow.getHandle(portfolioWorkflowId(account)).terminate('test: portfolio down');
      },
      async stop() {
        if (stopped) return;
        stopped = true;
        const ids = [portfolioWorkflowId(account), ...harness.symbols.map((s) => harness.workflowId(s))];
        await Promise.all(ids.map((id) => client.workflow.getHandle(id).terminate('test over').catch(() => undefined)));
        await running.stop();
        await harness.close();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await worker?.stop().catch(() => undefined);
    await h?.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
