import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Payload } from '@temporalio/common';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { AesGcmPayloadCodec, parseEncryptionKeys } from '../infra/payload-codec';

/**
 * What payload encryption costs a trading decision: the real payloads of a recorded symbol
 * workflow (test/histories/symbol-trader-replay.json: inputs, candle reads, orders, fills,
 * results), encrypted and decrypted ROUNDS times with the AES-256-GCM codec; the median round is
 * reported, per payload and per candle (the payloads of one candle's history events). No goal is
 * set in the issue; the figure is for comparison with the decision latency (tens of ms).
 *
 *   npm run bench -- payload-codec [history.json] [rounds]
 */

const file = process.argv[2] ?? path.join(__dirname, '..', 'test', 'histories', 'symbol-trader-replay.json');
const ROUNDS = Number(process.argv[3] ?? 21);
const WARMUP_ROUNDS = 3;

const history = historyFromJSON(JSON.parse(fs.readFileSync(file, 'utf8')));
const payloads: Payload[] = [];
const walk = (v: unknown): void => {
  if (!v || typeof v !== 'object' || v instanceof Uint8Array) return;
  const o = v as Record<string, unknown>;
  if (o.metadata && typeof o.metadata === 'object' && 'data' in o) {
    payloads.push(o as Payload);
    return;
  }
  Object.values(o).forEach(walk);
};
walk(history.events);
const candles = history.events?.filter((e) => e.timerFiredEventAttributes).length ?? 1;

const codec = new AesGcmPayloadCodec(parseEncryptionKeys(`bench:${crypto.randomBytes(32).toString('base64')}`));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const nowNs = () => process.hrtime.bigint();

async function main(): Promise<void> {
  const encodeMs: number[] = [];
  const decodeMs: number[] = [];
  let encrypted: Payload[] = [];
  for (let r = 0; r < WARMUP_ROUNDS + ROUNDS; r++) {
    const t0 = nowNs();
    encrypted = await codec.encode(payloads);
    const t1 = nowNs();
    const back = await codec.decode(encrypted);
    const t2 = nowNs();
    if (back.length !== payloads.length) throw new Error('a payload was lost');
    if (r >= WARMUP_ROUNDS) {
      encodeMs.push(Number(t1 - t0) / 1e6);
      decodeMs.push(Number(t2 - t1) / 1e6);
    }
  }
  const plainBytes = payloads.reduce((n, p) => n + (p.data?.length ?? 0), 0);
  const encBytes = encrypted.reduce((n, p) => n + (p.data?.length ?? 0), 0);
  const encUs = (median(encodeMs) * 1000) / payloads.length;
  const decUs = (median(decodeMs) * 1000) / payloads.length;
  const perCandleUs = ((median(encodeMs) + median(decodeMs)) * 1000) / candles;
  console.log(`payloads: ${payloads.length} from ${path.basename(file)} (${candles} candles), ${(plainBytes / payloads.length).toFixed(0)} bytes on average`);
  console.log(`encrypt: ${encUs.toFixed(2)} us per payload; decrypt: ${decUs.toFixed(2)} us per payload (median of ${ROUNDS} rounds)`);
  console.log(`per candle (every payload of its events encrypted once and decrypted once): ${perCandleUs.toFixed(1)} us`);
  console.log(`size: +${((encBytes - plainBytes) / payloads.length).toFixed(0)} bytes per payload (IV, tag, the original metadata inside)`);
  console.log(`reproduce: npm run bench -- payload-codec${process.argv[2] ? ` ${process.argv[2]}` : ''}${process.argv[3] ? ` ${ROUNDS}` : ''}`);
  console.log(JSON.stringify({ encrypt_us_per_payload: Number(encUs.toFixed(2)), decrypt_us_per_payload: Number(decUs.toFixed(2)), us_per_candle: Number(perCandleUs.toFixed(1)), payloads: payloads.length }));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
