import os from 'node:os';
import { rebuildPositions, type FillForRebuild } from '../ledger/rebuild';
import { applyFill, makeFill, matchCandle, type FillRules, type MarketCash, type WorkingOrder } from '../lib/exchange/fill-model';
import { StaticMarketCatalog, spotMarket } from '../lib/exchange/markets';
import { PaperExchange } from '../lib/exchange/paper-exchange';
import { InMemoryPaperStateStore } from '../lib/exchange/paper-state';
import { toDecimalString } from '../lib/decimal';
import { fitOrder, type MarketRules } from '../lib/precision';
import { silentLog } from '../lib/log';
import { SyntheticMarket } from '../testkit/candles';

/**
 * The decimal arithmetic on the order path, call by call: what the paper exchange does per order
 * (fit the order to the market, price the fill, move the balances, value both intrabar paths of
 * a candle), a whole paper order round trip, and the ledger's side (rebuilding positions from
 * fills, with the truncated division of average prices; canonical text of PostgreSQL numerics).
 * Inputs are generated from fixed seeds, so two runs do the same work. Each case runs two warm-up
 * rounds, then ROUNDS timed ones; the median round's CPU time per operation is reported.
 *
 *   npm run bench -- decimal [rounds]
 */

const ROUNDS = Number(process.argv[2] ?? 9);
const WARMUP_ROUNDS = 2;
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`rounds must be a positive integer, got ${process.argv[2]}`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Process CPU time, not wall time: the machines these figures come from share their cores with
// other work, and a wall clock would time the waits for a core too. Everything timed here runs
// on this thread without I/O (the paper exchange's store is in memory).
const cpuNs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};

/** Median CPU ns per operation over the timed rounds; the results feed a checksum so no work is optimised away. */
async function nsPerOp(ops: number, run: () => number | Promise<number>): Promise<{ ns: number; sink: number }> {
  let sink = 0;
  const ns: number[] = [];
  for (let r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
    const t0 = cpuNs();
    sink += await run();
    if (r >= WARMUP_ROUNDS) ns.push((cpuNs() - t0) / ops);
  }
  return { ns: median(ns), sink };
}

const TF_MS = 60_000;
const SYMBOL = 'SYN0001/USDT';
const synthetic = new SyntheticMarket([SYMBOL]);
const T0 = Date.UTC(2024, 0, 1);
const candles = Array.from({ length: 4_000 }, (_, i) => synthetic.candle(SYMBOL, T0 + i * TF_MS));

/** A Binance-like spot market: lot 0.00001, tick 0.01 (scaled to the synthetic prices), 5 USDT minimum notional. */
const rules: MarketRules = {
  symbol: SYMBOL,
  amountPrecision: { kind: 'step', step: '0.00001' },
  pricePrecision: { kind: 'step', step: '0.0001' },
  minAmount: 0.00001,
  minCost: 5,
};
// Sizes as the risk code computes them: a fraction of equity over the price, full float noise.
const sizes = candles.map((c, i) => (10_000 * 0.05 * (0.5 + (i % 7) / 10)) / c.close);

