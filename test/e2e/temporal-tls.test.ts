import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { parseConfig, type AppConfig } from '../../infra/config';
import { connectTemporalClient } from '../../infra/temporal';
import { ENCRYPTED_ENCODING } from '../../infra/payload-codec';
import { freshDatabase, type TestDatabase } from '../../testkit/db';
import { makeTestPki, type TestPki } from '../../testkit/certificates';
import { devServerEnv } from '../../testkit/temporal';
import { startTlsProxy, type TlsProxy } from '../../testkit/tls-proxy';

/**
 * Worker and CLI against a Temporal cluster behind TLS that demands client certificates (mTLS):
 * the real dev server behind a TLS-terminating proxy (testkit/tls-proxy.ts), a CA and
 * certificates made in the test. `trader worker` runs workflows through it, `trader history
 * export` reads through it, payloads are encrypted on the way; without the client certificate,
 * with one from another CA, or with the wrong server name, both fail with a message that says
 * which setting to look at.
 */

const REPO = path.resolve(__dirname, '..', '..');
const SERVER_NAME = 'temporal.test';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function trader(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO, 'bin', 'trader.js'), ...args], { env, cwd: env.TRADER_HOME });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`trader ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts `trader worker` and resolves once it says it is polling (or rejects with its output if it exits). */
function startWorker(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO, 'bin', 'trader.js'), 'worker'], { env, cwd: env.TRADER_HOME });
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (/"msg":"worker running"/.test(out)) resolve({ child, output: () => out });
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('exit', (code) => reject(Object.assign(new Error(`trader worker exited with ${code}:\n${out}`), { code, out })));
  });
}

describe('mTLS to a Temporal cluster behind a TLS-terminating proxy', function () {
  this.timeout(300_000); // `trader` processes through a TLS-terminating proxy to a dev server
  let pki: TestPki;
  let dir: string;
  let env: TestWorkflowEnvironment;
  let proxy: TlsProxy;
  let db: TestDatabase;
  let base: NodeJS.ProcessEnv;
  let cfg: AppConfig;
  let worker: ChildProcess | undefined;
  const taskQueue = `tls-${process.pid}-${Date.now()}`;
  const workflowId = `system-check/tls-${Date.now()}`;

  before(async () => {
    pki = makeTestPki(SERVER_NAME);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-tls-'));
    const write = (name: string, text: string) => {
      const p = path.join(dir, name);
      fs.writeFileSync(p, text, { mode: 0o600 });
      return p;
    };
    env = await devServerEnv();
    const [host, port] = env.address.split(':');
    proxy = await startTlsProxy({ target: { host: host === 'localhost' ? '127.0.0.1' : host, port: Number(port) }, cert: pki.server.cert, key: pki.server.key, ca: pki.ca });
    db = await freshDatabase();
    base = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TRADER_HOME: dir,
      LOG_LEVEL: 'info',
      TEMPORAL_ADDRESS: `127.0.0.1:${proxy.port}`,
      TEMPORAL_NAMESPACE: env.namespace ?? 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
      TEMPORAL_TLS_CERT: write('client.pem', pki.client.cert),
      TEMPORAL_TLS_KEY: write('client.key', pki.client.key),
      TEMPORAL_TLS_CA: write('ca.pem', pki.ca),
      TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      TEMPORAL_ENCRYPTION_KEYS: `tls-test:${crypto.randomBytes(32).toString('base64')}`,
      DATABASE_URL: db.url,
    };
    cfg = parseConfig(base);
  });

  after(async () => {
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      await new Promise((r) => worker!.once('exit', r));
    }
    await proxy?.close();
    await db?.drop();
    await env?.teardown();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('`trader worker` runs workflows over mTLS, with encrypted payloads', async () => {
    const started = await startWorker(base);
    worker = started.child;
    const client = await connectTemporalClient(cfg.temporal);
    try {
      const result = await client.workflow.execute('systemCheckWorkflow', { taskQueue, workflowId, args: [{ pause: '1 second' }] });
      assert.ok((result as { second: { auditId: number } }).second.auditId > 0, 'the worker ran the check through the ledger');
    } finally {
      await client.connection.close();
    }
    assert.ok(proxy.authorized >= 2, `the worker and the client came through the proxy with verified certificates (${proxy.authorized})`);
    assert.ok(proxy.clients.every((cn) => cn === 'trader-worker'), proxy.clients.join(', '));
    // Read past the proxy, with no codec: what the cluster stores is ciphertext.
    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    const input = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    assert.equal(Buffer.from(input?.metadata?.encoding ?? []).toString(), ENCRYPTED_ENCODING);
    assert.ok(!Buffer.from(input?.data ?? []).toString('latin1').includes('1 second'), 'the input is not readable on the server');
    assert.ok(!started.output().includes(pki.client.key.split('\n')[1]), 'no key material in the worker log');
  });

  it('`trader history export` reads through mTLS', async () => {
    const out = path.join(dir, 'export');
    const r = await trader(['history', 'export', '--out', out, '--query', `WorkflowId = "${workflowId}"`], base);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /1 histories written/);
  });

  it('without the client certificate the CLI and the worker fail with a clear message', async () => {
    const refusedBefore = proxy.refused;
    const noCert = { ...base, TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '' };
    const cli = await trader(['history', 'export', '--out', path.join(dir, 'x')], noCert);
    assert.equal(cli.code, 1, cli.stderr);
    assert.match(cli.stderr, new RegExp(`cannot connect to Temporal at 127\\.0\\.0\\.1:${proxy.port} \\(namespace \\S+\\) over TLS: `));
    assert.match(cli.stderr, /\n {2}the server requires a client certificate \(mTLS\): set TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY/);
    const w = await trader(['worker'], noCert);
    assert.equal(w.code, 1, w.stderr);
    assert.match(w.stderr, /cannot connect to Temporal at .* over TLS: [\s\S]*the server requires a client certificate \(mTLS\)/);
    assert.ok(proxy.refused > refusedBefore, 'the proxy refused the handshakes');
  });

  it('a client certificate from another CA, or the wrong server name, is refused too', async () => {
    const stranger = { ...base, TEMPORAL_TLS_CERT: pki.strangerClient.cert, TEMPORAL_TLS_KEY: pki.strangerClient.key };
    const r1 = await trader(['history', 'export', '--out', path.join(dir, 'y')], stranger);
    assert.equal(r1.code, 1, r1.stderr);
    assert.match(r1.stderr, /cannot connect to Temporal at .* over TLS with a client certificate: .*\n {2}the server hung up right after the TLS handshake: it refused our client certificate \(TEMPORAL_TLS_CERT/);
    const wrongName = { ...base, TEMPORAL_TLS_SERVER_NAME: '' };
    const r2 = await trader(['history', 'export', '--out', path.join(dir, 'z')], wrongName);
    assert.equal(r2.code, 1, r2.stderr);
    assert.match(r2.stderr, /\n {2}the server's certificate is for another name than 127\.0\.0\.1: set TEMPORAL_TLS_SERVER_NAME/);
  });
});
