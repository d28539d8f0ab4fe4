import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { findExecutable } from '../../infra/temporal';
import { clientOrderIdPrefix } from '../../lib/engine/ids';
import { symbolWorkflowId } from '../../lib/contracts/trading';
import { writeSyntheticCandleFiles } from '../../testkit/candles';
import { freePort } from '../../testkit/db';
import { devServerEnv } from '../../testkit/temporal';

/**
 * Secrets never persisted, payloads encrypted at rest, as an operator would run it: `trader up
 * --replay FILES --exit-when-done` on the embedded dev server and PostgreSQL, with exchange-looking
 * keys, a bot token, an InfluxDB token and payload encryption keys configured, then `trader history
 * export` of every workflow. Twice: without encryption, then with it. Searched afterwards: the
 * exported JSON (its base64 payloads decoded too), the Temporal server's SQLite files, the
 * PostgreSQL data directory (the ledger) and everything the commands printed.
 *
 * - No configured secret (nor the generated PostgreSQL password, nor the encryption key, nor the
 *   codec token) appears anywhere, in either run.
 * - With encryption, no client order id appears in the export or the SQLite file; the run without
 *   encryption is the control that proves the search finds them when they are there.
 * - Both runs make the same trades; search attributes stay readable (a visibility query by Symbol
 *   still finds the workflows); an operator with the codec server's token reads the payloads
 *   through the real Temporal CLI, and without it sees ciphertext.
 *
 * The candles are generated (SyntheticMarket, testkit/candles.ts), two symbols of 900 one-minute
 * candles: 400 decisions each after the feature warm-up, enough for several trades.
 */

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '..', '..');
const ROWS = 900;
const SYMBOLS = ['SYN0001/USDT', 'SYN0002/USDT'];
const hex = (n: number) => crypto.randomBytes(n).toString('hex');
const alnum = (n: number) => crypto.randomBytes(n * 2).toString('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, n);

/** Exchange-looking credentials and tokens: what a real .env holds. */
const SECRETS = {
  EXCHANGE_API_KEY: alnum(64),
  EXCHANGE_SECRET_KEY: alnum(64),
  TELEGRAM_BOT_TOKEN: `7${String(crypto.randomInt(1e8, 1e9))}:AA${alnum(33)}`,
  INFLUXDB_TOKEN: `${alnum(86)}==`,
};
const ENCRYPTION_KEY = crypto.randomBytes(32).toString('base64');
const CODEC_TOKEN = hex(24);

interface Trade {
  symbol: string;
  entryTime: number;
  exitTime: number;
  [k: string]: unknown;
}

interface RunResult {
  home: string;
  trades: Trade[];
  /** The exported histories' text, and every base64 string in them decoded. */
  exported: string;
  exportedFiles: number;
  symbolQueryHits: number;
  sqlite: Buffer[];
  postgres: Buffer[];
  output: string;
  pgPassword: string;
  /** `temporal workflow show` of a symbol workflow, with and without the codec server (encrypted run). */
  shownWithCodec?: string;
  shownWithoutCodec?: string;
}

/** Every string value of a JSON document, plus the decoding of those that are base64 (payload data, metadata). */
function jsonText(text: string): string {
  const out: string[] = [text];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      if (v.length >= 4 && v.length % 4 === 0 && /^[A-Za-z0-9+/]+={0,2}$/.test(v)) out.push(Buffer.from(v, 'base64').toString('latin1'));
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(JSON.parse(text));
  return out.join('\n');
}

function filesUnder(dir: string, keep: (p: string) => boolean = () => true): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath ?? e.path, e.name)).filter(keep);
}

async function startCodecServer(env: NodeJS.ProcessEnv): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'codec-server', '--port', '0'], { env, cwd: env.TRADER_HOME });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /codec server on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1], child });
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`trader codec-server exited with ${code}:\n${out}`)));
  });
}

