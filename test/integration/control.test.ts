import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ZodError } from 'zod';
import { AlertDispatcher } from '../../activities/alerts';
import { TradingControl, UnknownSymbolError, resolveSymbolAmong } from '../../control/trading-control';
import { createLogger } from '../../infra/logger';
import { sharedDevServerEnv } from '../../testkit/temporal';
import { startTradingFixture, type TradingFixture } from '../../testkit/trading-fixture';

const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'test' });
const origin = { by: 'test:control', reason: 'control test' };

describe('resolveSymbolAmong (pure)', () => {
  const known = ['BTC/USDT', 'ETH/USDT', 'BTC/USDT:USDT'];
  it('accepts any case and separator, and rejects unknown symbols with the known list', () => {
    assert.equal(resolveSymbolAmong('btc/usdt', known), 'BTC/USDT');
    assert.equal(resolveSymbolAmong('ETHUSDT', known), 'ETH/USDT');
    assert.equal(resolveSymbolAmong(' eth-usdt ', known), 'ETH/USDT');
    assert.equal(resolveSymbolAmong('BTC/USDT:USDT', known), 'BTC/USDT:USDT');
    assert.throws(
      () => resolveSymbolAmong('DOGE/USDT', known),
      (err: unknown) => err instanceof UnknownSymbolError && err.symbol === 'DOGE/USDT' && err.known.join() === known.join() && /known symbols are BTC\/USDT, ETH\/USDT/.test(err.message),
    );
  });
});

