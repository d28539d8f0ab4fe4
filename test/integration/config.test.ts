import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, describeConfig, parseConfig, readEnvironment, secretsOf } from '../../infra/config';
import { makeTestPki, type TestPki } from '../../testkit/certificates';

const REPO = path.resolve(__dirname, '..', '..');
const TOKEN = '123456789:AAFakeTokenForTestsOnly_abcdefghijk';
const KEY16 = `k1:${Buffer.alloc(16, 7).toString('base64')}`;
const CLOUD = 'acct.tmprl.cloud:7233';

/** Each case: the environment, the variable that must be named, and words the message must carry. */
const BAD: Array<{ name: string; env: Record<string, string>; variable: string; expect: RegExp }> = [
  { name: 'DRY_RUN not a boolean', env: { DRY_RUN: 'maybe' }, variable: 'DRY_RUN', expect: /true or false/ },
  { name: 'live without keys', env: { DRY_RUN: 'false' }, variable: 'EXCHANGE_API_KEY', expect: /required when DRY_RUN=false/ },
  { name: 'key without secret', env: { EXCHANGE_API_KEY: 'abcdefghijklmnop' }, variable: 'EXCHANGE_SECRET_KEY', expect: /in pairs/ },
  { name: 'unknown exchange', env: { EXCHANGE: 'notanexchange' }, variable: 'EXCHANGE', expect: /ccxt exchange id/ },
  { name: 'exchange with bad characters', env: { EXCHANGE: 'bin ance!' }, variable: 'EXCHANGE', expect: /ccxt exchange id/ },
  { name: 'symbol without quote', env: { SYMBOLS: 'BTC,ETH/USDT' }, variable: 'SYMBOLS', expect: /BASE\/QUOTE.*bad: BTC/ },
  { name: 'symbol listed twice', env: { SYMBOLS: 'BTC/USDT,btc/usdt' }, variable: 'SYMBOLS', expect: /listed twice: BTC\/USDT/ },
  { name: 'unknown timeframe', env: { TIMEFRAME: '7m' }, variable: 'TIMEFRAME', expect: /one of 1m, 3m, 5m/ },
  { name: 'capital not a number', env: { INITIAL_CAPITAL: 'ten thousand' }, variable: 'INITIAL_CAPITAL', expect: /positive amount/ },
  { name: 'negative capital', env: { INITIAL_CAPITAL: '-5' }, variable: 'INITIAL_CAPITAL', expect: /positive amount/ },
  { name: 'position size as percent', env: { MAX_POSITION_SIZE: '5' }, variable: 'MAX_POSITION_SIZE', expect: /at most 1/ },
  { name: 'stop loss of 100%', env: { STOP_LOSS_PCT: '1' }, variable: 'STOP_LOSS_PCT', expect: /below 1/ },
  { name: 'take profit of zero', env: { TAKE_PROFIT_PCT: '0' }, variable: 'TAKE_PROFIT_PCT', expect: /above 0/ },
  { name: 'max drawdown above 1', env: { MAX_DRAWDOWN: '1.5' }, variable: 'MAX_DRAWDOWN', expect: /at most 1/ },
  { name: 'influx url not a url', env: { INFLUXDB_URL: 'localhost:8086', INFLUXDB_TOKEN: 't', INFLUXDB_ORG: 'o' }, variable: 'INFLUXDB_URL', expect: /URL/ },
  { name: 'influx without token', env: { INFLUXDB_URL: 'http://localhost:8086', INFLUXDB_ORG: 'o' }, variable: 'INFLUXDB_TOKEN', expect: /required when INFLUXDB_URL/ },
  { name: 'malformed bot token', env: { TELEGRAM_BOT_TOKEN: 'not-a-token', TELEGRAM_ADMIN_IDS: '1' }, variable: 'TELEGRAM_BOT_TOKEN', expect: /BotFather token/ },
  { name: 'bot token without admins', env: { TELEGRAM_BOT_TOKEN: TOKEN }, variable: 'TELEGRAM_ADMIN_IDS', expect: /user ids allowed/ },
  { name: 'admin ids not numeric', env: { TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_ADMIN_IDS: '12,@alice' }, variable: 'TELEGRAM_ADMIN_IDS', expect: /bad: @alice/ },
  { name: 'unknown log level', env: { LOG_LEVEL: 'LOUD' }, variable: 'LOG_LEVEL', expect: /one of trace, debug/ },
  { name: 'temporal address without port', env: { TEMPORAL_ADDRESS: 'temporal.internal' }, variable: 'TEMPORAL_ADDRESS', expect: /host:port/ },
  { name: 'metrics address with a host name', env: { TEMPORAL_METRICS_ADDRESS: 'localhost:9464' }, variable: 'TEMPORAL_METRICS_ADDRESS', expect: /ip:port to serve Prometheus metrics on/ },
  { name: 'database url of another kind', env: { DATABASE_URL: 'mysql://u:p@h/db' }, variable: 'DATABASE_URL', expect: /postgres:\/\// },
  { name: 'sqlite synchronous unknown', env: { TEMPORAL_SQLITE_SYNCHRONOUS: 'off' }, variable: 'TEMPORAL_SQLITE_SYNCHRONOUS', expect: /one of normal, full, extra/ },
  { name: 'port out of range', env: { TEMPORAL_UI_PORT: '70000' }, variable: 'TEMPORAL_UI_PORT', expect: /integer from 1 to 65535/ },
  { name: 'strategy unknown', env: { STRATEGY: 'yolo' }, variable: 'STRATEGY', expect: /not found: not a built-in \(rules, ensemble, ppo, hybrid\)/ },
  { name: 'strategy params not JSON', env: { STRATEGY_PARAMS: '{"a":' }, variable: 'STRATEGY_PARAMS', expect: /not JSON/ },
  { name: 'strategy budget not a number', env: { STRATEGY_BUDGET_MS: 'soon' }, variable: 'STRATEGY_BUDGET_MS', expect: /whole milliseconds/ },
  { name: 'exchange API URL not http', env: { EXCHANGE_API_URL: 'ftp://mirror.example' }, variable: 'EXCHANGE_API_URL', expect: /http:\/\/ or https:\/\// },
  { name: 'ccxt options not a JSON object', env: { EXCHANGE_CCXT_OPTIONS: '["spot"]' }, variable: 'EXCHANGE_CCXT_OPTIONS', expect: /JSON object of ccxt options/ },
  { name: 'a TLS client certificate without its key', env: { TEMPORAL_ADDRESS: 'localhost:7233', TEMPORAL_TLS_CERT: '/nonexistent/client.pem' }, variable: 'TEMPORAL_TLS_KEY', expect: /required with TEMPORAL_TLS_CERT/ },
  { name: 'a TLS key without its certificate', env: { TEMPORAL_ADDRESS: 'localhost:7233', TEMPORAL_TLS_KEY: '/nonexistent/client.key' }, variable: 'TEMPORAL_TLS_CERT', expect: /required with TEMPORAL_TLS_KEY/ },
  { name: 'a TLS file that cannot be read', env: { TEMPORAL_ADDRESS: 'localhost:7233', TEMPORAL_TLS_CA: '/nonexistent/ca.pem' }, variable: 'TEMPORAL_TLS_CA', expect: /cannot read the file \(no such file\)/ },
  { name: 'an API key with TLS off', env: { TEMPORAL_ADDRESS: CLOUD, TEMPORAL_API_KEY: 'eyJhbGciOiJFUzI1NiJ9.cloudkey', TEMPORAL_TLS: 'false', TEMPORAL_ENCRYPTION: 'false' }, variable: 'TEMPORAL_API_KEY', expect: /needs TLS, but TEMPORAL_TLS=false/ },
  { name: 'TLS settings for the embedded dev server', env: { TEMPORAL_TLS_CA: '/etc/ssl/ca.pem' }, variable: 'TEMPORAL_TLS_CA', expect: /set TEMPORAL_ADDRESS too/ },
  { name: 'TLS on with no value', env: { TEMPORAL_ADDRESS: 'localhost:7233', TEMPORAL_TLS: 'sometimes' }, variable: 'TEMPORAL_TLS', expect: /true or false/ },
  { name: 'a TLS server name that is not a host name', env: { TEMPORAL_ADDRESS: 'localhost:7233', TEMPORAL_TLS_SERVER_NAME: 'not a host' }, variable: 'TEMPORAL_TLS_SERVER_NAME', expect: /host name in the server certificate/ },
  { name: 'a remote cluster without payload encryption', env: { TEMPORAL_ADDRESS: 'temporal.example.com:7233' }, variable: 'TEMPORAL_ENCRYPTION_KEYS', expect: /clear text.*TEMPORAL_ENCRYPTION=false/ },
  { name: 'an encryption key of the wrong length', env: { TEMPORAL_ENCRYPTION_KEYS: KEY16 }, variable: 'TEMPORAL_ENCRYPTION_KEYS', expect: /32 bytes/ },
  { name: 'encryption on without keys', env: { TEMPORAL_ENCRYPTION: 'true' }, variable: 'TEMPORAL_ENCRYPTION_KEYS', expect: /required when TEMPORAL_ENCRYPTION=true/ },
  { name: 'a codec server origin with a path', env: { CODEC_SERVER_ORIGINS: 'http://localhost:8233/namespaces' }, variable: 'CODEC_SERVER_ORIGINS', expect: /not an origin/ },
  { name: 'a short codec server token', env: { CODEC_SERVER_TOKEN: 'letmein' }, variable: 'CODEC_SERVER_TOKEN', expect: /at least 16 characters/ },
  { name: 'watchdog threshold under a long poll', env: { WATCHDOG_NO_POLLER_SECONDS: '30' }, variable: 'WATCHDOG_NO_POLLER_SECONDS', expect: /from 70 to 86400.*up to a minute old/ },
  { name: 'watchdog switch not a boolean', env: { WATCHDOG: 'sometimes' }, variable: 'WATCHDOG', expect: /true or false/ },
];

function problemsOf(env: Record<string, string>): ConfigError {
  try {
    parseConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`configuration ${JSON.stringify(env)} was accepted`);
}

describe('configuration', () => {
  it('defaults to paper trading with the seed bot defaults', () => {
    const cfg = parseConfig({});
    assert.equal(cfg.dryRun, true);
    assert.equal(cfg.mode, 'paper');
    assert.deepEqual(cfg.symbols, ['BTC/USDT', 'ETH/USDT']);
    assert.equal(cfg.timeframe, '1h');
    assert.equal(cfg.risk.maxPositionSize, 0.05);
    assert.equal(cfg.risk.maxDrawdown, 0.15);
    assert.equal(cfg.exchange.id, 'binance');
    assert.equal(cfg.temporal.address, undefined);
    assert.equal(cfg.temporal.sqliteSynchronous, 'normal');
    assert.equal(parseConfig({ TEMPORAL_SQLITE_SYNCHRONOUS: ' FULL ' }).temporal.sqliteSynchronous, 'full');
    assert.equal(cfg.databaseUrl, undefined);
    assert.ok(path.isAbsolute(cfg.home));
  });

  it("accepts the Python bot's .env as written (aliases, Python log level names)", () => {
    const cfg = parseConfig({
      EXCHANGE: 'binance', API_KEY: 'k'.repeat(20), API_SECRET: 's'.repeat(20), DRY_RUN: 'false',
      SYMBOLS: 'BTC/USDT, ETH/USDT,ADA/USDT', INITIAL_CAPITAL: '10000', MAX_POSITION_SIZE: '0.1',
      USE_ENSEMBLE: 'true', LOG_LEVEL: 'INFO', TELEGRAM_BOT_TOKEN: TOKEN, TELEGRAM_ADMIN_IDS: '123456789,987654321',
    });
    assert.equal(cfg.mode, 'live');
    assert.equal(cfg.exchange.apiKey, 'k'.repeat(20));
    assert.deepEqual(cfg.symbols, ['BTC/USDT', 'ETH/USDT', 'ADA/USDT']);
    assert.equal(cfg.strategy, 'ensemble');
    assert.equal(cfg.logLevel, 'info');
    assert.deepEqual(cfg.telegram?.adminIds, [123456789, 987654321]);
    assert.equal(parseConfig({ LOG_LEVEL: 'WARNING' }).logLevel, 'warn');
  });

  for (const c of BAD) {
    it(`refuses ${c.name}`, () => {
      const err = problemsOf(c.env);
      const p = err.problems.find((x) => x.variable === c.variable);
      assert.ok(p, `no problem reported for ${c.variable}: ${err.message}`);
      assert.match(p.expected, c.expect);
      assert.match(err.message, new RegExp(`- ${c.variable}=`));
    });
  }

  it('takes the exchange endpoint override and ccxt options, and never shows a password in the URL', () => {
    const cfg = parseConfig({ EXCHANGE_API_URL: 'https://user:pr0xyPass@proxy.example/binance', EXCHANGE_CCXT_OPTIONS: '{"defaultType":"spot","adjustForTimeDifference":true}' });
    assert.equal(cfg.exchange.apiUrl, 'https://user:pr0xyPass@proxy.example/binance');
    assert.deepEqual(cfg.exchange.ccxtOptions, { defaultType: 'spot', adjustForTimeDifference: true });
    assert.ok(!JSON.stringify(describeConfig(cfg)).includes('pr0xyPass'));
    assert.ok(secretsOf(cfg).includes('pr0xyPass'), 'the logger masks it');
    assert.ok(!problemsOf({ EXCHANGE_API_URL: 'ftp://user:pr0xyPass@x' }).message.includes('pr0xyPass'));
  });

  it('lists every problem at once', () => {
    const err = problemsOf({ DRY_RUN: 'maybe', TIMEFRAME: '7m', MAX_DRAWDOWN: '2', SYMBOLS: 'BTC' });
    assert.deepEqual(err.problems.map((p) => p.variable).sort(), ['DRY_RUN', 'MAX_DRAWDOWN', 'SYMBOLS', 'TIMEFRAME']);
    assert.match(err.message, /^Invalid configuration \(4 problems\):/);
  });

  it('never prints a secret in a refusal', () => {
    const secret = 'SuperSecretValue_9f8e7d6c5b4a';
    const err = problemsOf({ EXCHANGE_API_KEY: secret, DATABASE_URL: 'postgres://trader:hunter2pass@db:5432/x', TIMEFRAME: 'bad' });
    assert.ok(!err.message.includes(secret));
    const tokenErr = problemsOf({ TELEGRAM_BOT_TOKEN: '12345:short', TELEGRAM_ADMIN_IDS: '1' });
    assert.ok(!tokenErr.message.includes('12345:short'), tokenErr.message);
    assert.match(tokenErr.message, /hidden/);
    const dbErr = problemsOf({ DATABASE_URL: 'mysql://trader:hunter2pass@db:5432/x' });
    assert.ok(!dbErr.message.includes('hunter2pass'), dbErr.message);
  });

  describe('Temporal TLS, API key and payload encryption', function () {
    this.timeout(60_000); // generates certificates with node-forge (RSA keys: seconds each)
    let pki: TestPki;
    let dir: string;
    const file = (name: string, text: string) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, text, { mode: 0o600 });
      return p;
    };
    before(() => {
      pki = makeTestPki('temporal.test');
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-tls-'));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('reads mTLS from files and the CA inline (with \\n escapes, as docker secrets often carry it)', () => {
      const cfg = parseConfig({
        TEMPORAL_ADDRESS: '127.0.0.1:7443',
        TEMPORAL_TLS_CERT: file('client.pem', pki.client.cert),
        TEMPORAL_TLS_KEY: file('client.key', pki.client.key),
        TEMPORAL_TLS_CA: pki.ca.trim().replace(/\n/g, '\\n'),
        TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
      });
      assert.equal(cfg.temporal.tls?.clientCertPair?.crt.toString(), pki.client.cert);
      assert.equal(cfg.temporal.tls?.clientCertPair?.key.toString(), pki.client.key);
      assert.match(cfg.temporal.tls?.serverRootCACertificate?.toString() ?? '', /^-----BEGIN CERTIFICATE-----\n/);
      assert.equal(cfg.temporal.tls?.serverNameOverride, 'temporal.test');
      assert.equal(cfg.temporal.encryptionKeys, undefined, 'a loopback cluster may run without payload encryption');
    });

    it('turns TLS on for an API key (Temporal Cloud) and for TEMPORAL_TLS=true; off for a plain cluster address', () => {
      const keys = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
      assert.deepEqual(parseConfig({ TEMPORAL_ADDRESS: CLOUD, TEMPORAL_API_KEY: 'eyJhbGciOiJFUzI1NiJ9.cloudkey', TEMPORAL_ENCRYPTION_KEYS: keys }).temporal.tls, {});
      assert.deepEqual(parseConfig({ TEMPORAL_ADDRESS: CLOUD, TEMPORAL_TLS: 'true', TEMPORAL_ENCRYPTION_KEYS: keys }).temporal.tls, {});
      const plain = parseConfig({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_ENCRYPTION: 'false' });
      assert.equal(plain.temporal.tls, undefined);
      assert.equal(plain.temporal.encryptionKeys, undefined);
      assert.deepEqual(parseConfig({ TEMPORAL_ADDRESS: 'temporal:7233', TEMPORAL_ENCRYPTION_KEYS: keys }).temporal.encryptionKeys?.map((k) => k.id), ['k1']);
    });

    it('refuses a key of another certificate, an expired certificate, a directory, text that is not PEM', () => {
      const base = { TEMPORAL_ADDRESS: '127.0.0.1:7443' };
      const cases: Array<[Record<string, string>, string, RegExp]> = [
        [{ TEMPORAL_TLS_CERT: file('c1.pem', pki.client.cert), TEMPORAL_TLS_KEY: file('s1.key', pki.server.key) }, 'TEMPORAL_TLS_KEY', /does not belong to the certificate/],
        [{ TEMPORAL_TLS_CERT: file('old.pem', pki.expiredClient.cert), TEMPORAL_TLS_KEY: file('old.key', pki.expiredClient.key) }, 'TEMPORAL_TLS_CERT', /expired on/],
        [{ TEMPORAL_TLS_CA: dir }, 'TEMPORAL_TLS_CA', /cannot read the file \(is a directory\)/],
        [{ TEMPORAL_TLS_CA: file('ca.txt', 'hello') }, 'TEMPORAL_TLS_CA', /not a PEM CA certificate/],
        [{ TEMPORAL_TLS_CERT: file('c2.pem', pki.client.cert), TEMPORAL_TLS_KEY: file('k2.key', pki.client.cert) }, 'TEMPORAL_TLS_KEY', /not an unencrypted PEM private key/],
      ];
      for (const [env, variable, expected] of cases) {
        const err = problemsOf({ ...base, ...env });
        const p = err.problems.find((x) => x.variable === variable);
        assert.ok(p, `no problem for ${variable}: ${err.message}`);
        assert.match(p.expected, expected);
      }
    });

    it('never shows the TLS key, the API key, the encryption keys or the codec token', () => {
      const apiKey = 'eyJhbGciOiJFUzI1NiJ9.cloud-api-key-secret-part';
      const encKey = Buffer.alloc(32, 9).toString('base64');
      const codecToken = 'codec-token-0123456789abcdef';
      const err = problemsOf({
        TEMPORAL_ADDRESS: CLOUD,
        TEMPORAL_API_KEY: apiKey,
        TEMPORAL_TLS: 'false',
        TEMPORAL_TLS_KEY: pki.client.key,
        TEMPORAL_ENCRYPTION_KEYS: `k1:${encKey},bad`,
        CODEC_SERVER_TOKEN: codecToken + ' x',
      });
      const keyBody = pki.client.key.split('\n')[1];
      for (const secret of [apiKey, encKey, codecToken, keyBody]) assert.ok(!err.message.includes(secret), `${secret.slice(0, 12)}... shown in:\n${err.message}`);
      for (const v of ['TEMPORAL_API_KEY', 'TEMPORAL_TLS_KEY', 'TEMPORAL_ENCRYPTION_KEYS', 'CODEC_SERVER_TOKEN']) assert.match(err.message, new RegExp(`- ${v}=`));
      // A key file's path is shown: the operator needs it to fix an unreadable file.
      const pathErr = problemsOf({ TEMPORAL_ADDRESS: '127.0.0.1:7443', TEMPORAL_TLS_KEY: '/secrets/missing.key' });
      assert.match(pathErr.message, /TEMPORAL_TLS_KEY="\/secrets\/missing.key"/);
    });
  });

  it('reads .env under the process environment, which wins', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-env-'));
    fs.writeFileSync(path.join(dir, '.env'), 'TIMEFRAME=5m\nSYMBOLS=SOL/USDT\n');
    const env = readEnvironment({ cwd: dir, env: { SYMBOLS: 'ETH/USDT' } });
    const cfg = parseConfig(env);
    assert.equal(cfg.timeframe, '5m');
    assert.deepEqual(cfg.symbols, ['ETH/USDT']);
  });

  describe('through the real CLI', function () {
    this.timeout(60_000); // each case runs the `trader` CLI as a child process (seconds to start)
    const run = (args: string[], env: Record<string, string>) => {
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-home-'));
      const res = spawnSync(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], {
        cwd: home, // no .env there
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TRADER_HOME: path.join(home, 'state'), ...env },
        encoding: 'utf8',
        timeout: 30_000,
      });
      return { ...res, home };
    };

    // Every bad configuration above, through the process: refused with its variable named, exit 2.
    for (const c of BAD) {
      it(`\`trader up\` refuses ${c.name} with exit code 2`, () => {
        const r = run(['up'], c.env);
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, new RegExp(`- ${c.variable}=`), r.stderr);
        assert.equal(fs.existsSync(path.join(r.home, 'state')), false, 'no state may be created');
      });
    }

    it('`trader up` with a bad config exits 2, lists every problem, starts nothing', () => {
      const r = run(['up'], { DRY_RUN: 'perhaps', MAX_POSITION_SIZE: '50', EXCHANGE_API_KEY: 'AKIAsecretsecretsecret' });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /Invalid configuration \(3 problems\)/);
      assert.match(r.stderr, /DRY_RUN="perhaps": expected true or false/);
      assert.match(r.stderr, /MAX_POSITION_SIZE="50"/);
      assert.ok(!r.stderr.includes('AKIAsecretsecretsecret'));
      assert.equal(fs.existsSync(path.join(r.home, 'state')), false, 'no state may be created');
    });

    it('`trader config check` prints the resolved config without secrets', () => {
      const r = run(['config', 'check'], { EXCHANGE_API_KEY: 'AKIAsecretsecretsecret', EXCHANGE_SECRET_KEY: 'sssssssssssssssssssss' });
      assert.equal(r.status, 0, r.stderr);
      const shown = JSON.parse(r.stdout);
      assert.equal(shown.exchange.apiKey, '(set)');
      assert.ok(!r.stdout.includes('AKIAsecret'));
    });

    it('`trader config check` shows the TLS subjects and key ids, never the keys', () => {
      const pki = makeTestPki('temporal.test');
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-check-'));
      fs.writeFileSync(path.join(home, 'client.pem'), pki.client.cert);
      fs.writeFileSync(path.join(home, 'client.key'), pki.client.key);
      const encKey = Buffer.alloc(32, 5).toString('base64');
      const r = run(['config', 'check'], {
        TEMPORAL_ADDRESS: 'temporal.example.com:7233',
        TEMPORAL_TLS_CERT: path.join(home, 'client.pem'),
        TEMPORAL_TLS_KEY: path.join(home, 'client.key'),
        TEMPORAL_API_KEY: 'eyJhbGciOiJFUzI1NiJ9.cloud-api-key-secret-part',
        TEMPORAL_ENCRYPTION_KEYS: `old:${Buffer.alloc(32, 4).toString('base64')},new:${encKey}`,
        CODEC_SERVER_TOKEN: 'codec-token-0123456789abcdef',
      });
      assert.equal(r.status, 0, r.stderr);
      const shown = JSON.parse(r.stdout);
      assert.deepEqual(shown.temporal.encryption, { keyIds: ['old', 'new'], encryptsWith: 'new' });
      assert.equal(shown.temporal.tls.clientCertificate, 'CN=trader-worker');
      assert.equal(shown.temporal.apiKey, '(set)');
      assert.equal(shown.codecServer.token, '(set)');
      for (const secret of [encKey, 'cloud-api-key-secret-part', 'codec-token-0123456789abcdef', pki.client.key.split('\n')[1]]) assert.ok(!r.stdout.includes(secret), r.stdout);
      assert.deepEqual(Object.keys(shown.temporal).filter((k) => /key|tls|encryption/i.test(k)).sort(), ['apiKey', 'encryption', 'tls']);
      assert.doesNotMatch(r.stdout, /"type": "Buffer"|"data": \[/, 'no raw bytes (keys, certificates) in the output');
    });

    it('an unknown command or option exits 2', () => {
      assert.equal(run(['launch-rockets'], {}).status, 2);
      assert.equal(run(['up', '--bogus'], {}).status, 2);
    });
  });
});
