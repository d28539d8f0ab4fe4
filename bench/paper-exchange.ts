import { PostgresPaperStateStore } from '../activities/exchange/paper-state-pg';
import { connect } from '../infra/postgres';
import { spotMarket, StaticMarketCatalog } from '../lib/exchange/markets';
import { PaperExchange } from '../lib/exchange/paper-exchange';
import { InMemoryPaperStateStore, type PaperStateStore } from '../lib/exchange/paper-state';
import { freshDatabase, stopTestServer } from '../testkit/db';
import { percentile } from './helpers/history';
import { SyntheticMarket, syntheticSymbols } from '../testkit/candles';
import { benchLog, loadLine, machineLine, numberArg, parseArgs } from './helpers/trading-stack';
import { runBench } from './helpers/run';

/**
 * What one paper exchange call costs early in an account's life and after many orders: the
 * calls a candle step makes (the candle read's fetchMyTrades; an entry: look up, place, its fill,
 * then a stop and a target, each looked up and placed; their cancels), timed around the 10th
 * order and again around the 10,000th, on the PostgreSQL store (real embedded PostgreSQL, with
 * the statements each call sends counted) and in memory. Goal: the same cost at both points.
 *
 * The account trades one synthetic 1m market (testkit/candles.ts) on a simulated
 * clock, one candle per step: an entry every third step, its stop and target resting until the
 * stop or target fills on a later candle or both are canceled two steps later.
 *
 *   npm run bench -- paper-exchange [--orders 10000] [--window 60] [--store pg,memory]
 */

const args = parseArgs(process.argv.slice(2), { orders: 'value', window: 'value', store: 'value' });
const ORDERS = numberArg(args, 'orders', 10_000, (x) => Number.isInteger(x) && x >= 100);
const WINDOW = numberArg(args, 'window', 60, (x) => Number.isInteger(x) && x >= 10);
const STORES = ((args.get('store') as string | undefined) ?? 'pg,memory').split(',');
for (const s of STORES) if (s !== 'pg' && s !== 'memory') throw new Error(`--store: pg and/or memory, got ${s}`);
const EARLY = 10;
const log = benchLog();
const SYMBOL = syntheticSymbols(1)[0];
const MINUTE = 60_000;

type Call = 'fetchMyTrades' | 'fetchOrderByClientId' | 'createOrder market' | 'createOrder stop' | 'createOrder limit' | 'cancelOrder';
interface Sample {
  call: Call;
  ms: number;
  cpuMs: number;
  statements: number;
}

interface Run {
  store: string;
  early: Sample[];
  late: Sample[];
  orders: number;
  totalS: number;
}

async function runOn(name: string, store: PaperStateStore, statements: () => number): Promise<Run> {
  const clock = { now: Date.UTC(2026, 0, 5, 0, 0) };
  const market = new SyntheticMarket([SYMBOL], () => clock.now);
  const paper = new PaperExchange({
    account: `bench-${name}`,
    store,
    marketData: market,
    markets: new StaticMarketCatalog([spotMarket(SYMBOL)]),
    timeframe: '1m',
    initialBalances: { USDT: '1000000000' },
    now: () => clock.now,
    log,
  });
  let orders = 0;
  let samples: Sample[] | null = null;
  const early: Sample[] = [];
  const late: Sample[] = [];
  const timed = async <T>(call: Call, fn: () => Promise<T>): Promise<T> => {
    const s0 = statements();
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const out = await fn();
    const t1 = process.hrtime.bigint();
    const c = process.cpuUsage(c0);
    samples?.push({ call, ms: Number(t1 - t0) / 1e6, cpuMs: (c.user + c.system) / 1000, statements: statements() - s0 });
    return out;
  };
  const t0 = Date.now();
  let since = 0;
  const resting: Array<{ ids: string[]; cancelAt: number }> = [];
  for (let step = 0; orders < ORDERS + WINDOW; step++) {
    clock.now += MINUTE;
    samples = orders >= EARLY && orders < EARLY + WINDOW ? early : orders >= ORDERS && orders < ORDERS + WINDOW ? late : null;
    // The candle read: this market's fills since the cursor.
    const trades = await timed('fetchMyTrades', () => paper.fetchMyTrades(SYMBOL, since));
    for (const t of trades) since = Math.max(since, t.timestamp);
    for (const r of resting.filter((x) => x.cancelAt <= step)) {
      for (const id of r.ids) await timed('cancelOrder', () => paper.cancelOrder(SYMBOL, { clientOrderId: id }));
      resting.splice(resting.indexOf(r), 1);
    }
    if (step % 3 !== 0) continue;
    const id = (tag: string) => `b${step.toString(36)}-${tag}`;
    await timed('fetchOrderByClientId', () => paper.fetchOrderByClientId(SYMBOL, id('en')));
    const entry = await timed('createOrder market', () => paper.createOrder({ clientOrderId: id('en'), symbol: SYMBOL, side: 'buy', type: 'market', qty: 1 }));
    await timed('fetchMyTrades', () => paper.fetchMyTrades(SYMBOL, entry.createdAt));
    const price = entry.avgFillPrice as number;
    await timed('fetchOrderByClientId', () => paper.fetchOrderByClientId(SYMBOL, id('st')));
    await timed('createOrder stop', () => paper.createOrder({ clientOrderId: id('st'), symbol: SYMBOL, side: 'sell', type: 'stop_market', qty: 1, stopPrice: price * 0.999 }));
    await timed('fetchOrderByClientId', () => paper.fetchOrderByClientId(SYMBOL, id('tp')));
    await timed('createOrder limit', () => paper.createOrder({ clientOrderId: id('tp'), symbol: SYMBOL, side: 'sell', type: 'limit', qty: 1, price: price * 1.001 }));
    resting.push({ ids: [id('st'), id('tp')], cancelAt: step + 2 });
    orders += 3;
  }
  return { store: name, early, late, orders, totalS: (Date.now() - t0) / 1000 };
}

