import { DefaultLogger, Worker, bundleWorkflowCode } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createAlertActivities, type AlertDispatcher } from '../../activities/alerts';
import { TradingControl } from '../../client/control';
import { emergencyCloseUpdate, portfolioWorkflowId, stateQuery, symbolWorkflowId, type SymbolStateView } from '../../workflows/messages';
import { ExchangeKey, ModeKey, SymbolKey, TradingStatusKey } from '../../workflows/search-attributes';
import { freshTaskQueue } from '../helpers/temporal';
import type { DoubleActivities } from './trading-double';

/**
 * Running trading workflows for the control and Telegram tests: one portfolio and one workflow
 * per symbol, some holding a position, behind a worker on a fresh task queue.
 *
 * `TRADING_FIXTURE=real` selects the real workflows of workflows/ (SymbolTraderWorkflow and
 * PortfolioWorkflow with the trading activities); until the lead wires that variant in
 * startRealFixture, the default is the test double in ./trading-double.ts. Tests only use the
 * TradingFixture interface, so they run unchanged against either.
 */

export interface FixtureSymbol {
  symbol: string;
  /** Open a position of this size at entryPrice, marked at markPrice. */
  position?: { qty: number; entryPrice: number; markPrice: number };
}

export interface TradingFixture {
  kind: 'double' | 'real';
  account: string;
  exchange: string;
  symbols: string[];
  control: TradingControl;
  state(symbol: string): Promise<SymbolStateView>;
  /** Signals the portfolio workflow received (its history), to prove what was or was not sent. */
  portfolioSignals(): Promise<string[]>;
  terminatePortfolio(): Promise<void>;
  stop(): Promise<void>;
}

export interface FixtureOptions {
  symbols: FixtureSymbol[];
  alerts: AlertDispatcher;
  withPortfolio?: boolean;
}

let seq = 0;
let bundle: ReturnType<typeof bundleWorkflowCode> | undefined;

export async function startTradingFixture(env: TestWorkflowEnvironment, opts: FixtureOptions): Promise<TradingFixture> {
  const which = process.env.TRADING_FIXTURE ?? 'double';
  if (which === 'real') return startRealFixture(env, opts);
  if (which !== 'double') throw new Error(`TRADING_FIXTURE must be 'double' or 'real', got ${which}`);
  return startDoubleFixture(env, opts);
}

/** The real workflows of workflows/. For the lead to complete when the trading worker is wired. */
export async function startRealFixture(_env: TestWorkflowEnvironment, _opts: FixtureOptions): Promise<TradingFixture> {
  throw new Error(
    'TRADING_FIXTURE=real is not wired yet: start portfolioWorkflow (workflows/portfolio.ts) with the trading activities and ' +
      'createAlertActivities(opts.alerts), open the given positions through the paper exchange, and return a TradingFixture',
  );
}

async function startDoubleFixture(env: TestWorkflowEnvironment, opts: FixtureOptions): Promise<TradingFixture> {
  const n = ++seq;
  const exchange = `testex${process.pid}x${n}`;
  const account = `acct-${process.pid}-${n}`;
  const taskQueue = freshTaskQueue('trading-double');
  const client = env.client;
  bundle ??= bundleWorkflowCode({ workflowsPath: require.resolve('./trading-double'), logger: new DefaultLogger('WARN') });
  const activities: DoubleActivities = {
    ...createAlertActivities(opts.alerts),
    async closeSymbols({ workflowIds, origin }) {
      return Promise.all(workflowIds.map((id) => client.workflow.getHandle(id).executeUpdate(emergencyCloseUpdate, { args: [origin] })));
    },
  };
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    workflowBundle: await bundle,
    activities,
  });
  const running = worker.run();
  const symbols = opts.symbols.map((s) => s.symbol);
  for (const s of opts.symbols) {
    await client.workflow.start('symbolTraderWorkflow', {
      taskQueue,
      workflowId: symbolWorkflowId(exchange, s.symbol),
      args: [{ symbol: s.symbol, exchange, position: s.position }],
      typedSearchAttributes: [
        { key: SymbolKey, value: s.symbol },
        { key: ExchangeKey, value: exchange },
        { key: ModeKey, value: 'paper' },
        { key: TradingStatusKey, value: 'active' },
      ],
    });
  }
  if (opts.withPortfolio ?? true) {
    await client.workflow.start('portfolioWorkflow', { taskQueue, workflowId: portfolioWorkflowId(account), args: [{ account, exchange, symbols }] });
  }
  const control = new TradingControl(client, { account, exchange, queryTimeoutMs: 5_000, emergencyTimeoutMs: 30_000 });
  // Visibility is eventually consistent: wait until every symbol is listed.
  const deadline = Date.now() + 15_000;
  while ((await control.listSymbols()).length < symbols.length) {
    if (Date.now() > deadline) throw new Error('symbol workflows did not appear in visibility within 15 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const ids = [...symbols.map((s) => symbolWorkflowId(exchange, s)), portfolioWorkflowId(account)];
  return {
    kind: 'double',
    account,
    exchange,
    symbols,
    control,
    state: (symbol) => client.workflow.getHandle(symbolWorkflowId(exchange, symbol)).query(stateQuery),
    async portfolioSignals() {
      const history = await client.workflow.getHandle(portfolioWorkflowId(account)).fetchHistory();
      return (history.events ?? []).flatMap((e) => (e.workflowExecutionSignaledEventAttributes ? [e.workflowExecutionSignaledEventAttributes.signalName ?? '?'] : []));
    },
    async terminatePortfolio() {
      await client.workflow.getHandle(portfolioWorkflowId(account)).terminate('test: portfolio down');
    },
    async stop() {
      await Promise.all(ids.map((id) => client.workflow.getHandle(id).terminate('test over').catch(() => undefined)));
      worker.shutdown();
      await running;
    },
  };
}
