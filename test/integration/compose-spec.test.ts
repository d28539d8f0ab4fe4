import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import dotenv from 'dotenv';

/**
 * docker-compose.yml through the Compose Specification's own loader (compose-go v2, the one inside
 * docker compose v2+; scripts/compose-check, built by scripts/setup-compose-check.sh), as
 * `docker compose config` reads it: schema validation, interpolation, anchors and merges, every
 * profile. No Docker engine runs here, so this is what stands in for `docker compose up`'s first
 * step. test/unit/compose.test.ts checks the file's own rules (pins, health ordering, secrets).
 *
 * And the Temporal the file starts is the one the cluster tests run (testkit/temporal-cluster.ts):
 * the server version scripts/setup-temporal-server.sh builds, the schema and namespace scripts it
 * mounts from deploy/temporal.
 *
 * Without the built loader the suite skips, except under CI=true, where it fails.
 */

const REPO = path.resolve(__dirname, '..', '..');
const BIN = path.join(REPO, '.tools', 'compose-check', 'compose-check');
const inCi = !!process.env.CI && process.env.CI !== 'false' && process.env.CI !== '0';
const run = promisify(execFile);

interface ComposeService {
  image?: string;
  profiles?: string[];
  command?: string[];
  entrypoint?: string[];
  volumes?: Array<{ type: string; source: string; target: string; read_only?: boolean }>;
  environment?: Record<string, string | null>;
}
interface ComposeProject {
  name: string;
  services: Record<string, ComposeService>;
}

async function load(file: string, envFile: string): Promise<{ ok: true; project: ComposeProject } | { ok: false; error: string }> {
  try {
    const { stdout } = await run(BIN, ['-env-file', envFile, file], { cwd: REPO, maxBuffer: 16 * 1024 * 1024 });
    return { ok: true, project: JSON.parse(stdout) as ComposeProject };
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return { ok: false, error: e.stderr || e.message };
  }
}

/** The `${VAR:?message}` variables of the file: what compose refuses to start without. */
function requiredVariables(text: string): Set<string> {
  return new Set([...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]*\}/g)].map((m) => m[1]));
}

describe('docker-compose.yml through the Compose Specification loader (compose-go v2)', function () {
  this.timeout(60_000);
  const composeFile = path.join(REPO, 'docker-compose.yml');
  const text = fs.readFileSync(composeFile, 'utf8');
  let dir: string;
  let filledEnv: string;

  before(function () {
    if (!fs.existsSync(BIN)) {
      if (inCi) throw new Error(`${BIN} missing: .ci/run builds it (bash scripts/setup-compose-check.sh)`);
      this.skip();
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-compose-'));
    // .env.example with every secret it leaves blank set, as a user's .env would be.
    const example = dotenv.parse(fs.readFileSync(path.join(REPO, '.env.example')));
    const filled = { ...example };
    for (const v of requiredVariables(text)) if (!filled[v]) filled[v] = `test-${v.toLowerCase()}`;
    filledEnv = path.join(dir, '.env');
    fs.writeFileSync(filledEnv, Object.entries(filled).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join('\n') + '\n');
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads with a filled-in .env: every service of every profile, the project name, images as written', async () => {
    const r = await load(composeFile, filledEnv);
    assert.ok(r.ok, r.ok ? '' : r.error);
    const p = r.project;
    assert.equal(p.name, 'durable-trader');
    for (const s of ['temporal-db', 'temporal-schema', 'temporal', 'temporal-namespace', 'temporal-ui', 'ledger-db', 'influxdb', 'grafana', 'trading-worker', 'training-worker', 'telegram-bot', 'codec-server']) {
      assert.ok(p.services[s], `service ${s} missing from the loaded project`);
    }
    // The anchors merged as compose merges them: the workers carry the shared settings.
    assert.equal(p.services['trading-worker'].environment?.TEMPORAL_ADDRESS, 'temporal:7233');
    assert.match(p.services['trading-worker'].environment?.DATABASE_URL ?? '', /^postgres:\/\/trader:test-ledger_db_password@ledger-db:5432\/trader$/);
  });

  it('refuses to load while a secret is blank, naming each one (what `docker compose up` says with the example .env)', async () => {
    const r = await load(composeFile, path.join(REPO, '.env.example'));
    assert.equal(r.ok, false, 'the example .env leaves the secrets blank: compose must refuse');
    const error = r.ok ? '' : r.error;
    const blank = [...requiredVariables(text)].filter((v) => !dotenv.parse(fs.readFileSync(path.join(REPO, '.env.example')))[v]);
    assert.ok(blank.length > 0);
    for (const v of blank) assert.match(error, new RegExp(`required variable ${v} is missing a value`), `no complaint about ${v}:\n${error}`);
  });

  it('is validated, not just parsed: a misspelt key is refused by the specification schema', async () => {
    const bad = path.join(dir, 'docker-compose.yml');
    fs.writeFileSync(bad, text.replace('  temporal:\n    image: ', '  temporal:\n    imagee: '));
    const r = await load(bad, filledEnv);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.error, /imagee/);
  });

  it('starts the Temporal the cluster tests run: the server version setup-temporal-server.sh builds, schema and namespace by the same deploy/temporal scripts', async () => {
    const r = await load(composeFile, filledEnv);
    assert.ok(r.ok, r.ok ? '' : r.error);
    const s = r.project.services;
    const built = /TEMPORAL_SERVER_VERSION="\$\{TEMPORAL_SERVER_VERSION:-v([0-9.]+)\}"/.exec(fs.readFileSync(path.join(REPO, 'scripts', 'setup-temporal-server.sh'), 'utf8'));
    assert.ok(built, 'scripts/setup-temporal-server.sh names its version');
    assert.equal(s.temporal.image, `temporalio/server:${built[1]}`);
    assert.equal(s['temporal-schema'].image, `temporalio/admin-tools:${built[1]}`);
    assert.equal(s['temporal-namespace'].image, `temporalio/admin-tools:${built[1]}`);
    for (const [name, script] of [['temporal-schema', 'setup-schema.sh'], ['temporal-namespace', 'create-namespace.sh']] as const) {
      const mount = s[name].volumes?.find((v) => v.target === '/scripts');
      assert.ok(mount, `${name} mounts /scripts`);
      assert.equal(path.resolve(mount.source), path.join(REPO, 'deploy', 'temporal'));
      assert.deepEqual([...(s[name].entrypoint ?? []), ...(s[name].command ?? [])], ['/bin/sh', `/scripts/${script}`]);
      assert.ok(fs.existsSync(path.join(REPO, 'deploy', 'temporal', script)));
    }
  });
});