const CALLS: Call[] = ['fetchMyTrades', 'fetchOrderByClientId', 'createOrder market', 'createOrder stop', 'createOrder limit', 'cancelOrder'];
const median = (xs: number[]) => percentile(xs, 50);
const fmt = (x: number) => (Number.isNaN(x) ? '-' : x >= 10 ? x.toFixed(1) : x.toFixed(2));

async function main(): Promise<void> {
  const loadBefore = loadLine();
  console.log(`paper-exchange bench: per-call cost at the ${EARLY}th order and at the ${ORDERS.toLocaleString('en')}th (medians over the calls of ${WINDOW} orders each), one account, one synthetic 1m market`);
  console.log(`  machine: ${machineLine()}; load average before ${loadBefore}`);
  const runs: Run[] = [];
  for (const name of STORES) {
    if (name === 'memory') {
      runs.push(await runOn('memory', new InMemoryPaperStateStore(), () => 0));
      continue;
    }
    const db = await freshDatabase();
    let count = 0;
    const sql = connect(db.url, log, { max: 2, onQuery: () => count++ });
    try {
      runs.push(await runOn('pg', new PostgresPaperStateStore(sql), () => count));
    } finally {
      await sql.end({ timeout: 5 });
      await db.drop();
    }
  }
  await stopTestServer().catch(() => undefined);

  const out: Record<string, number> = {};
  for (const r of runs) {
    console.log('');
    console.log(`  ${r.store === 'pg' ? 'PostgreSQL store' : 'in-memory store'}: ${r.orders.toLocaleString('en')} orders placed in ${r.totalS.toFixed(0)} s`);
    console.log(`    call                   wall ms (order ${EARLY} / ${ORDERS})   CPU ms (${EARLY} / ${ORDERS})   statements per call`);
    for (const call of CALLS) {
      const e = r.early.filter((s) => s.call === call);
      const l = r.late.filter((s) => s.call === call);
      if (e.length === 0 && l.length === 0) continue;
      const m = (xs: Sample[], k: 'ms' | 'cpuMs' | 'statements') => median(xs.map((s) => s[k]));
      console.log(
        `    ${call.padEnd(22)} ${`${fmt(m(e, 'ms'))} / ${fmt(m(l, 'ms'))}`.padEnd(26)} ${`${fmt(m(e, 'cpuMs'))} / ${fmt(m(l, 'cpuMs'))}`.padEnd(20)} ${r.store === 'pg' ? `${m(e, 'statements')} / ${m(l, 'statements')}` : '-'}`,
      );
    }
    const all = (xs: Sample[]) => median(xs.map((s) => s.ms));
    const ratio = all(r.late) / all(r.early);
    console.log(`    every call: median ${fmt(all(r.early))} ms at order ${EARLY}, ${fmt(all(r.late))} ms at order ${ORDERS} (x${ratio.toFixed(2)})`);
    out[`${r.store}_call_ms_at_${EARLY}`] = Number(fmt(all(r.early)));
    out[`${r.store}_call_ms_at_${ORDERS}`] = Number(fmt(all(r.late)));
  }
  console.log('');
  console.log(`  load average after ${loadLine()}`);
  const argv = process.argv.slice(2).join(' ');
  console.log(`  reproduce: npm run bench -- paper-exchange${argv ? ` ${argv}` : ''}`);
  console.log(JSON.stringify(out));
}

runBench(main);
