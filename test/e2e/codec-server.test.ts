import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { AesGcmPayloadCodec, parseEncryptionKeys, payloadKeyId } from '../../infra/payload-codec';
import { installTemporalRuntime, openTemporal, type TemporalStack } from '../../infra/temporal';
import { createActivities } from '../../activities';
import { freePort, freshDatabase, testLog, type TestDatabase } from '../../testkit/db';

/**
 * `trader codec-server` as the Temporal Web UI and CLI call it: POST /encode and /decode with
 * proto3-JSON payloads. The real CLI process, real HTTP: the right token decodes (also payloads
 * written with an older key), a wrong or missing one gets 401, a browser origin other than the
 * configured UI gets no CORS grant and no answer, bad requests get a clear 4xx.
 */

const REPO = path.resolve(__dirname, '..', '..');
const UI_ORIGIN = 'http://localhost:8233';
const TOKEN = crypto.randomBytes(24).toString('hex');
const KEY_A = `A:${crypto.randomBytes(32).toString('base64')}`;
const KEY_B = `B:${crypto.randomBytes(32).toString('base64')}`;

type JsonPayload = { metadata: Record<string, string>; data: string };
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
  data: Buffer.from(p.data ?? []).toString('base64'),
});
const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data, 'base64'),
});

describe('trader codec-server', function () {
  this.timeout(120_000); // `trader codec-server` as a child process
  let home: string;
  let child: ChildProcess;
  let url: string;
  let output = '';
  const env = () => ({ PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TRADER_HOME: path.join(home, 'state'), LOG_LEVEL: 'info' });

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-codec-'));
    child = spawn(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'codec-server', '--port', '0'], {
      cwd: home,
      env: { ...env(), TEMPORAL_ENCRYPTION_KEYS: `${KEY_A},${KEY_B}`, CODEC_SERVER_TOKEN: TOKEN },
    });
    url = await new Promise<string>((resolve, reject) => {
      const onData = (d: Buffer) => {
        output += d;
        const m = /codec server on (http:\/\/127\.0\.0\.1:\d+) \(keys A, B; new payloads use B\)/.exec(output);
        if (m) resolve(m[1]);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`codec-server exited with ${code}:\n${output}`)));
    });
  });

  after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
    }
    fs.rmSync(home, { recursive: true, force: true });
  });

  const post = (pathname: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${url}${pathname}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const originals = [defaultPayloadConverter.toPayload({ clientOrderId: 'dt51376b6d-m-en', qty: 0.0107 })!, defaultPayloadConverter.toPayload('BTC/USDT')!];

  it('listens on 127.0.0.1 by default and says how to point the UI and the CLI at it, without printing the token', () => {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(output, /Temporal UI codec endpoint: http:\/\/127\.0\.0\.1:\d+\/<CODEC_SERVER_TOKEN>/);
    assert.match(output, /--codec-auth "Bearer \$CODEC_SERVER_TOKEN"/);
    assert.match(output, /CORS granted to http:\/\/localhost:8233, http:\/\/127\.0\.0\.1:8233 only/);
    assert.ok(!output.includes(TOKEN), 'the token is not printed');
  });

  it('encodes with the newest key and decodes back to the original payloads (right token)', async () => {
    const enc = await post('/encode', { payloads: originals.map(toJson) }, auth);
    assert.equal(enc.status, 200, await enc.clone().text());
    const encoded = ((await enc.json()) as { payloads: JsonPayload[] }).payloads;
    assert.equal(encoded.length, 2);
    assert.ok(encoded.every((p) => payloadKeyId(fromJson(p)) === 'B'), 'encrypted with B, the newest');
    assert.ok(!Buffer.from(encoded[0].data, 'base64').toString('latin1').includes('dt51376b6d'), 'ciphertext');
    const dec = await post('/decode', { payloads: encoded }, auth);
    assert.equal(dec.status, 200);
    assert.deepEqual(((await dec.json()) as { payloads: JsonPayload[] }).payloads, originals.map(toJson));
  });

  it('decodes payloads written with the older key A (rotation), also with the token in the path as the UI sends it', async () => {
    const [old] = await new AesGcmPayloadCodec(parseEncryptionKeys(KEY_A)).encode([originals[0]]);
    const res = await post(`/${TOKEN}/decode`, { payloads: [toJson(old)] }, { Origin: UI_ORIGIN });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), UI_ORIGIN);
    assert.deepEqual(defaultPayloadConverter.fromPayload(fromJson(((await res.json()) as { payloads: JsonPayload[] }).payloads[0])), { clientOrderId: 'dt51376b6d-m-en', qty: 0.0107 });
  });

  it('401 for a wrong token, a missing one, or a wrong token in the path', async () => {
    const [enc] = await new AesGcmPayloadCodec(parseEncryptionKeys(KEY_B)).encode([originals[0]]);
    const body = { payloads: [toJson(enc)] };
    for (const [pathname, headers] of [
      ['/decode', { Authorization: `Bearer ${crypto.randomBytes(24).toString('hex')}` }],
      ['/decode', { Authorization: `Bearer ${TOKEN.slice(0, -1)}` }],
      ['/decode', { Authorization: TOKEN }],
      ['/decode', {}],
      [`/${TOKEN.toUpperCase()}x/decode`, {}],
    ] as Array<[string, Record<string, string>]>) {
      const res = await post(pathname, body, headers);
      assert.equal(res.status, 401, `${pathname} ${JSON.stringify(headers)}`);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.ok(!(await res.text()).includes('dt51376b6d'), 'nothing decoded in a refusal');
    }
  });

  it('grants CORS to the configured UI origin only; another origin gets no grant and no answer', async () => {
    const preflight = (origin: string) =>
      fetch(`${url}/decode`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'content-type,x-namespace,authorization' } });
    const ok = await preflight(UI_ORIGIN);
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('access-control-allow-origin'), UI_ORIGIN);
    assert.match(ok.headers.get('access-control-allow-headers') ?? '', /X-Namespace/);
    assert.match(ok.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    assert.match(ok.headers.get('access-control-allow-methods') ?? '', /POST/);
    for (const origin of ['https://evil.example', 'http://localhost:8234', 'http://localhost:8233.evil.example', 'null']) {
      const bad = await preflight(origin);
      assert.equal(bad.headers.get('access-control-allow-origin'), null, `${origin} got a CORS grant`);
      assert.equal(bad.status, 403);
      const [enc] = await new AesGcmPayloadCodec(parseEncryptionKeys(KEY_B)).encode([originals[0]]);
      const res = await post('/decode', { payloads: [toJson(enc)] }, { ...auth, Origin: origin });
      assert.equal(res.status, 403, `${origin} with the right token`);
      assert.equal(res.headers.get('access-control-allow-origin'), null);
      assert.ok(!(await res.text()).includes('dt51376b6d'));
    }
  });

  it('clear 4xx for what it cannot serve: bad JSON, bad shape, an unknown key, another path or method', async () => {
    assert.equal((await post('/decode', 'not json', auth)).status, 400);
    const shape = await post('/decode', { payloads: [{ data: 'not base64 !!' }] }, auth);
    assert.equal(shape.status, 400);
    assert.match(await shape.text(), /payloads\.0\.data: expected base64/);
    const [foreign] = await new AesGcmPayloadCodec(parseEncryptionKeys(`C:${crypto.randomBytes(32).toString('base64')}`)).encode([originals[0]]);
    const unknown = await post('/decode', { payloads: [toJson(foreign)] }, auth);
    assert.equal(unknown.status, 422);
    assert.match(await unknown.text(), /key 'C', which is not among the configured keys \(A, B\)/);
    assert.equal((await post('/other', { payloads: [] }, auth)).status, 404);
    assert.equal((await fetch(`${url}/decode`, { headers: auth })).status, 405);
  });

  it('refuses to start without keys or a token (exit 2, both named)', () => {
    const r = spawnSync(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'codec-server', '--port', '0'], { cwd: home, env: env(), encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /- TEMPORAL_ENCRYPTION_KEYS=\(unset\): required by the codec server/);
    assert.match(r.stderr, /- CODEC_SERVER_TOKEN=\(unset\): required by the codec server/);
  });
});

