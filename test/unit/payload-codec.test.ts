import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, PayloadEncryptionError, parseEncryptionKeys, payloadKeyId } from '../../infra/payload-codec';

/**
 * The payload codec on its own: what an encrypted payload looks like, that it round-trips, that
 * rotation works (the newest key encrypts, any listed key decrypts), and that anything tampered
 * with, relabelled or encrypted under a key we lack is refused with a clear error.
 */

const keyText = (id: string) => `${id}:${crypto.randomBytes(32).toString('base64')}`;
const ORDER = { clientOrderId: 'dt51376b6d-m-en', symbol: 'BTC/USDT', price: 19565.47, account: 'paper-binance' };
const plain = (): Payload => defaultPayloadConverter.toPayload(ORDER)!;
const text = (p: Payload) => Buffer.from(p.data ?? []).toString('latin1');
const meta = (p: Payload, k: string) => Buffer.from(p.metadata?.[k] ?? []).toString('utf8');

describe('payload codec (AES-256-GCM)', () => {
  const [a, b] = [keyText('A'), keyText('B')];

  it('encrypts with the newest key: no plaintext, the key id and encoding in the metadata', async () => {
    const codec = new AesGcmPayloadCodec(parseEncryptionKeys(`${a},${b}`));
    assert.equal(codec.encryptingKeyId, 'B');
    const [enc] = await codec.encode([plain()]);
    assert.equal(meta(enc, 'encoding'), ENCRYPTED_ENCODING);
    assert.equal(meta(enc, KEY_ID_METADATA), 'B');
    assert.equal(payloadKeyId(enc), 'B');
    for (const needle of [ORDER.clientOrderId, ORDER.symbol, 'json/plain', 'paper-binance']) assert.ok(!text(enc).includes(needle), `${needle} in the ciphertext`);
    assert.ok(text(plain()).includes(ORDER.clientOrderId), 'the control: the plain payload does hold it');
    // A fresh IV each time: the same value never encrypts to the same bytes.
    const [again] = await codec.encode([plain()]);
    assert.notDeepEqual(Buffer.from(again.data!), Buffer.from(enc.data!));
    const [dec] = await codec.decode([enc]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(dec), ORDER);
    assert.equal(meta(dec, 'encoding'), 'json/plain', 'the original metadata comes back');
  });

  it('rotation: payloads written with A decode after B becomes the newest; new ones use B', async () => {
    const before = new AesGcmPayloadCodec(parseEncryptionKeys(a));
    const [old] = await before.encode([plain()]);
    assert.equal(payloadKeyId(old), 'A');
    const after = new AesGcmPayloadCodec(parseEncryptionKeys(`${a},${b}`));
    assert.deepEqual(defaultPayloadConverter.fromPayload((await after.decode([old]))[0]), ORDER);
    const [fresh] = await after.encode([plain()]);
    assert.equal(payloadKeyId(fresh), 'B');
    // Once A is retired, its payloads cannot be read: said, not returned as garbage.
    const retired = new AesGcmPayloadCodec(parseEncryptionKeys(b));
    await assert.rejects(retired.decode([old]), (err: Error) => err instanceof PayloadEncryptionError && /key 'A', which is not among the configured keys \(B\)/.test(err.message));
  });

  it('passes unencrypted payloads through on decode (histories from before encryption was turned on)', async () => {
    const codec = new AesGcmPayloadCodec(parseEncryptionKeys(a));
    const [dec] = await codec.decode([plain()]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(dec), ORDER);
  });

  it('refuses a tampered ciphertext, a relabelled key id, a key swapped under the same id, a truncated payload', async () => {
    const keys = parseEncryptionKeys(`${a},${b}`);
    const codec = new AesGcmPayloadCodec(keys);
    const [enc] = await codec.encode([plain()]);
    const flipped: Payload = { ...enc, data: Buffer.from(enc.data!).map((x, i) => (i === 20 ? x ^ 1 : x)) };
    await assert.rejects(codec.decode([flipped]), /failed authentication/);
    // The key id is authenticated: even with the same key material under another id, a
    // relabelled payload does not open.
    const twin = new AesGcmPayloadCodec([...keys, { id: 'C', key: keys[1].key }]);
    const relabelled: Payload = { ...enc, metadata: { ...enc.metadata, [KEY_ID_METADATA]: Buffer.from('C') } };
    await assert.rejects(twin.decode([relabelled]), /key 'C' failed authentication/);
    assert.deepEqual(defaultPayloadConverter.fromPayload((await twin.decode([enc]))[0]), ORDER, 'the control: under its own id it opens');
    const impostor = new AesGcmPayloadCodec(parseEncryptionKeys(keyText('B')));
    await assert.rejects(impostor.decode([enc]), /failed authentication: it was altered, or TEMPORAL_ENCRYPTION_KEYS has a different key under that id/);
    await assert.rejects(codec.decode([{ ...enc, data: Buffer.from(enc.data!).subarray(0, 10) }]), /truncated/);
  });

  it('parses key lists and refuses bad ones without echoing key material', () => {
    const keys = parseEncryptionKeys(` ${a} , ${b} `);
    assert.deepEqual(keys.map((k) => k.id), ['A', 'B']);
    assert.equal(keys[0].key.length, 32);
    const urlSafe = `u1:${crypto.randomBytes(32).toString('base64url')}`;
    assert.equal(parseEncryptionKeys(urlSafe)[0].key.length, 32, 'base64url is accepted too');
    const short = `k1:${crypto.randomBytes(16).toString('base64')}`;
    const cases: Array<[string, RegExp]> = [
      ['', /at least one key/],
      [crypto.randomBytes(32).toString('base64'), /expected id:BASE64/],
      [short, /expected 32 bytes .* got 16 bytes/],
      [`k1:not base64!!`, /not base64/],
      [`${a},${a.replace(/^A/, 'A')}`, /listed twice/],
      [`bad id:${crypto.randomBytes(32).toString('base64')}`, /expected id:BASE64/],
    ];
    for (const [input, expected] of cases) {
      assert.throws(() => parseEncryptionKeys(input), (err: Error) => {
        assert.ok(err instanceof PayloadEncryptionError, String(err));
        assert.match(err.message, expected);
        const material = input.split(',').map((e) => e.split(':')[1]).filter((m) => m && m.length > 8);
        for (const m of material) assert.ok(!err.message.includes(m), `key material in "${err.message}"`);
        return true;
      });
    }
  });
});