describe('secrets never persisted; payloads encrypted at rest (trader up --replay, history export)', function () {
  this.timeout(1_200_000); // several `trader up --replay` runs with their own dev servers, and history exports
  let dir: string;
  let files: string[];
  let plain: RunResult;
  let encrypted: RunResult;

  async function replayRun(name: string, extra: Record<string, string>): Promise<RunResult> {
    const home = path.join(dir, name);
    fs.mkdirSync(home, { recursive: true, mode: 0o755 });
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TEMPORAL_CLI_PATH: process.env.TEMPORAL_CLI_PATH,
      TRADER_HOME: home,
      TEMPORAL_PORT: String(await freePort()),
      TEMPORAL_UI_PORT: String(await freePort()),
      POSTGRES_PORT: String(await freePort()),
      LOG_LEVEL: 'info',
      STRATEGY: 'rules',
      ...SECRETS,
      TELEGRAM_ADMIN_IDS: '123456789',
      // Configured, and unreachable: nothing is listening there.
      INFLUXDB_URL: 'http://127.0.0.1:9',
      INFLUXDB_ORG: 'trading',
      ...extra,
    };
    let output = '';
    const trader = async (args: string[]) => {
      const r = await run(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env, cwd: home, maxBuffer: 256 * 1024 * 1024 });
      output += r.stdout + r.stderr;
      return r;
    };
    const up = await trader(['up', '--replay', ...files, '--exit-when-done']);
    assert.match(up.stdout, /Replay finished/, `${name}: up --replay did not finish:\n${up.stdout.slice(-3000)}\n${up.stderr.slice(-3000)}`);
    const trades = JSON.parse((await trader(['trades', '--json'])).stdout) as Trade[];

    // The dev server `up` ran has stopped with it: `history export` serves the same SQLite file
    // itself, through a temporary dev server, and says so.
    const result: Partial<RunResult> = {};
    const out = path.join(home, 'export');
    const exp = await trader(['history', 'export', '--out', out]);
    assert.match(exp.stdout, /histories written/, exp.stderr);
    assert.match(exp.stderr, /`trader up` is not running\): reading .*temporal\.sqlite through a temporary dev server/);
    const exportedFiles = filesUnder(out, (f) => f.endsWith('.json') && !f.endsWith('index.json'));
    result.exportedFiles = exportedFiles.length;
    result.exported = exportedFiles.map((f) => jsonText(fs.readFileSync(f, 'utf8'))).join('\n');
    // Search attributes are not payloads: a visibility query on them works either way.
    const bySymbol = await trader(['history', 'export', '--out', path.join(home, 'by-symbol'), '--query', `Symbol = "${SYMBOLS[0]}"`]);
    result.symbolQueryHits = Number(/(\d+) histories written/.exec(bySymbol.stdout)?.[1] ?? 0);

    // Temporal's own CLI (workflow show, below) needs the file served: by hand.
    const sqliteFile = path.join(home, 'temporal', 'temporal.sqlite');
    const server = await devServerEnv({ dbFilename: sqliteFile, port: Number(env.TEMPORAL_PORT) });
    try {
      if (extra.TEMPORAL_ENCRYPTION_KEYS) {
        const temporal = findExecutable('temporal', process.env.TEMPORAL_CLI_PATH);
        assert.ok(temporal, 'the temporal CLI is installed (.tools/py/bin)');
        const codec = await startCodecServer(env);
        try {
          const show = (codecArgs: string[]) =>
            run(temporal, ['workflow', 'show', '-w', symbolWorkflowId('replay', SYMBOLS[0]), '--address', `127.0.0.1:${env.TEMPORAL_PORT}`, '-o', 'json', ...codecArgs], { env: { PATH: process.env.PATH, HOME: home }, maxBuffer: 256 * 1024 * 1024 });
          result.shownWithCodec = jsonText((await show(['--codec-endpoint', codec.url, '--codec-auth', `Bearer ${CODEC_TOKEN}`])).stdout);
          result.shownWithoutCodec = jsonText((await show([])).stdout);
          // A wrong token gets nothing decoded: the codec server refuses (401) and the CLI gives up.
          await assert.rejects(show(['--codec-endpoint', codec.url, '--codec-auth', 'Bearer not-the-token-0000000000']), (err: { stdout?: string }) => !(err.stdout ?? '').includes('SYN0001'));
        } finally {
          codec.child.kill('SIGTERM');
          await new Promise((r) => codec.child.once('exit', r));
        }
      }
    } finally {
      await server.teardown();
    }
    return {
      ...(result as RunResult),
      home,
      trades,
      output,
      sqlite: filesUnder(path.join(home, 'temporal'), (f) => path.basename(f).startsWith('temporal.sqlite')).map((f) => fs.readFileSync(f)),
      postgres: filesUnder(path.join(home, 'postgres')).map((f) => fs.readFileSync(f)),
      pgPassword: fs.readFileSync(path.join(home, 'postgres.password'), 'utf8').trim(),
    };
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-secrets-'));
    fs.chmodSync(dir, 0o755); // the embedded PostgreSQL runs as `postgres` when we are root
    files = writeSyntheticCandleFiles(dir, SYMBOLS, { timeframe: '1m', count: ROWS, exchange: 'synthetic' });
    plain = await replayRun('plain', {});
    encrypted = await replayRun('encrypted', { TEMPORAL_ENCRYPTION_KEYS: `at-rest-1:${ENCRYPTION_KEY}`, CODEC_SERVER_TOKEN: CODEC_TOKEN });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const orderIdPrefixes = () => SYMBOLS.map((s) => clientOrderIdPrefix(symbolWorkflowId('replay', s)));

  it('both runs trade, and make the same trades', () => {
    assert.ok(plain.trades.length >= 3, `the replay trades (${plain.trades.length} trades)`);
    assert.deepEqual(new Set(plain.trades.map((t) => t.symbol)), new Set(SYMBOLS));
    const key = (t: Trade) => JSON.stringify(t);
    assert.deepEqual(encrypted.trades.map(key).sort(), plain.trades.map(key).sort());
    // portfolio, two symbols, the system check
    assert.ok(plain.exportedFiles >= 4 && encrypted.exportedFiles === plain.exportedFiles, `${plain.exportedFiles} / ${encrypted.exportedFiles} histories exported`);
  });

  it('no secret anywhere: histories, the Temporal SQLite file, the ledger, the output (with and without encryption)', () => {
    for (const r of [plain, encrypted]) {
      const secrets: Record<string, string> = { ...SECRETS, 'the embedded PostgreSQL password': r.pgPassword, 'the encryption key': ENCRYPTION_KEY, 'the codec token': CODEC_TOKEN };
      for (const [what, value] of Object.entries(secrets)) {
        assert.ok(!r.exported.includes(value), `${what} in the exported histories of ${r.home}`);
        assert.ok(!r.sqlite.some((b) => b.includes(value)), `${what} in the Temporal SQLite file of ${r.home}`);
        assert.ok(!r.postgres.some((b) => b.includes(value)), `${what} in the PostgreSQL data directory (the ledger) of ${r.home}`);
        assert.ok(!r.output.includes(value), `${what} in the output of the commands of ${r.home}`);
      }
    }
  });

  it('the control: without encryption the order ids are there to find, in the export and in the SQLite file', () => {
    for (const prefix of orderIdPrefixes()) {
      assert.ok(plain.exported.includes(prefix), `order ids ${prefix}... in the plain export`);
      assert.ok(plain.sqlite.some((b) => b.includes(prefix)), `order ids ${prefix}... in the plain SQLite file`);
    }
    assert.ok(plain.exported.includes('"symbol":"SYN0001/USDT"'), 'payloads are readable JSON without encryption');
  });

  it('with encryption: no order id, position or price in the export or the SQLite file; search attributes still work', () => {
    for (const prefix of orderIdPrefixes()) {
      assert.ok(!encrypted.exported.includes(prefix), `order ids ${prefix}... in the encrypted export`);
      assert.ok(!encrypted.sqlite.some((b) => b.includes(prefix)), `order ids ${prefix}... in the encrypted run's SQLite file`);
    }
    const entryPrice = String(plain.trades[0].entryPrice);
    assert.ok(plain.exported.includes(entryPrice), `the control: the first entry price ${entryPrice} is in the plain export`);
    assert.ok(!encrypted.exported.includes(entryPrice), 'the first entry price is not in the encrypted export');
    assert.ok(!encrypted.exported.includes('"symbol":"SYN0001/USDT"'), 'no payload is readable JSON');
    assert.match(encrypted.exported, /binary\/encrypted/);
    assert.ok(encrypted.symbolQueryHits >= 1 && encrypted.symbolQueryHits === plain.symbolQueryHits, `a query on Symbol finds the workflow (${encrypted.symbolQueryHits} / ${plain.symbolQueryHits})`);
  });

  it('through the codec server the Temporal CLI shows the payloads; without it, ciphertext', () => {
    const prefix = orderIdPrefixes()[0];
    assert.ok(encrypted.shownWithCodec?.includes(prefix), 'with the codec server and its token, order ids are readable');
    assert.ok(encrypted.shownWithCodec?.includes('SYN0001/USDT'));
    assert.ok(!encrypted.shownWithoutCodec?.includes(prefix), 'without it, they are not');
  });
});