describe('the embedded dev server with encryption keys and TEMPORAL_UI_CODEC_ENDPOINT (what trader up opens)', function () {
  this.timeout(180_000); // trader up's embedded stack: PostgreSQL and a dev server with the UI codec endpoint
  let home: string;
  let stack: TemporalStack | undefined;
  let db: TestDatabase;

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-codec-stack-'));
    db = await freshDatabase();
  });
  after(async () => {
    await stack?.close();
    await db?.drop();
    fs.rmSync(home, { recursive: true, force: true });
  });

  it('points the Web UI at the codec server, and its clients and workers encrypt', async () => {
    const uiPort = await freePort();
    const endpoint = `http://127.0.0.1:8888/${TOKEN}`;
    installTemporalRuntime(testLog);
    stack = await openTemporal({
      namespace: 'default',
      home: path.join(home, 'temporal'),
      cliPath: process.env.TEMPORAL_CLI_PATH,
      port: await freePort(),
      uiPort,
      log: testLog,
      encryptionKeys: parseEncryptionKeys(`${KEY_A},${KEY_B}`),
      uiCodecEndpoint: endpoint,
    });
    // What the UI's page reads to find its codec server.
    const settings = (await (await fetch(`http://127.0.0.1:${uiPort}/api/v1/settings`)).json()) as { Codec?: { Endpoint?: string } };
    assert.equal(settings.Codec?.Endpoint, endpoint);
    assert.equal(fs.statSync(path.join(home, 'temporal')).mode & 0o777, 0o700, 'the SQLite file lives in an owner-only directory');
    // devServerExtraArgs: write-ahead logging (SQLite's default rollback journal cost the server about 60 % more CPU per workflow task).
    assert.ok(fs.existsSync(path.join(home, 'temporal', 'temporal.sqlite-wal')), 'the dev server keeps its SQLite in WAL mode');

    const worker = await Worker.create({
      connection: stack.nativeConnection,
      namespace: 'default',
      taskQueue: 'codec-stack',
      workflowsPath: require.resolve('../../workflows'),
      activities: createActivities({ sql: db.sql, log: testLog }),
      dataConverter: stack.dataConverter,
    });
    const result = await worker.runUntil(
      stack.client.workflow.execute('systemCheckWorkflow', { taskQueue: 'codec-stack', workflowId: 'system-check/codec-stack', args: [{ pause: '1 second' }] }),
    );
    assert.equal((result as { workflowId: string }).workflowId, 'system-check/codec-stack', 'the client decodes the result');
    const history = await stack.client.workflow.getHandle('system-check/codec-stack').fetchHistory();
    const completed = history.events?.find((e) => e.workflowExecutionCompletedEventAttributes)?.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0];
    assert.ok(completed && payloadKeyId(completed) === 'B', 'the stored result is encrypted with the newest key');
  });
});
