import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { AlertDispatcher } from '../../activities/alerts';
import { portfolioResumeSignal, portfolioStateQuery, stateQuery } from '../../workflows/messages';
import type { portfolioWorkflow } from '../../workflows/portfolio';
import { testLog } from '../../testkit/db';
import { sharedDevServerEnv } from '../../testkit/temporal';
import { ledgerOrders, tradingHarness, tradingTmpDir, truncatedCandleFiles, type RunningWorker, type TradingHarness } from '../../testkit/trading';
import { portfolioWorkflowId, type PortfolioStateView } from '../../lib/contracts/trading';
import type { PortfolioInput } from '../../lib/contracts/workflows';
import { runBacktest } from '../../backtester/run';

/**
 * PortfolioWorkflow with its real activities over two replayed symbols (BTC and ETH, 700 hours
 * each) on the dev server: it starts the symbol workflows, watches the ledger's equity,
 * and trips the kill switch when the drawdown limit breaks. The kill switch is workflow state:
 * a new worker (the old one stopped) still sees it tripped and the symbols halted.
 */

const CAPITAL = 10_000;
const SYMBOLS = ['BTC/USDT', 'ETH/USDT'];

describe('PortfolioWorkflow kill switch (dev server, real activities)', function () {
  this.timeout(120_000); // the shared dev server and PostgreSQL on first use, then real workflows
  // The dev server, not the time-skipping one: the test server never moves a workflow off a
  // stopped worker's sticky queue (its queries and tasks then hang; measured), and a worker
  // without a cache cannot hold local activities (core evicts them, tasks time out after 10 s).
  // The real server hands the workflows to the new worker, as in production.
  let env: TestWorkflowEnvironment;
  let dir: string;
  let files: string[];
  let h: TradingHarness | undefined;
  let worker: RunningWorker | undefined;
  const alerts: string[] = [];
  const dispatcher = new AlertDispatcher({
    log: testLog,
    // Where Telegram would be: the alert text as the admins would get it.
    sink: { sendMessage: async (_chat, text) => void alerts.push(text) },
    adminIds: [1],
  });

  before(async () => {
    env = await sharedDevServerEnv();
    dir = tradingTmpDir();
    // A window where ETH's first trade loses a few candles after the warm-up while BTC holds a
    // position (found with the backtester), so the kill switch trips early and has a position to close.
    files = truncatedCandleFiles(dir, [
      { file: 'fixture_BTC-USDT_1h.csv', rows: 560, from: 378 },
      { file: 'synthetic_ETH-USDT_1h.csv', rows: 560, from: 378 },
    ]);
  });
  after(async () => {
    await dispatcher.stop();
    await env?.teardown();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await worker?.stop();
    worker = undefined;
    await h?.close();
    h = undefined;
  });

  it('a drawdown breach trips the kill switch, halts every symbol, and still holds after the worker restarts', async () => {
    // The drawdown the ledger will show after the first losing trade (replay marks open positions
    // at entry, so equity is capital + realized PnL); the limit is half of it.
    const bt = await runBacktest({ files, strategy: 'rules', initialCapital: CAPITAL });
    const byExit = [...bt.trades].sort((a, b) => a.exitTime - b.exitTime);
    let equity = CAPITAL;
    let peak = CAPITAL;
    let firstDrawdown = 0;
    for (const t of byExit) {
      equity += t.pnl;
      peak = Math.max(peak, equity);
      if (peak > equity) {
        firstDrawdown = (peak - equity) / peak;
        break;
      }
    }
    assert.ok(firstDrawdown > 0, 'the backtest has a losing trade to breach the limit with');
    const maxDrawdown = firstDrawdown / 2;

    h = await tradingHarness(env, { files, initialCapital: CAPITAL, alerts: dispatcher });
    assert.deepEqual(h.symbols, SYMBOLS, 'both symbols replayed');
    const speed = 3600; // a 1h candle per second
    const candleMs = 3_600_000 / speed;
    const input: PortfolioInput = {
      account: h.account,
      exchange: h.exchange,
      mode: 'replay',
      symbols: SYMBOLS.map((s) => h!.symbolInput(s, { speed })),
      taskQueue: h.taskQueue,
      limits: { maxDrawdown, dailyLossLimit: 0.5 },
      checkEveryMs: candleMs / 5,
    };
    worker = await h.startWorker();
    const portfolio = await env.client.workflow.start<typeof portfolioWorkflow>('portfolioWorkflow', {
      workflowId: portfolioWorkflowId(h.account),
      taskQueue: h.taskQueue,
      args: [input],
    });
    const symbolState = (s: string) => env.client.workflow.getHandle(h!.workflowId(s)).query(stateQuery);

    // Until the loss lands in the ledger and a check sees it (a few candles in; BTC is then long).
    let view: PortfolioStateView = await portfolio.query(portfolioStateQuery);
    for (const deadline = Date.now() + 60_000; !view.killSwitch.tripped && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 100));
      view = await portfolio.query(portfolioStateQuery);
    }
    assert.ok(view.killSwitch.tripped, `the kill switch tripped (drawdown ${view.drawdown}, limit ${maxDrawdown})`);
    assert.match(view.killSwitch.reason ?? '', /drawdown .* reached MAX_DRAWDOWN/, 'the reason names the limit');
    assert.equal(view.killSwitch.by, 'portfolio', 'tripped by the portfolio itself');
    assert.ok((view.drawdown ?? 0) >= maxDrawdown, `the drawdown it saw breaks the limit (${view.drawdown} >= ${maxDrawdown})`);
    const trades = await h.db.ledger.trades();
    assert.ok(trades.some((t) => Number(t.pnl) < 0), 'a losing trade is in the ledger');
    assert.deepEqual(view.requestedStatus, Object.fromEntries(SYMBOLS.map((s) => [s, 'halted'])), 'every symbol asked to halt');

    // Every check left an equity snapshot in the ledger; the one that tripped the switch holds the drawdown it saw.
    const curve = await h.db.ledger.equityCurve({ account: h.account });
    assert.ok(curve.length >= 2, `one snapshot per check (${curve.length})`);
    const worst = curve.reduce((w, s) => (Number(s.drawdown) > Number(w.drawdown) ? s : w));
    assert.ok(Number(worst.drawdown) >= maxDrawdown, `a snapshot shows the breach (${worst.drawdown} >= ${maxDrawdown})`);
    assert.ok(Math.abs(Number(worst.equity) - Number(worst.peakEquity) * (1 - Number(worst.drawdown))) < 1e-6, 'drawdown = (peak - equity) / peak');
    for (const s of curve) assert.ok(Math.abs(Number(s.cash) + Number(s.exposure) - Number(s.equity)) < 1e-6, `equity = cash + exposure at ${s.ts.toISOString()}`);

    // The emergency close reached every symbol: halted and flat, nothing open in the ledger.
    for (const s of SYMBOLS) {
      const st = await waitForStatus(() => symbolState(s), 'halted');
      assert.equal(st.position, null, `${s} is flat`);
    }
    assert.deepEqual(await h.db.ledger.openPositions(), [], 'no open position in the ledger');
    const closedBySwitch = (await h.db.ledger.trades()).filter((t) => t.exitReason === 'emergency');
    assert.ok(closedBySwitch.length >= 1, 'the kill switch closed an open position at market');
    assert.ok(await dispatcher.idle(5_000), 'the alert queue drained');
    assert.ok(alerts.some((a) => /Kill switch tripped/.test(a)), `the admins were alerted (${alerts.length} alerts)`);

    // The worker goes away; a new one takes over the task queue with no cached state.
    await worker.stop();
    const ordersBefore = (await ledgerOrders(h.db.sql)).length;
    worker = await h.startWorker();
    const after = await portfolio.query(portfolioStateQuery);
    assert.equal(after.killSwitch.tripped, true, 'still tripped after the restart');
    assert.equal(after.killSwitch.reason, view.killSwitch.reason, 'same reason');
    assert.equal(after.killSwitch.at, view.killSwitch.at, 'tripped at the same time');
    for (const s of SYMBOLS) assert.equal((await symbolState(s)).tradingStatus, 'halted', `${s} still halted after the restart`);

    // A single symbol cannot be resumed while the switch is tripped, and time passing changes nothing.
    await portfolio.signal(portfolioResumeSignal, { symbol: 'BTC/USDT', by: 'test:portfolio' });
    await new Promise((r) => setTimeout(r, 1.5 * candleMs));
    const later = await portfolio.query(portfolioStateQuery);
    assert.equal(later.killSwitch.tripped, true, 'a one-symbol resume does not re-arm the kill switch');
    for (const s of SYMBOLS) assert.equal((await symbolState(s)).tradingStatus, 'halted', `${s} stays halted`);
    assert.equal((await ledgerOrders(h.db.sql)).length, ordersBefore, 'no order was placed after the kill switch');
  });
});

async function waitForStatus<T extends { tradingStatus: string }>(read: () => Promise<T>, status: string, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (v.tradingStatus === status) return v;
    if (Date.now() > deadline) throw new Error(`status stayed ${v.tradingStatus}, expected ${status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
