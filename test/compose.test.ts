import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';

/**
 * No Docker engine runs on the build machines, so docker-compose.yml is checked by reading it:
 * the services the design names exist, depend on healthy peers, and get their secrets from the
 * environment rather than from the file.
 */
const REPO = path.resolve(__dirname, '..');
const text = fs.readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8');
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML
const compose = parse(text) as { services: Record<string, Record<string, any>>; volumes?: Record<string, unknown> };

describe('docker-compose.yml', () => {
  it('has Temporal with its UI, the ledger database and the trading worker', () => {
    for (const s of ['temporal', 'temporal-ui', 'temporal-db', 'ledger-db', 'trading-worker']) {
      assert.ok(compose.services[s], `service ${s} missing`);
    }
  });

  it('points the worker at the cluster and the ledger, not at embedded defaults', () => {
    const env = compose.services['trading-worker'].environment;
    assert.equal(env.TEMPORAL_ADDRESS, 'temporal:7233');
    assert.match(env.DATABASE_URL, /^postgres:\/\/trader:.*@ledger-db:5432\/trader$/);
    assert.deepEqual(compose.services['trading-worker'].command, ['up', '--no-telegram']);
    assert.deepEqual(compose.services['telegram-bot'].command, ['worker', '--queue', 'telegram']);
    assert.equal(compose.services['telegram-bot'].environment.TEMPORAL_ADDRESS, 'temporal:7233');
  });

  it('starts services after the ones they need are healthy', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      const deps = svc.depends_on;
      if (!deps || Array.isArray(deps)) continue;
      for (const [dep, cond] of Object.entries(deps as Record<string, { condition: string }>)) {
        assert.ok(compose.services[dep], `${name} depends on unknown service ${dep}`);
        if (cond.condition === 'service_healthy') assert.ok(compose.services[dep].healthcheck, `${dep} has no healthcheck`);
      }
    }
  });

  it('declares every named volume it mounts', () => {
    for (const svc of Object.values(compose.services)) {
      for (const v of (svc.volumes ?? []) as string[]) {
        const source = v.split(':')[0];
        if (!source.startsWith('.') && !source.startsWith('/')) assert.ok(compose.volumes?.[source] !== undefined, `volume ${source} not declared`);
      }
    }
  });

  it('publishes every port on 127.0.0.1 only', () => {
    const published = Object.entries(compose.services).flatMap(([name, svc]) => ((svc.ports ?? []) as string[]).map((p) => [name, p]));
    assert.ok(published.length >= 3);
    for (const [name, p] of published) assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name} publishes ${p} beyond this machine`);
  });

  it('holds no secrets of its own', () => {
    assert.doesNotMatch(text, /(API_KEY|SECRET|TOKEN)\s*[:=]\s*\S{8,}/);
  });

  it('runs a worker image whose entry point is the trader CLI', () => {
    const dockerfile = fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /ENTRYPOINT \["node", "bin\/trader\.js"\]/);
    assert.ok(fs.existsSync(path.join(REPO, 'bin', 'trader.js')));
  });
});
