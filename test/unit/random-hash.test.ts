import assert from 'node:assert/strict';
import { clientOrderId } from '../../lib/engine/ids';
import { fnv1a } from '../../lib/hash';
import { keyedUniform, Prng } from '../../lib/random';

describe('the one hash and the one seeded generator', () => {
  it('fnv1a is FNV-1a 32 (the published test vectors)', () => {
    assert.equal(fnv1a(''), 0x811c9dc5);
    assert.equal(fnv1a('a'), 0xe40c292c);
    assert.equal(fnv1a('foobar'), 0xbf9cf968);
  });

  it('client order ids are the ones orders already carry (ids on exchanges and in recorded histories must not move)', () => {
    // Values computed by the code before lib/hash.ts existed; a change here orphans live orders.
    assert.equal(clientOrderId('trader/binance/BTC/USDT', 0, 'en'), 'dtcaf086b9-0-en');
    assert.equal(clientOrderId('trader/binance/ETH/USDT', 12345, 'st'), 'dt51376b6d-9ix-st');
    assert.equal(clientOrderId('trader/kraken/DOGE/USD', 0, 'en'), 'dt38d5bc8b-0-en');
    assert.equal(clientOrderId('trader/bybit/ÄÖ/USDT', 0, 'en'), 'dt697634a2-0-en', 'non-ASCII ids hash UTF-16 code units');
  });

  it('sfc32 gives the same sequence for a seed on every machine (trained models depend on it)', () => {
    // Pinned (the same as models/ppo/prng.ts gave before it moved here): the committed models were trained from these sequences.
    const first = (seed: number) => {
      const rng = new Prng(seed);
      return Array.from({ length: 4 }, () => rng.nextUint32());
    };
    assert.deepEqual(first(1), first(1));
    assert.deepEqual(first(1), [1950625580, 354034397, 661219729, 2802375379]);
    assert.notDeepEqual(first(2), first(1));
    assert.notDeepEqual(first(2 ** 32 + 1), first(1), 'seeds differing above bit 32 differ');
    assert.throws(() => new Prng(1.5), /seed must be a safe integer, got 1.5/);
  });

  it('draws integers in range and samples without replacement', () => {
    const rng = new Prng(7);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const k = rng.int(3, 7);
      assert.ok(Number.isInteger(k) && k >= 3 && k <= 7);
      seen.add(k);
    }
    assert.deepEqual([...seen].sort(), [3, 4, 5, 6, 7]);
    assert.throws(() => rng.int(5, 4), /bad integer range/);
    const items = Int32Array.from({ length: 50 }, (_, i) => i);
    rng.sampleInPlace(items, 10);
    assert.deepEqual([...items].sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i), 'a permutation: nothing lost or doubled');
    assert.notDeepEqual([...items.subarray(0, 10)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('keyedUniform: one draw per (seed, key), in [0, 1), roughly uniform', () => {
    assert.equal(keyedUniform(42, 'order-1'), keyedUniform(42, 'order-1'));
    assert.notEqual(keyedUniform(42, 'order-2'), keyedUniform(42, 'order-1'));
    assert.notEqual(keyedUniform(43, 'order-1'), keyedUniform(42, 'order-1'));
    const draws = Array.from({ length: 10_000 }, (_, i) => keyedUniform(1, `k${i}`));
    assert.ok(Math.min(...draws) >= 0 && Math.max(...draws) < 1);
    const deciles = new Array(10).fill(0);
    for (const d of draws) deciles[Math.floor(d * 10)]++;
    for (const n of deciles) assert.ok(n > 850 && n < 1150, `decile counts ${deciles.join(', ')}`);
  });
});
