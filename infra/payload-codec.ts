import crypto from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

/**
 * Encryption of every Temporal payload (workflow and activity inputs and results, signals,
 * updates, queries, memos, summaries, failure details) with AES-256-GCM from node:crypto, so a
 * Temporal cluster, its database and its UI hold ciphertext only. It runs in clients and workers
 * (and the codec server), never in workflow code: the workflow sandbox only sees decoded payloads.
 *
 * An encrypted payload is the original one, protobuf-serialised (so its own encoding is hidden
 * too), as `iv (12 bytes) | ciphertext | GCM tag (16 bytes)`, with metadata `encoding:
 * binary/encrypted` and the id of the key. Several keys allow rotation: the newest (last listed)
 * encrypts, any listed key decrypts. The key id and the encoding are authenticated (GCM's
 * additional data), so a payload relabelled with another key id fails to decrypt.
 *
 * Payloads that are not encrypted are passed through on decode: histories written before
 * encryption was turned on stay readable. A payload that names a key we do not have, or that
 * fails authentication, is an error, never silently returned as ciphertext.
 *
 * node:crypto is the library here; what is written by hand is only the framing above, which
 * Temporal leaves to each codec.
 */

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const CIPHER = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface EncryptionKey {
  id: string;
  key: Buffer;
}

/** A key list or a payload that cannot be used; the message never contains key material. */
export class PayloadEncryptionError extends Error {
  override name = 'PayloadEncryptionError';
}

/**
 * `id:BASE64[,id:BASE64...]`, oldest first: the last key encrypts, every key decrypts.
 * Each key is 32 random bytes in base64 (`openssl rand -base64 32`).
 */
export function parseEncryptionKeys(text: string): EncryptionKey[] {
  const entries = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (entries.length === 0) throw new PayloadEncryptionError('expected at least one key as id:BASE64');
  const keys: EncryptionKey[] = [];
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const id = colon > 0 ? entry.slice(0, colon) : '';
    const material = colon > 0 ? entry.slice(colon + 1) : '';
    const which = `key ${i + 1}${id ? ` ('${id}')` : ''}`;
    if (!KEY_ID_RE.test(id)) throw new PayloadEncryptionError(`${which}: expected id:BASE64, the id made of letters, digits, . _ - (e.g. 2026-07:${'A'.repeat(8)}...)`);
    if (keys.some((k) => k.id === id)) throw new PayloadEncryptionError(`key id '${id}' is listed twice`);
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(material)) throw new PayloadEncryptionError(`${which}: the key is not base64`);
    // Node's base64 decoder reads the URL-safe alphabet too.
    const key = Buffer.from(material, 'base64');
    if (key.length !== KEY_BYTES) throw new PayloadEncryptionError(`${which}: expected ${KEY_BYTES} bytes in base64 (openssl rand -base64 32), got ${key.length} bytes`);
    keys.push({ id, key });
  }
  return keys;
}

/** The base64 text of each key, so the logger can mask them wherever they appear. */
export function keyMaterialTexts(keys: EncryptionKey[]): string[] {
  return keys.flatMap((k) => [k.key.toString('base64'), k.key.toString('base64url')]);
}

const utf8 = (s: string) => Buffer.from(s, 'utf8');
const metaText = (p: Payload, k: string) => (p.metadata?.[k] ? Buffer.from(p.metadata[k]).toString('utf8') : undefined);
const additionalData = (keyId: string) => utf8(`${ENCRYPTED_ENCODING}\n${keyId}`);

export class AesGcmPayloadCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;
  private readonly newest: EncryptionKey;

  constructor(keys: EncryptionKey[]) {
    if (keys.length === 0) throw new PayloadEncryptionError('the payload codec needs at least one key');
    this.byId = new Map(keys.map((k) => [k.id, k.key]));
    if (this.byId.size !== keys.length) throw new PayloadEncryptionError('key ids must be unique');
    this.newest = keys[keys.length - 1];
  }

  /** The id of the key new payloads are encrypted with. */
  get encryptingKeyId(): string {
    return this.newest.id;
  }

  get keyIds(): string[] {
    return [...this.byId.keys()];
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => (isEncrypted(p) ? this.decrypt(p) : p));
  }

  private encrypt(payload: Payload): Payload {
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const iv = crypto.randomBytes(IV_BYTES);
    const cipher = crypto.createCipheriv(CIPHER, this.newest.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(additionalData(this.newest.id));
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    return {
      metadata: { encoding: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(this.newest.id) },
      data: Buffer.concat([iv, body, cipher.getAuthTag()]),
    };
  }

  private decrypt(payload: Payload): Payload {
    const keyId = metaText(payload, KEY_ID_METADATA);
    if (!keyId) throw new PayloadEncryptionError(`an encrypted payload without a ${KEY_ID_METADATA}`);
    const key = this.byId.get(keyId);
    if (!key) {
      throw new PayloadEncryptionError(`a payload is encrypted with key '${keyId}', which is not among the configured keys (${this.keyIds.join(', ')}): add it to TEMPORAL_ENCRYPTION_KEYS`);
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadEncryptionError(`an encrypted payload (key '${keyId}') is truncated`);
    const decipher = crypto.createDecipheriv(CIPHER, key, data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(additionalData(keyId));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadEncryptionError(`a payload encrypted with key '${keyId}' failed authentication: it was altered, or TEMPORAL_ENCRYPTION_KEYS has a different key under that id`);
    }
    const decoded = temporal.api.common.v1.Payload.decode(plain);
    return { metadata: decoded.metadata ?? {}, data: decoded.data ?? new Uint8Array() };
  }
}

export function isEncrypted(p: Payload): boolean {
  return metaText(p, 'encoding') === ENCRYPTED_ENCODING;
}

/** The key id an encrypted payload names (undefined for a plain payload). */
export function payloadKeyId(p: Payload): string | undefined {
  return isEncrypted(p) ? metaText(p, KEY_ID_METADATA) : undefined;
}
