import assert from 'node:assert/strict';
import { InMemoryPaperStateStore } from '../../lib/exchange/paper-state';
import { PaperExchange } from '../../lib/exchange/paper-exchange';
import { spotMarket, StaticMarketCatalog } from '../../lib/exchange/markets';
import { replayFromFiles, readCandleCsv } from '../../infra/candle-files';
import { fixtureCandleFile } from '../../testkit/fixtures';
import { paperExchangeScenarios } from '../../testkit/paper-scenarios';

// The scenarios live in a helper so the PostgreSQL store runs the very same ones (test/integration/paper-state-pg.test.ts).
describe('paper exchange on recorded candles', () => {
  paperExchangeScenarios(() => new InMemoryPaperStateStore());
});

describe('paper exchange: fetchMyTradesNow (the backtester\'s every-candle fill lookup, without promises)', () => {
  const FILE = fixtureCandleFile('fixture_BTC-USDT_1h.csv');
  const HOUR = 3_600_000;
  const candles = readCandleCsv(FILE).candles;
  const K = 8000;

  function paper() {
    const clock = { now: candles[K].timestamp + HOUR };
    const exchange = new PaperExchange({
      account: 'now-test',
      store: new InMemoryPaperStateStore(),
      marketData: replayFromFiles([FILE], { now: () => clock.now }),
      markets: new StaticMarketCatalog([spotMarket('BTC/USDT')]),
      timeframe: '1h',
      initialBalances: { USDT: '10000' },
      now: () => clock.now,
    });
    return { clock, exchange };
  }

  it('answers as fetchMyTrades does, candle after candle, while a stop and a target rest and after they fill', async () => {
    // Two identical accounts: one asked at once, one awaited; the same orders, the same clock.
    const a = paper();
    const b = paper();
    for (const p of [a, b]) {
      await p.exchange.createOrder({ clientOrderId: 'en', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.1 });
      await p.exchange.createOrder({ clientOrderId: 'st', symbol: 'BTC/USDT', side: 'sell', type: 'stop_market', qty: 0.1, stopPrice: candles[K].close * 0.97 });
      await p.exchange.createOrder({ clientOrderId: 'tp', symbol: 'BTC/USDT', side: 'sell', type: 'limit', qty: 0.1, price: candles[K].close * 1.03 });
    }
    let since = 0;
    let filled = 0;
    for (let i = K + 1; i < K + 400; i++) {
      a.clock.now = b.clock.now = candles[i].timestamp + HOUR;
      const now = a.exchange.fetchMyTradesNow('BTC/USDT', since);
      const awaited = await b.exchange.fetchMyTrades('BTC/USDT', since);
      assert.deepEqual(now, awaited, `candle ${i}`);
      filled = Math.max(filled, awaited.length);
      since = awaited.reduce((t, x) => Math.max(t, x.timestamp), since);
    }
    assert.ok(filled >= 1, 'the stop or the target must have filled within the window');
    assert.deepEqual(await a.exchange.fetchBalance(), await b.exchange.fetchBalance());
  });

  it('answers undefined while another call is in flight on the account (from its start), and sees what it committed once it is over', async () => {
    const { exchange } = paper();
    assert.deepEqual(exchange.fetchMyTradesNow('BTC/USDT'), []);
    const placing = exchange.createOrder({ clientOrderId: 'en', symbol: 'BTC/USDT', side: 'buy', type: 'market', qty: 0.1 });
    assert.equal(exchange.fetchMyTradesNow('BTC/USDT'), undefined);
    await placing;
    const trades = exchange.fetchMyTradesNow('BTC/USDT');
    assert.equal(trades?.length, 1);
    assert.equal(trades?.[0].clientOrderId, 'en');
    // Asked again with nothing open: the same trades, in a fresh array the caller may change.
    const again = exchange.fetchMyTradesNow('BTC/USDT');
    assert.deepEqual(again, trades);
    again?.pop();
    assert.equal(exchange.fetchMyTradesNow('BTC/USDT')?.length, 1);
  });

  it('is not offered over parts that need I/O (a store without synchronous calls)', () => {
    const store = new InMemoryPaperStateStore();
    const asyncOnly = { read: store.read.bind(store), commit: store.commit.bind(store), snapshot: store.snapshot.bind(store) };
    const exchange = new PaperExchange({
      account: 'x',
      store: asyncOnly,
      marketData: replayFromFiles([FILE], { now: () => candles[K].timestamp + HOUR }),
      markets: new StaticMarketCatalog([spotMarket('BTC/USDT')]),
      timeframe: '1h',
      initialBalances: { USDT: '10000' },
    });
    assert.equal(exchange.fetchMyTradesNow('BTC/USDT'), undefined);
  });
});