describe('TradingControl against the real trading workflows on a Temporal dev server', function () {
  this.timeout(120_000); // the shared dev server and PostgreSQL on first use, then real trading workflows over replayed candles
  let env: TestWorkflowEnvironment;
  let fx: TradingFixture | undefined;
  const alerts = new AlertDispatcher({ log });

  before(async () => {
    env = await sharedDevServerEnv();
  });
  after(async () => {
    await alerts.stop();
    await env?.teardown();
  });
  afterEach(async () => {
    await fx?.stop();
    fx = undefined;
  });

  /** portfolioWorkflow (or, without it, the symbol workflows alone) replaying BTC/USDT and ETH/USDT (they enter at once and hold) and XRP/USDT (flat). */
  const start = async (withPortfolio = true) => {
    fx = await startTradingFixture(env, { alerts, withPortfolio });
    assert.deepEqual(fx.symbols, ['BTC/USDT', 'ETH/USDT', 'XRP/USDT']);
    return fx;
  };
  const held = async (f: TradingFixture) => Object.fromEntries((await f.waitForPositions(['BTC/USDT', 'ETH/USDT'])).map((s) => [s.symbol, s.position!.qty]));

  it('validates its options', () => {
    assert.throws(() => new TradingControl(env.client, { account: '', exchange: 'binance' }), ZodError, 'empty account must be refused');
    assert.throws(() => new TradingControl(env.client, { account: 'a', exchange: 'Bin ance' }), ZodError, 'bad exchange id must be refused');
    const other = new TradingControl(env.client, { account: 'a', exchange: 'binance', namespace: 'elsewhere' });
    assert.equal(other.namespace, 'elsewhere');
    assert.equal(new TradingControl(env.client, { account: 'a', exchange: 'binance' }).namespace, env.client.options.namespace);
  });

  it('lists the running symbol workflows of its exchange and reports their state and the portfolio', async () => {
    const f = await start();
    const qty = await held(f);
    const list = await f.control.listSymbols();
    assert.deepEqual(list.map((s) => s.symbol), ['BTC/USDT', 'ETH/USDT', 'XRP/USDT']);
    assert.equal(list[0].workflowId, `trader/${f.exchange}/BTC/USDT`);
    assert.deepEqual(list.map((s) => [s.tradingStatus, s.mode]), [['active', 'replay'], ['active', 'replay'], ['active', 'replay']], 'from the search attributes');
    const report = await f.control.status();
    assert.equal(report.portfolio?.account, f.account);
    assert.deepEqual(report.portfolio?.symbols, ['BTC/USDT', 'ETH/USDT', 'XRP/USDT']);
    assert.equal(report.portfolio?.killSwitch.tripped, false);
    assert.deepEqual(report.symbols.map((s) => [s.symbol, s.tradingStatus, s.mode, s.position?.qty ?? null]), [
      ['BTC/USDT', 'active', 'replay', qty['BTC/USDT']],
      ['ETH/USDT', 'active', 'replay', qty['ETH/USDT']],
      ['XRP/USDT', 'active', 'replay', null],
    ]);
    assert.ok(report.symbols.every((s) => s.decisions > 0 && s.lastDecision !== null), 'every symbol has decided on candles');
    assert.deepEqual(report.unreachable, []);
    const positions = await f.control.positions();
    assert.deepEqual(positions.map((p) => p.symbol), ['BTC/USDT', 'ETH/USDT']);
    assert.deepEqual(
      (await f.harness.db.ledger.openPositions()).map((p) => [p.symbol, Number(p.qty)]).sort(),
      positions.map((p) => [p.symbol, p.qty]),
      'the workflows and the ledger agree on what is open',
    );
  });

  it('pause / resume / reduce-only go through the portfolio, for all symbols or one', async () => {
    const f = await start();
    const paused = await f.control.pause(undefined, origin);
    assert.equal(paused.via, 'portfolio');
    assert.deepEqual(paused.symbols, ['BTC/USDT', 'ETH/USDT', 'XRP/USDT']);
    const seen = await f.control.waitForStatus(f.symbols, 'paused', 10_000);
    assert.deepEqual(seen, { 'BTC/USDT': 'paused', 'ETH/USDT': 'paused', 'XRP/USDT': 'paused' });
    assert.match((await f.state('BTC/USDT')).statusReason ?? '', /by test:control/);

    const resumed = await f.control.resume('btcusdt', origin);
    assert.deepEqual(resumed.symbols, ['BTC/USDT'], 'a loosely typed symbol resolves to the canonical one');
    assert.equal((await f.control.waitForStatus(['BTC/USDT'], 'active', 10_000))['BTC/USDT'], 'active');
    assert.equal((await f.state('ETH/USDT')).tradingStatus, 'paused', 'resuming one symbol leaves the others paused');

    await f.control.reduceOnly('eth-usdt', origin);
    assert.equal((await f.control.waitForStatus(['ETH/USDT'], 'reduce-only', 10_000))['ETH/USDT'], 'reduce-only');
    assert.deepEqual(await f.portfolioSignals(), ['portfolioPause', 'portfolioResume', 'portfolioReduceOnly']);
    assert.equal((await f.control.portfolioState())?.requestedStatus['ETH/USDT'], 'reduce-only');
    // The TradingStatus search attribute follows, so an operator finds paused symbols in the UI.
    const listed = await f.waitFor('visibility to show the new statuses', async () => {
      const l = await f.control.listSymbols();
      return l.map((s) => s.tradingStatus).join() === 'active,reduce-only,paused' && l;
    });
    assert.deepEqual(listed.map((s) => s.symbol), ['BTC/USDT', 'ETH/USDT', 'XRP/USDT']);
  });

  it('an unknown symbol is a typed error listing the known ones, and sends nothing', async () => {
    const f = await start();
    await assert.rejects(
      f.control.pause('DOGE/USDT', origin),
      (err: unknown) => err instanceof UnknownSymbolError && err.known.join() === 'BTC/USDT,ETH/USDT,XRP/USDT',
    );
    await assert.rejects(f.control.pause(undefined, { by: ' ' }), ZodError, 'an origin without a name is refused');
    assert.deepEqual(await f.portfolioSignals(), [], 'no signal may reach the portfolio');
    assert.deepEqual(await f.symbolMessages(), [], 'nor a symbol');
  });

  it('emergency closes every position through the portfolio update and returns what it closed', async () => {
    const f = await start();
    const qty = await held(f);
    const results = await f.control.emergency(origin, { updateId: 'control-test-emergency' });
    const closed = results.flatMap((r) => r.closed);
    assert.deepEqual(Object.fromEntries(closed.map((c) => [c.symbol, c.qty])), qty, 'each open position, its whole quantity');
    assert.ok(closed.every((c) => c.exitPrice > 0 && /-em$/.test(c.clientOrderId)), `market exits with emergency order ids: ${JSON.stringify(closed)}`);
    assert.deepEqual(results.map((r) => [r.symbol, r.tradingStatus]), [['BTC/USDT', 'halted'], ['ETH/USDT', 'halted'], ['XRP/USDT', 'halted']]);
    assert.deepEqual(await f.control.positions(), [], 'no position may remain open');
    assert.deepEqual(await f.harness.db.ledger.openPositions(), [], 'nor in the ledger');
    for (const c of closed) {
      const trade = (await f.harness.db.ledger.trades()).find((t) => t.symbol === c.symbol);
      assert.equal(trade?.exitReason, 'emergency', `the ledger records ${c.symbol}'s emergency exit`);
      assert.equal(Number(trade?.exitPrice), c.exitPrice, `${c.symbol}: the ledger's exit price is the one reported`);
    }
    const portfolio = await f.control.portfolioState();
    assert.equal(portfolio?.killSwitch.tripped, true);
    assert.equal(portfolio?.killSwitch.by, origin.by);
    const [audit] = await f.killSwitchCloses();
    assert.deepEqual(audit.results, results, 'the portfolio audited exactly what it returned');
    // A retried request (same update id, as the Telegram bot sends per confirmation) runs once.
    assert.deepEqual(await f.control.emergency(origin, { updateId: 'control-test-emergency' }), results);
    assert.equal((await f.killSwitchCloses()).length, 1, 'one emergency close in all');
  });

  it('without a portfolio workflow, commands go to each symbol directly (the kill switch still works)', async () => {
    const f = await start(false);
    const qty = await held(f);
    assert.equal(await f.control.portfolioState(), null);
    const report = await f.control.status();
    assert.equal(report.portfolio, null);
    assert.match(report.portfolioError ?? '', /not running/);
    const paused = await f.control.pause(undefined, origin);
    assert.equal(paused.via, 'direct');
    assert.deepEqual(await f.control.waitForStatus(f.symbols, 'paused', 10_000), { 'BTC/USDT': 'paused', 'ETH/USDT': 'paused', 'XRP/USDT': 'paused' });
    const results = await f.control.emergency(origin);
    assert.deepEqual(Object.fromEntries(results.flatMap((r) => r.closed.map((c) => [c.symbol, c.qty]))), qty);
    assert.deepEqual(await f.control.positions(), []);
    assert.deepEqual(await f.harness.db.ledger.openPositions(), []);
    assert.deepEqual((await f.symbolMessages()).sort(), ['BTC/USDT:emergencyClose', 'BTC/USDT:pause', 'ETH/USDT:emergencyClose', 'ETH/USDT:pause', 'XRP/USDT:emergencyClose', 'XRP/USDT:pause']);
  });

  it('a terminated portfolio falls back to direct signals too', async () => {
    const f = await start();
    await f.terminatePortfolio();
    const r = await f.control.reduceOnly(undefined, origin);
    assert.equal(r.via, 'direct');
    assert.equal((await f.control.waitForStatus(['XRP/USDT'], 'reduce-only', 10_000))['XRP/USDT'], 'reduce-only');
    assert.deepEqual((await f.symbolMessages()).sort(), ['BTC/USDT:reduceOnly', 'ETH/USDT:reduceOnly', 'XRP/USDT:reduceOnly'], 'the symbol workflows outlive their portfolio');
  });
});
