import assert from 'node:assert/strict';
import * as ccxt from 'ccxt';
import { decAdd, decCmp, decMul, decSub, roundToSignificant, roundToStep, toDecimalString } from '../../lib/decimal';
import { fitOrder, precisionRule, roundAmount, roundPrice, type MarketRules } from '../../lib/precision';

describe('precision: decimal-safe rounding to market rules', () => {
  it('writes numbers as plain decimals and adds them without float artefacts', () => {
    assert.equal(toDecimalString(1e-8), '0.00000001');
    assert.equal(toDecimalString(1.5e21), '1500000000000000000000');
    assert.equal(toDecimalString('2.50e-3'), '0.0025');
    assert.equal(decAdd(0.1, 0.2), '0.3');
    assert.equal(decSub('10000', decAdd(decMul('0.012345', '37347.2'), '0.461051184')), '9538.487764816');
    assert.equal(decCmp('0.30', 0.3), 0);
    assert.equal(decCmp('-1', '0.5'), -1);
  });

  it('truncates to a lot step on integers, not floats (0.7 - 0.4 -> 0.3, not 0.2)', () => {
    const x = 0.7 - 0.4; // 0.29999999999999993
    assert.equal(Math.floor(x / 0.1) * 0.1, 0.2, 'the float way is wrong, which is why this module exists');
    assert.equal(roundToStep(x, '0.1', 'down'), '0.3');
    assert.equal(roundToStep(0.1 + 0.2, '0.1', 'down'), '0.3');
    assert.equal(roundToStep('0.123456789', '0.00001', 'down'), '0.12345');
    assert.equal(roundToStep('0.123456789', '0.00001', 'up'), '0.12346');
    assert.equal(roundToStep(1.07, '0.05', 'nearest'), '1.05');
    assert.equal(roundToStep(1.075, '0.05', 'nearest'), '1.1');
    assert.equal(roundToStep(1234, '10', 'down'), '1230');
  });

  it('reads ccxt precision in each precisionMode', () => {
    assert.deepEqual(precisionRule(0.01, 'tick_size'), { kind: 'step', step: '0.01' });
    assert.deepEqual(precisionRule(1e-8, 'tick_size'), { kind: 'step', step: '0.00000001' });
    assert.deepEqual(precisionRule(0.5, 'tick_size'), { kind: 'step', step: '0.5' });
    assert.deepEqual(precisionRule(2, 'decimal_places'), { kind: 'step', step: '0.01' });
    assert.deepEqual(precisionRule(0, 'decimal_places'), { kind: 'step', step: '1' });
    assert.deepEqual(precisionRule(-1, 'decimal_places'), { kind: 'step', step: '10' });
    assert.deepEqual(precisionRule(5, 'significant_digits'), { kind: 'significant', digits: 5 });
    assert.equal(precisionRule(undefined, 'tick_size'), undefined);
    assert.throws(() => precisionRule(0, 'tick_size'), /positive/);
    assert.equal(roundToSignificant('0.000123456', 3, 'down'), '0.000123');
    assert.equal(roundToSignificant(123456, 2, 'nearest'), '120000');
    assert.equal(roundPrice(0.000123456, { pricePrecision: { kind: 'significant', digits: 4 } }), 0.0001235);
  });

  it('agrees with ccxt amountToPrecision / priceToPrecision on a TICK_SIZE market', () => {
    const ex = new ccxt.binance();
    const market = {
      id: 'BTCUSDT', symbol: 'BTC/USDT', base: 'BTC', quote: 'USDT', baseId: 'BTC', quoteId: 'USDT', type: 'spot', spot: true, active: true,
      precision: { amount: 0.00001, price: 0.01 }, limits: { amount: { min: 0.00001 }, price: {}, cost: { min: 5 } },
    };
    ex.setMarkets([market as never]);
    const rules = { amountPrecision: precisionRule(0.00001, 'tick_size'), pricePrecision: precisionRule(0.01, 'tick_size') };
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 2000; i++) {
      const amount = Number((rand() * 3).toFixed(1 + Math.floor(rand() * 9)));
      const price = Number((1000 + rand() * 60000).toFixed(Math.floor(rand() * 6)));
      if (amount >= 0.00001) assert.equal(roundAmount(amount, rules), Number(ex.amountToPrecision('BTC/USDT', amount)), `amount ${amount}`);
      assert.equal(roundPrice(price, rules), Number(ex.priceToPrecision('BTC/USDT', price)), `price ${price}`);
    }
  });

  describe('fitOrder', () => {
    const btc: MarketRules = {
      symbol: 'BTC/USDT',
      amountPrecision: { kind: 'step', step: '0.00001' },
      pricePrecision: { kind: 'step', step: '0.01' },
      minAmount: 0.0001,
      minCost: 10,
      maxAmount: 9000,
    };

    it('rounds amount down and prices to the tick', () => {
      const fit = fitOrder(btc, { amount: 0.0123456789, price: 30000.126, referencePrice: 1 });
      assert.deepEqual(fit, { ok: true, amount: 0.01234, price: 30000.13, cost: 370.2016042 });
    });

    it('refuses an amount that rounds to zero or falls below the minimum amount', () => {
      const zero = fitOrder(btc, { amount: 0.000009 });
      assert.equal(zero.ok, false);
      assert.equal(!zero.ok && zero.reason, 'amount_zero_after_rounding');
      const small = fitOrder(btc, { amount: 0.00009 });
      assert.equal(!small.ok && small.reason, 'amount_below_min');
      assert.match(!small.ok ? small.message : '', /BTC\/USDT: amount 0\.00009 is below the market minimum 0\.0001/);
    });

    it('refuses an order below the minimum notional, using limit, stop or reference price', () => {
      const r1 = fitOrder(btc, { amount: 0.0003, price: 30000 }); // 9 USDT
      assert.equal(!r1.ok && r1.reason, 'cost_below_min');
      const r2 = fitOrder(btc, { amount: 0.0003, stopPrice: 40000 }); // 12 USDT
      assert.equal(r2.ok, true);
      const r3 = fitOrder(btc, { amount: 0.0003, referencePrice: 30000 });
      assert.equal(!r3.ok && r3.reason, 'cost_below_min');
      // Without any price the notional cannot be known here; the venue will judge.
      assert.equal(fitOrder(btc, { amount: 0.0003 }).ok, true);
      // Exactly at the minimum passes: the compare is decimal, 0.57 x 100 is 57 (in floats 56.99999999999999).
      assert.equal(0.57 * 100 < 57, true);
      assert.equal(fitOrder({ ...btc, minCost: 57 }, { amount: 0.57, price: 100 }).ok, true);
    });

    it('refuses non-positive input and out-of-range amounts', () => {
      assert.equal(fitOrder(btc, { amount: -1 }).ok, false);
      assert.equal(fitOrder(btc, { amount: 0.01, price: 0 }).ok, false);
      const big = fitOrder(btc, { amount: 10000 });
      assert.equal(!big.ok && big.reason, 'amount_above_max');
    });
  });
});
