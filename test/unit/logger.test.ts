import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { TEMPORAL_SECURITY_ENV } from '../../infra/temporal-security';
import { Writable } from 'node:stream';
import { createLogger } from '../../infra/logger';
import { assertSecretsMasked } from '../../testkit/secret-log';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { lines, log: createLogger({ level: 'debug', destination }) };
}

describe('logger', () => {
  it('writes one JSON object per line with correlation fields', () => {
    const { lines, log } = capture();
    log.child({ workflowId: 'trader/binance/BTC/USDT', runId: 'r1', activity: 'placeOrder', symbol: 'BTC/USDT' }).info('order placed');
    const rec = JSON.parse(lines[0]);
    assert.equal(rec.msg, 'order placed');
    assert.equal(rec.level, 'info');
    assert.equal(rec.workflowId, 'trader/binance/BTC/USDT');
    assert.equal(rec.activity, 'placeOrder');
    assert.equal(rec.symbol, 'BTC/USDT');
  });

  it('masks secrets by field name, by registered value anywhere, and in URLs', () => {
    const { lines, log } = capture();
    assertSecretsMasked(log, () => lines, 'K3yThatMustNeverLeak_0123456789');
  });

  it('.env.example documents every variable the config reads', () => {
    const src = fs.readFileSync(path.join(__dirname, '..', '..', 'infra', 'config.ts'), 'utf8');
    const schema = src.slice(src.indexOf('const EnvSchema'), src.indexOf('export interface AppConfig'));
    // The Temporal security variables are spread in from infra/temporal-security.ts.
    assert.match(schema, /\.\.\.TEMPORAL_SECURITY_ENV/);
    const vars = [...[...schema.matchAll(/^\s{2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]), ...Object.keys(TEMPORAL_SECURITY_ENV)];
    assert.ok(vars.length > 20, `parsed only ${vars.length} variables`);
    const example = fs.readFileSync(path.join(__dirname, '..', '..', '.env.example'), 'utf8');
    const aliases = ['API_KEY', 'API_SECRET', 'USE_ENSEMBLE'];
    const missing = vars.filter((v) => !aliases.includes(v) && !new RegExp(`^${v}=`, 'm').test(example));
    assert.deepEqual(missing, []);
  });
});
