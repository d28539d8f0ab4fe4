import assert from 'node:assert/strict';
import type { Ledger } from '../../ledger/ledger';
import type { Trade } from '../../ledger/types';
import { profitWindows } from '../../telegram/format';
import { freshDatabase, type TestDatabase } from '../../testkit/db';

/**
 * What the Telegram bot's /trades, /profit and /metrics read: a page of the last trades and
 * aggregates computed by PostgreSQL (Ledger.lastTrades, Ledger.tradeSummary), checked against
 * the whole trade list on a ledger of round trips made through the real fill API.
 */

const DAY = 86_400_000;
const NOW = Date.UTC(2025, 2, 10, 15, 30);
const SYMBOLS = ['BTC/USDT', 'ETH/USDT', 'SOL/USDT'];

describe('ledger trade page and summary (what /trades, /profit, /metrics read)', function () {
  this.timeout(120_000); // starts this process's embedded PostgreSQL on first use
  let db: TestDatabase;
  let ledger: Ledger;
  let all: Trade[];

  before(async () => {
    db = await freshDatabase();
    ledger = db.ledger;
    // 40 round trips over ten days, three symbols, winners and losers; the last ones today.
    for (let i = 0; i < 40; i++) {
      const symbol = SYMBOLS[i % 3];
      const opened = new Date(NOW - (10 * DAY * (40 - i)) / 40 - 3_600_000);
      const closed = new Date(opened.getTime() + 1_800_000);
      const entry = 100 + (i % 7);
      const exit = entry + ((i * 37) % 11) - 5; // -5 .. +5
      await ledger.recordOrderIntent({ clientOrderId: `s-buy-${i}`, exchange: 'binance', symbol, side: 'buy', type: 'market', qty: '1' });
      await ledger.recordFill({ clientOrderId: `s-buy-${i}`, fillId: `b${i}`, qty: '1', price: String(entry), fee: '0.1', feeCurrency: 'USDT', ts: opened });
      await ledger.recordOrderIntent({ clientOrderId: `s-sell-${i}`, exchange: 'binance', symbol, side: 'sell', type: 'market', qty: '1', reason: 'signal' });
      await ledger.recordFill({ clientOrderId: `s-sell-${i}`, fillId: `s${i}`, qty: '1', price: String(exit), fee: '0.1', feeCurrency: 'USDT', ts: closed });
    }
    all = await ledger.trades();
    assert.equal(all.length, 40);
  });
  after(async () => db?.drop());

  it('a page of the last N trades, oldest first, is the tail of the whole list', async () => {
    for (const n of [1, 5, 40, 50]) assert.deepEqual(await ledger.lastTrades(n), all.slice(-n), `last ${n}`);
    await assert.rejects(ledger.lastTrades(0), RangeError);
  });

  it('sums, counts and wins, all time and per window, and the best and worst trade, equal those of the whole list', async () => {
    const windows = profitWindows(NOW);
    const s = await ledger.tradeSummary(windows);
    const expect = (ts: Trade[]) => ({ trades: ts.length, wins: ts.filter((t) => Number(t.pnl) > 0).length, pnl: ts.reduce((a, t) => a + Number(t.pnl), 0) });
    const got = (t: { trades: number; wins: number; pnl: string }) => ({ trades: t.trades, wins: t.wins, pnl: Number(t.pnl) });
    const near = (a: ReturnType<typeof got>, b: ReturnType<typeof expect>, what: string) => {
      assert.equal(a.trades, b.trades, `${what}: trades`);
      assert.equal(a.wins, b.wins, `${what}: wins`);
      assert.ok(Math.abs(a.pnl - b.pnl) < 1e-9, `${what}: pnl ${a.pnl} vs ${b.pnl}`);
    };
    near(got(s.all), expect(all), 'all');
    windows.forEach((w, i) => near(got(s.since[i]), expect(all.filter((t) => t.exitTime >= w)), `since ${w.toISOString()}`));
    assert.ok(s.since[0].trades > 0 && s.since[0].trades < s.since[1].trades && s.since[1].trades < s.all.trades, 'the windows hold different trades');
    assert.ok(s.all.wins > 0 && s.all.wins < s.all.trades, 'winners and losers');
    // Without windows (what /metrics asks): the same all-time figures.
    const plain = await ledger.tradeSummary();
    assert.deepEqual(plain.since, []);
    near(got(plain.all), expect(all), 'all, no windows');
    const sorted = [...all].sort((a, b) => Number(a.pnl) - Number(b.pnl));
    assert.equal(Number(s.best!.pnl), Number(sorted.at(-1)!.pnl));
    assert.equal(Number(s.worst!.pnl), Number(sorted[0].pnl));
    assert.ok(SYMBOLS.includes(s.best!.symbol) && SYMBOLS.includes(s.worst!.symbol));
  });

  it('an empty ledger sums to zero and has no best or worst trade', async () => {
    const empty = await freshDatabase();
    try {
      const s = await empty.ledger.tradeSummary(profitWindows(NOW));
      assert.deepEqual(s, { all: { trades: 0, wins: 0, pnl: '0' }, since: [{ trades: 0, wins: 0, pnl: '0' }, { trades: 0, wins: 0, pnl: '0' }], best: null, worst: null });
      assert.deepEqual(await empty.ledger.lastTrades(10), []);
    } finally {
      await empty.drop();
    }
  });
});
