import assert from 'node:assert/strict';
import { registerSecret, type Logger } from '../infra/logger';

/**
 * Logs the secrets a trader's logs must never show (a secret in a field named like one, a
 * registered API key inside an error and a message, a password in a URL) and checks the lines
 * written: none of them is there, and the redaction mark is. For every log format.
 */
export function assertSecretsMasked(log: Logger, written: () => string[], key: string): string {
  registerSecret(key);
  log.info({ apiKey: 'plain-field-secret', nested: { secret: 'also-hidden' } }, 'by key');
  log.warn({ err: new Error(`exchange said: invalid key ${key}`) }, `request with ${key} failed`);
  log.info({ url: 'postgres://trader:pa55w0rd@db:5432/trader' }, 'db');
  const all = written().join('\n');
  for (const leaked of ['plain-field-secret', 'also-hidden', key, 'pa55w0rd']) {
    assert.ok(!all.includes(leaked), `${leaked} leaked: ${all}`);
  }
  assert.match(all, /\[REDACTED\]/);
  return all;
}
