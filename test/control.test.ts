import assert from 'node:assert/strict';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { ZodError } from 'zod';
import { AlertDispatcher } from '../activities/alerts';
import { TradingControl, UnknownSymbolError, resolveSymbolAmong } from '../client/control';
import { createLogger } from '../infra/logger';
import { devServerEnv } from './helpers/temporal';
import { startTradingFixture, type TradingFixture } from './workflows/trading-fixture';

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

describe('TradingControl against a Temporal dev server (test-double workflows)', function () {
  this.timeout(120_000);
  let env: TestWorkflowEnvironment;
  let fx: TradingFixture | undefined;
  const alerts = new AlertDispatcher({ log });

  before(async () => {
    env = await devServerEnv();
  });
  after(async () => {
    await env?.teardown();
  });
  afterEach(async () => {
    await fx?.stop();
    fx = undefined;
  });

  const start = async (withPortfolio = true) => {
    fx = await startTradingFixture(env, {
      alerts,
      withPortfolio,
      symbols: [
        { symbol: 'BTC/USDT', position: { qty: 0.01, entryPrice: 50_000, markPrice: 51_000 } },
        { symbol: 'ETH/USDT', position: { qty: 0.5, entryPrice: 3_000, markPrice: 2_900 } },
        { symbol: 'SOL/USDT' },
      ],
    });
    return fx;
  };

  it('validates its options', () => {
    assert.throws(() => new TradingControl(env.client, { account: '', exchange: 'binance' }), ZodError, 'empty account must be refused');
    assert.throws(() => new TradingControl(env.client, { account: 'a', exchange: 'Bin ance' }), ZodError, 'bad exchange id must be refused');
    const other = new TradingControl(env.client, { account: 'a', exchange: 'binance', namespace: 'elsewhere' });
    assert.equal(other.namespace, 'elsewhere');
    assert.equal(new TradingControl(env.client, { account: 'a', exchange: 'binance' }).namespace, env.client.options.namespace);
  });

  it('lists the running symbol workflows of its exchange and reports their state and the portfolio', async () => {
    const f = await start();
    const list = await f.control.listSymbols();
    assert.deepEqual(list.map((s) => s.symbol), ['BTC/USDT', 'ETH/USDT', 'SOL/USDT']);
    assert.equal(list[0].workflowId, `trader/${f.exchange}/BTC/USDT`);
    const report = await f.control.status();
    assert.equal(report.portfolio?.account, f.account);
    assert.deepEqual(report.symbols.map((s) => [s.symbol, s.tradingStatus, s.position?.qty ?? null]), [
      ['BTC/USDT', 'active', 0.01],
      ['ETH/USDT', 'active', 0.5],
      ['SOL/USDT', 'active', null],
    ]);
    assert.deepEqual(report.unreachable, []);
    const positions = await f.control.positions();
    assert.deepEqual(positions.map((p) => p.symbol), ['BTC/USDT', 'ETH/USDT']);
  });

  it('pause / resume / reduce-only go through the portfolio, for all symbols or one', async () => {
    const f = await start();
    const paused = await f.control.pause(undefined, origin);
    assert.equal(paused.via, 'portfolio');
    assert.deepEqual(paused.symbols, ['BTC/USDT', 'ETH/USDT', 'SOL/USDT']);
    const seen = await f.control.waitForStatus(f.symbols, 'paused', 10_000);
    assert.deepEqual(seen, { 'BTC/USDT': 'paused', 'ETH/USDT': 'paused', 'SOL/USDT': 'paused' });
    assert.match((await f.state('BTC/USDT')).statusReason ?? '', /by test:control/);

    const resumed = await f.control.resume('btcusdt', origin);
    assert.deepEqual(resumed.symbols, ['BTC/USDT'], 'a loosely typed symbol resolves to the canonical one');
    assert.equal((await f.control.waitForStatus(['BTC/USDT'], 'active', 10_000))['BTC/USDT'], 'active');
    assert.equal((await f.state('ETH/USDT')).tradingStatus, 'paused', 'resuming one symbol leaves the others paused');

    await f.control.reduceOnly('eth-usdt', origin);
    assert.equal((await f.control.waitForStatus(['ETH/USDT'], 'reduce-only', 10_000))['ETH/USDT'], 'reduce-only');
    assert.deepEqual(await f.portfolioSignals(), ['portfolioPause', 'portfolioResume', 'portfolioReduceOnly']);
    assert.equal((await f.control.portfolioState())?.requestedStatus['ETH/USDT'], 'reduce-only');
  });

  it('an unknown symbol is a typed error listing the known ones, and sends nothing', async () => {
    const f = await start();
    await assert.rejects(
      f.control.pause('DOGE/USDT', origin),
      (err: unknown) => err instanceof UnknownSymbolError && err.known.join() === 'BTC/USDT,ETH/USDT,SOL/USDT',
    );
    await assert.rejects(f.control.pause(undefined, { by: ' ' }), ZodError, 'an origin without a name is refused');
    assert.deepEqual(await f.portfolioSignals(), [], 'no signal may reach the portfolio');
  });

  it('emergency closes every position through the portfolio update and returns what it closed', async () => {
    const f = await start();
    const results = await f.control.emergency(origin);
    const closed = results.flatMap((r) => r.closed);
    assert.deepEqual(closed.map((c) => [c.symbol, c.qty, c.exitPrice]), [
      ['BTC/USDT', 0.01, 51_000],
      ['ETH/USDT', 0.5, 2_900],
    ]);
    assert.deepEqual(results.map((r) => r.tradingStatus), ['halted', 'halted', 'halted']);
    assert.deepEqual(await f.control.positions(), [], 'no position may remain open');
    assert.equal((await f.control.portfolioState())?.killSwitch.tripped, true);
  });

  it('without a portfolio workflow, commands go to each symbol directly (the kill switch still works)', async () => {
    const f = await start(false);
    assert.equal(await f.control.portfolioState(), null);
    const report = await f.control.status();
    assert.equal(report.portfolio, null);
    assert.match(report.portfolioError ?? '', /not running/);
    const paused = await f.control.pause(undefined, origin);
    assert.equal(paused.via, 'direct');
    assert.deepEqual(await f.control.waitForStatus(f.symbols, 'paused', 10_000), { 'BTC/USDT': 'paused', 'ETH/USDT': 'paused', 'SOL/USDT': 'paused' });
    const results = await f.control.emergency(origin);
    assert.deepEqual(results.flatMap((r) => r.closed.map((c) => c.symbol)).sort(), ['BTC/USDT', 'ETH/USDT']);
    assert.deepEqual(await f.control.positions(), []);
  });

  it('a terminated portfolio falls back to direct signals too', async () => {
    const f = await start();
    await f.terminatePortfolio();
    const r = await f.control.reduceOnly(undefined, origin);
    assert.equal(r.via, 'direct');
    assert.equal((await f.control.waitForStatus(['SOL/USDT'], 'reduce-only', 10_000))['SOL/USDT'], 'reduce-only');
  });
});