async function main(): Promise<void> {
  const figures: Record<string, number> = {};
  let checksum = 0;

  {
    const n = candles.length;
    const { ns, sink } = await nsPerOp(n, () => {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const fit = fitOrder(rules, { amount: sizes[i], referencePrice: candles[i].close, stopPrice: candles[i].low * 0.98 });
        if (fit.ok) acc += fit.amount;
      }
      return acc;
    });
    figures.fit_order_ns = ns;
    checksum += sink;
  }

  const fillRules: FillRules = { fees: { maker: 0.001, taker: 0.001 }, slippage: { bps: 2, rangeFraction: 0, randomBps: 0, seed: 0 }, pricePrecision: rules.pricePrecision };

  {
    // One fill priced and applied: buy, then sell it back, balances carried as decimal strings.
    const n = candles.length;
    const { ns, sink } = await nsPerOp(2 * n, () => {
      let cash: MarketCash = { base: '0', quote: '10000' };
      for (let i = 0; i < n; i++) {
        const qty = Number(fitOrder(rules, { amount: sizes[i] }).ok ? sizes[i].toFixed(5) : 0);
        const buy = applyFill(cash, makeFill(`b${i}`, 'buy', qty, candles[i].close, 'taker', fillRules.fees));
        if (buy) cash = buy;
        const sell = applyFill(cash, makeFill(`s${i}`, 'sell', qty, candles[i].close * 1.001, 'maker', fillRules.fees));
        if (sell) cash = sell;
      }
      return Number(cash.quote);
    });
    figures.fill_and_balance_ns = ns;
    checksum += sink;
  }

  {
    // A stop and a target around the open, both in reach: both intrabar paths are played and valued.
    const n = candles.length;
    const { ns, sink } = await nsPerOp(n, () => {
      let acc = 0;
      for (let i = 0; i < n; i++) {
        const c = candles[i];
        const qty = Number(sizes[i].toFixed(5));
        const orders: WorkingOrder[] = [
          { key: `st${i}`, side: 'sell', type: 'stop_market', qty, stopPrice: Number((c.low + (c.open - c.low) / 2).toFixed(4)) },
          { key: `tp${i}`, side: 'sell', type: 'limit', qty, price: Number((c.open + (c.high - c.open) / 3).toFixed(4)) },
        ];
        const m = matchCandle(orders, c, { base: String(qty), quote: '1000' }, fillRules);
        acc += m.fills.length + Number(m.cash.quote);
      }
      return acc;
    });
    figures.match_candle_ns = ns;
    checksum += sink;
  }

  {
    // The paper exchange as the trading activities call it: market buy, market sell, balance, one
    // candle later each time. A fresh account every 50 trips: the in-memory store copies the whole
    // account (every order and fill) on each call, and a long-lived account would time that copy.
    const accounts = 20;
    const tripsPerAccount = 50;
    let round = 0;
    const { ns, sink } = await nsPerOp(accounts * tripsPerAccount, async () => {
      let acc = 0;
      for (let a = 0; a < accounts; a++) {
        let clock = T0 + TF_MS;
        const exchange = new PaperExchange({
          account: `bench/${round++}`,
          store: new InMemoryPaperStateStore(),
          marketData: new SyntheticMarket([SYMBOL], () => clock),
          markets: new StaticMarketCatalog([spotMarket(SYMBOL, { amountPrecision: rules.amountPrecision, pricePrecision: rules.pricePrecision, minCost: 5 })]),
          timeframe: '1m',
          initialBalances: { USDT: 10_000 },
          now: () => clock,
          log: silentLog,
        });
        for (let i = 0; i < tripsPerAccount; i++) {
          clock += TF_MS;
          const qty = Number(sizes[i].toFixed(5));
          await exchange.createOrder({ clientOrderId: `dt00000000-${i.toString(36)}-en`, symbol: SYMBOL, side: 'buy', type: 'market', qty });
          await exchange.createOrder({ clientOrderId: `dt00000000-${i.toString(36)}-ex`, symbol: SYMBOL, side: 'sell', type: 'market', qty });
          acc += (await exchange.fetchBalance()).USDT.total;
        }
      }
      return acc;
    });
    figures.paper_round_trip_us = ns / 1000;
    checksum += sink;
  }

  {
    // 10,000 fills over 4 markets: buys that average in (a truncated division each), sells that realize.
    const fills: FillForRebuild[] = [];
    for (let i = 0; i < 10_000; i++) {
      const c = candles[i % candles.length];
      const symbol = `M${i % 4}/USDT`;
      const buy = i % 3 !== 2;
      const qty = toDecimalString(Number(sizes[i % sizes.length].toFixed(5)));
      fills.push({
        exchange: 'paper', symbol, side: buy ? 'buy' : 'sell',
        price: toDecimalString(c.close), feeQuote: toDecimalString(Number((c.close * 0.001 * Number(qty)).toFixed(8))),
        positionQtyDelta: buy ? qty : `-${qty}`, ts: new Date(c.timestamp),
      });
    }
    const { ns, sink } = await nsPerOp(fills.length, () => rebuildPositions(fills).length);
    figures.ledger_rebuild_ns_per_fill = ns;
    checksum += sink;
  }

  {
    // numeric columns come back from PostgreSQL as text with the column's scale.
    const texts = candles.map((c, i) => (i % 2 ? (c.close * sizes[i]).toFixed(18) : `-${sizes[i].toFixed(18)}`));
    const { ns, sink } = await nsPerOp(texts.length, () => {
      let acc = 0;
      for (const t of texts) acc += toDecimalString(t).length;
      return acc;
    });
    figures.numeric_text_ns = ns;
    checksum += sink;
  }

  const f = (x: number, d = 0) => x.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d });
  console.log(`decimal bench: ${candles.length} synthetic 1m candles, ${WARMUP_ROUNDS} warm-up + ${ROUNDS} timed rounds, median CPU time`);
  console.log(`  machine: ${os.cpus()[0]?.model ?? 'unknown cpu'} x${os.cpus().length}, node ${process.version}`);
  console.log(`  fitOrder (amount, stop, notional):       ${f(figures.fit_order_ns)} ns per order`);
  console.log(`  makeFill + applyFill:                    ${f(figures.fill_and_balance_ns)} ns per fill`);
  console.log(`  matchCandle (stop and target touched):   ${f(figures.match_candle_ns)} ns per candle`);
  console.log(`  paper exchange buy + sell + balance:     ${f(figures.paper_round_trip_us, 1)} us per round trip`);
  console.log(`  ledger rebuildPositions:                 ${f(figures.ledger_rebuild_ns_per_fill)} ns per fill`);
  console.log(`  numeric text to canonical text:          ${f(figures.numeric_text_ns)} ns per value`);
  console.log(`  checksum ${checksum.toFixed(4)}`);
  console.log(`  reproduce: npm run bench -- decimal${process.argv[2] ? ` ${process.argv[2]}` : ''}`);
  console.log(JSON.stringify(Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, Number(v.toFixed(k.endsWith('_us') ? 2 : 0))]))));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
