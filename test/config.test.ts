import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, describeConfig, parseConfig, readEnvironment, secretsOf } from '../infra/config';

const REPO = path.resolve(__dirname, '..');
const TOKEN = '123456789:AAFakeTokenForTestsOnly_abcdefghijk';

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
  { name: 'port out of range', env: { TEMPORAL_UI_PORT: '70000' }, variable: 'TEMPORAL_UI_PORT', expect: /integer from 1 to 65535/ },
  { name: 'strategy unknown', env: { STRATEGY: 'yolo' }, variable: 'STRATEGY', expect: /one of rules, ensemble, ppo, hybrid/ },
  { name: 'exchange API URL not http', env: { EXCHANGE_API_URL: 'ftp://mirror.example' }, variable: 'EXCHANGE_API_URL', expect: /http:\/\/ or https:\/\// },
  { name: 'ccxt options not a JSON object', env: { EXCHANGE_CCXT_OPTIONS: '["spot"]' }, variable: 'EXCHANGE_CCXT_OPTIONS', expect: /JSON object of ccxt options/ },
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

  it('reads .env under the process environment, which wins', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-env-'));
    fs.writeFileSync(path.join(dir, '.env'), 'TIMEFRAME=5m\nSYMBOLS=SOL/USDT\n');
    const env = readEnvironment({ cwd: dir, env: { SYMBOLS: 'ETH/USDT' } });
    const cfg = parseConfig(env);
    assert.equal(cfg.timeframe, '5m');
    assert.deepEqual(cfg.symbols, ['ETH/USDT']);
  });

  describe('through the real CLI', function () {
    this.timeout(60_000);
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

    it('an unknown command or option exits 2', () => {
      assert.equal(run(['launch-rockets'], {}).status, 2);
      assert.equal(run(['up', '--bogus'], {}).status, 2);
    });
  });
});
