import assert from 'node:assert/strict';
import {
  DIV_SCALE,
  decAdd,
  decCmp,
  decDivTrunc,
  decIsZero,
  decMin,
  decMul,
  decNeg,
  decSub,
  isDecimalString,
  roundToSignificant,
  roundToStep,
  toDecimalString,
} from '../../lib/decimal';

describe('decimal: the one exact decimal arithmetic (ledger, paper exchange, market precision)', () => {
  it('writes canonical text: plain notation, no trailing zeros, no -0 (PostgreSQL trim_scale)', () => {
    // numeric columns come back as text carrying the column's scale
    assert.equal(toDecimalString('64123.500000000000000000'), '64123.5');
    assert.equal(toDecimalString('-0.000000000000000000'), '0');
    assert.equal(toDecimalString('0010.0'), '10');
    assert.equal(toDecimalString(' 1.50 '), '1.5');
    assert.equal(toDecimalString('2.5e-3'), '0.0025');
    assert.equal(toDecimalString(1.5e21), '1500000000000000000000');
    assert.equal(toDecimalString(-0), '0');
    assert.equal(decNeg('0'), '0');
    assert.equal(decSub('1.10', '1.1'), '0');
    assert.equal(decMul('-0.5', '0'), '0');
  });

  it('reads a JS number at 15 significant digits, so float noise does not become money', () => {
    assert.equal(0.1 + 0.2, 0.30000000000000004);
    assert.equal(toDecimalString(0.1 + 0.2), '0.3');
    assert.equal(decAdd(0.1, 0.2), '0.3');
    assert.equal(toDecimalString(0.7 - 0.4), '0.3');
    assert.equal(toDecimalString(1e-8), '0.00000001');
    assert.equal(toDecimalString(123456789.123456), '123456789.123456');
  });

  it('adds, subtracts and multiplies exactly at any size', () => {
    const a = '123456789012345678901234567890.123456789012345678';
    assert.equal(decAdd(a, '0.000000000000000001'), '123456789012345678901234567890.123456789012345679');
    assert.equal(decSub('0.3', '0.1'), '0.2');
    assert.equal(decMul('0.012345', '37347.2'), '461.051184');
    assert.equal(decMul(a, '-2'), '-246913578024691357802469135780.246913578024691356');
    assert.equal(decCmp('0.30', 0.3), 0);
    assert.equal(decCmp('-1', '0.5'), -1);
    assert.equal(decCmp('1e3', '999.999999999999999999'), 1);
    assert.equal(decMin('2', '-3.5'), '-3.5');
    assert.equal(decIsZero('-0.000'), true);
    assert.equal(decIsZero('0.000000000000000000001'), false);
  });

  it('divides truncated toward zero at 18 places, like the ledger SQL div(a * 1e18, b) * 1e-18', () => {
    assert.equal(DIV_SCALE, 18);
    assert.equal(decDivTrunc('2', '3'), '0.666666666666666666');
    assert.equal(decDivTrunc('-2', '3'), '-0.666666666666666666');
    assert.equal(decDivTrunc('2', '-3'), '-0.666666666666666666');
    assert.equal(decDivTrunc('1', '3', 2), '0.33');
    assert.equal(decDivTrunc('-0.0000000000000000001', '1'), '0', 'below the last place: zero, not -0');
    assert.equal(decDivTrunc('10', '4'), '2.5');
    // An average entry price: (0.4 x 100 + 0.6 x 101) / 1
    assert.equal(decDivTrunc(decAdd(decMul('0.4', '100'), decMul('0.6', '101')), '1'), '100.6');
    assert.equal(decDivTrunc(decAdd(decMul('0.3', '100.1'), decMul('0.4', '101')), '0.7'), '100.614285714285714285');
  });

  it('rounds to a step or to significant digits by magnitude: down, up, half away from zero', () => {
    assert.equal(roundToStep(0.7 - 0.4, '0.1', 'down'), '0.3');
    assert.equal(roundToStep('-0.123456', '0.001', 'down'), '-0.123');
    assert.equal(roundToStep('-0.123456', '0.001', 'up'), '-0.124');
    assert.equal(roundToStep('0.0000001', '1', 'up'), '1', 'a sliver above zero is one step up');
    assert.equal(roundToStep('1.075', '0.05', 'nearest'), '1.1');
    assert.equal(roundToStep('-1.075', '0.05', 'nearest'), '-1.1');
    assert.equal(roundToStep('0.00029', '0.0003', 'nearest'), '0.0003');
    assert.equal(roundToStep('0.00044', '0.0003', 'down'), '0.0003');
    assert.equal(roundToStep('-0.004', '0.01', 'nearest'), '0');
    assert.equal(roundToSignificant('0.000123456', 3, 'down'), '0.000123');
    assert.equal(roundToSignificant('-0.000123456', 3, 'up'), '-0.000124');
    assert.equal(roundToSignificant(123456, 2, 'nearest'), '120000');
    assert.equal(roundToSignificant('0', 3, 'up'), '0');
  });

  it('refuses what is not a number, naming the value', () => {
    for (const bad of ['abc', '', 'NaN', 'Infinity', '1,5', '+1', '0x10']) {
      assert.throws(() => toDecimalString(bad), (e: Error) => e instanceof RangeError && e.message === `not a decimal number: ${JSON.stringify(bad)}`, bad);
    }
    assert.throws(() => decAdd(Number.NaN, 1), /not a finite number: NaN/);
    assert.throws(() => decMul(Infinity, 1), /not a finite number: Infinity/);
    assert.throws(() => decDivTrunc('1.5', '0.000'), /division by zero: 1\.5 \/ 0/);
    assert.throws(() => roundToStep(1, '0', 'down'), /a precision step must be positive, got '0'/);
    assert.throws(() => roundToStep(1, '-0.1', 'down'), /positive/);
    assert.throws(() => roundToSignificant(1, 0, 'down'), /significant digits must be a positive integer/);
  });

  it('tells the ledger its plain decimal text from anything else (no exponent, no sign +, no spaces)', () => {
    for (const ok of ['0', '-12.5', '100', '0.001']) assert.equal(isDecimalString(ok), true, ok);
    for (const no of ['1e5', '+1', ' 1', '1.', '.5', '', '-']) assert.equal(isDecimalString(no), false, no);
  });
});
