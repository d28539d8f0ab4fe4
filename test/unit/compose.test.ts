import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import dotenv from 'dotenv';

/**
 * No Docker engine runs on the build machines, so docker-compose.yml is checked by reading it:
 * the services the design names exist, every image is pinned, services start after the ones they
 * need are healthy (or done), every variable it reads is documented in .env.example, secrets
 * come only from .env, and what it mounts from the repository exists.
 */
const REPO = path.resolve(__dirname, '..', '..');
const text = fs.readFileSync(path.join(REPO, 'docker-compose.yml'), 'utf8');
// merge: the file shares the workers' settings through YAML anchors and `<<:` keys, as Compose reads them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- parsed YAML
const compose = parse(text, { merge: true }) as { services: Record<string, Record<string, any>>; volumes?: Record<string, unknown> };
const services = compose.services;
const envExample = dotenv.parse(fs.readFileSync(path.join(REPO, '.env.example')));

/** `${VAR}`, `${VAR:-default}`, `${VAR:?message}`, `$VAR` (not `$$`, Compose's escape). */
function variablesOf(s: string): Set<string> {
  const out = new Set<string>();
  for (const m of s.matchAll(/(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])[^}]*)?\}/g)) out.add(m[1]);
  for (const m of s.matchAll(/(?<!\$)\$([A-Za-z_][A-Za-z0-9_]*)/g)) out.add(m[1]);
  return out;
}

function dependencies(svc: Record<string, unknown>): Array<[string, string]> {
  const deps = svc.depends_on;
  if (!deps) return [];
  if (Array.isArray(deps)) return deps.map((d: string) => [d, 'service_started']);
  return Object.entries(deps as Record<string, { condition?: string }>).map(([d, c]) => [d, c.condition ?? 'service_started']);
}

describe('docker-compose.yml', () => {
  it('has the whole production stack: Temporal (server, schema, UI), both databases, InfluxDB, Grafana and the three workers', () => {
    for (const s of ['temporal-db', 'temporal-schema', 'temporal', 'temporal-namespace', 'temporal-ui', 'ledger-db', 'influxdb', 'grafana', 'trading-worker', 'training-worker', 'telegram-bot']) {
      assert.ok(services[s], `service ${s} missing`);
    }
  });

  it('uses the current Temporal images: temporalio/server with the schema from temporalio/admin-tools, not the deprecated auto-setup', () => {
    assert.match(services.temporal.image, /^temporalio\/server:/);
    assert.match(services['temporal-schema'].image, /^temporalio\/admin-tools:/);
    assert.match(services['temporal-ui'].image, /^temporalio\/ui:/);
    assert.doesNotMatch(text, /auto-setup/);
    assert.deepEqual(services.temporal.depends_on['temporal-schema'], { condition: 'service_completed_successfully' });
    const tag = (s: string) => services[s].image.split(':')[1];
    assert.equal(tag('temporal'), tag('temporal-schema'), 'the schema tool and the server are the same version');
  });

  it('pins every image to a version (no latest, no bare major tag)', () => {
    for (const [name, svc] of Object.entries(services)) {
      assert.ok(svc.image, `${name} names its image${svc.build ? ' (the one it builds, with a version tag)' : ''}`);
      const m = /^[^@:\s]+(?::([^@\s]+))?(?:@sha256:[0-9a-f]{64})?$/.exec(svc.image);
      assert.ok(m, `${name}: image ${svc.image}`);
      const pinnedByDigest = svc.image.includes('@sha256:');
      assert.ok(pinnedByDigest || (m[1] !== undefined && /^v?\d+\.\d+(\.\d+)?([.-][A-Za-z0-9.-]+)?$/.test(m[1])), `${name}: image ${svc.image} is not pinned to a version`);
    }
  });

  it('names only existing services in depends_on, and waits on health checks or completed one-shot jobs', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [dep, condition] of dependencies(svc)) {
        assert.ok(services[dep], `${name} depends on unknown service ${dep}`);
        if (condition === 'service_healthy') assert.ok(services[dep].healthcheck, `${name} waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
        if (condition === 'service_completed_successfully') assert.match(String(services[dep].restart ?? 'no'), /^(no|on-failure(:\d+)?)$/, `${dep} is a one-shot job: it must not restart when it succeeds`);
      }
    }
  });

  it('gives every long-running service a restart policy and a health check (the Telegram client: its process)', () => {
    for (const [name, svc] of Object.entries(services)) {
      assert.ok(svc.restart, `${name} has a restart policy`);
      const oneShot = Object.values(services).some((o) => dependencies(o).some(([d, c]) => d === name && c === 'service_completed_successfully'));
      if (oneShot || name === 'telegram-bot') continue;
      assert.ok(svc.healthcheck?.test, `${name} has a healthcheck`);
    }
  });

  it('uses only variables that .env.example documents', () => {
    // Values only: Compose interpolates values, not comments.
    const used = variablesOf(JSON.stringify(compose));
    assert.ok(used.size >= 8, `found ${[...used].join(', ')}`);
    const missing = [...used].filter((v) => !(v in envExample));
    assert.deepEqual(missing, [], `docker-compose.yml reads ${missing.join(', ')}, which .env.example does not document`);
  });

  it('takes every secret from .env: passwords and tokens are required variables with no default, nothing secret is written in the file', () => {
    for (const [name, svc] of Object.entries(services)) {
      for (const [k, v] of Object.entries((svc.environment ?? {}) as Record<string, string>)) {
        if (!/API_KEY|SECRET|TOKEN|PASSWORD|PWD/.test(k)) continue;
        assert.match(String(v), /^\$\{[A-Z_]+:\?[^}]*\}$/, `${name}: ${k} is written in the file instead of coming from .env`);
      }
    }
    for (const m of text.matchAll(/\$\{([A-Z_]*(?:PASSWORD|TOKEN|SECRET)[A-Z_]*)([^}]*)\}/g)) {
      assert.match(m[2], /^:\?/, `\${${m[1]}${m[2]}} must be required (\${${m[1]}:?...}), not defaulted`);
      assert.equal(envExample[m[1]], '', `.env.example must not ship a value for ${m[1]}`);
    }
  });

  it('keeps every stateful service on a named volume, and declares every named volume it mounts', () => {
    const stateful: Record<string, string> = { 'temporal-db': '/var/lib/postgresql/data', 'ledger-db': '/var/lib/postgresql/data', influxdb: '/var/lib/influxdb2', grafana: '/var/lib/grafana', 'trading-worker': '/data', 'training-worker': '/data' };
    for (const [name, target] of Object.entries(stateful)) {
      const mounts = (services[name].volumes ?? []) as string[];
      const m = mounts.find((v) => v.split(':')[1] === target);
      assert.ok(m && !m.startsWith('.') && !m.startsWith('/'), `${name} keeps ${target} on a named volume`);
    }
    for (const [name, svc] of Object.entries(services)) {
      for (const v of (svc.volumes ?? []) as string[]) {
        const source = v.split(':')[0];
        if (source.startsWith('.')) assert.ok(fs.existsSync(path.join(REPO, source)), `${name} mounts ${source}, which is not in the repository`);
        else if (!source.startsWith('/')) assert.ok(compose.volumes?.[source] !== undefined, `volume ${source} not declared`);
      }
    }
    assert.equal(services['trading-worker'].volumes[0], services['training-worker'].volumes[0], 'training writes the models the trading worker serves: one volume');
  });

  it('publishes every port on 127.0.0.1 only', () => {
    const published = Object.entries(compose.services).flatMap(([name, svc]) => ((svc.ports ?? []) as string[]).map((p) => [name, p]));
    assert.ok(published.length >= 3);
    for (const [name, p] of published) assert.match(p, /^127\.0\.0\.1:(\d+|\$\{[A-Z_]+:-\d+\}):\d+$/, `${name} publishes ${p} beyond this machine`);
  });

  it('points the workers at the cluster, the ledger and InfluxDB, with the SDK metrics endpoint on', () => {
    for (const name of ['trading-worker', 'training-worker']) {
      const env = services[name].environment;
      assert.equal(env.TEMPORAL_ADDRESS, 'temporal:7233');
      assert.match(env.DATABASE_URL, /^postgres:\/\/trader:.*@ledger-db:5432\/trader$/);
      assert.equal(env.INFLUXDB_URL, 'http://influxdb:8086');
      assert.equal(env.TEMPORAL_METRICS_ADDRESS, '0.0.0.0:9464');
      assert.match(JSON.stringify(services[name].healthcheck.test), /9464\/metrics/, `${name}'s health check reads the metrics endpoint`);
    }
    assert.deepEqual(services['trading-worker'].command, ['up', '--no-telegram', '--no-training']);
    assert.deepEqual(services['training-worker'].command, ['worker', '--queue', 'training']);
    assert.deepEqual(services['telegram-bot'].command, ['worker', '--queue', 'telegram']);
    assert.equal(services['telegram-bot'].environment.TEMPORAL_ADDRESS, 'temporal:7233');
  });

  it('initialises InfluxDB 2 from .env and provisions Grafana with the repository data source and dashboard', () => {
    const influx = services.influxdb.environment;
    assert.equal(influx.DOCKER_INFLUXDB_INIT_MODE, 'setup');
    for (const [k, v] of Object.entries({ DOCKER_INFLUXDB_INIT_ORG: 'INFLUXDB_ORG', DOCKER_INFLUXDB_INIT_BUCKET: 'INFLUXDB_BUCKET', DOCKER_INFLUXDB_INIT_ADMIN_TOKEN: 'INFLUXDB_TOKEN' })) {
      assert.ok(variablesOf(String(influx[k])).has(v), `${k} comes from ${v}`);
    }
    const grafana = services.grafana;
    assert.ok(grafana.ports.some((p: string) => /:3000$/.test(p)), 'Grafana on a port of its own');
    const mounts = grafana.volumes as string[];
    assert.ok(mounts.includes('./deploy/grafana/provisioning:/etc/grafana/provisioning:ro'));
    assert.ok(mounts.includes('./deploy/grafana/dashboards:/etc/grafana/dashboards:ro'));
    const ds = parse(fs.readFileSync(path.join(REPO, 'deploy/grafana/provisioning/datasources/influxdb.yml'), 'utf8')) as { datasources: Array<{ uid: string; type: string; jsonData: { version: string } }> };
    const source = ds.datasources[0];
    assert.equal(source.type, 'influxdb');
    assert.equal(source.jsonData.version, 'Flux');
    for (const v of variablesOf(JSON.stringify(source))) assert.ok(v in grafana.environment, `the data source reads ${v}; the grafana service sets it`);
    const providers = parse(fs.readFileSync(path.join(REPO, 'deploy/grafana/provisioning/dashboards/durable-trader.yml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
    assert.equal(providers.providers[0].options.path, '/etc/grafana/dashboards');
    const dashboard = JSON.parse(fs.readFileSync(path.join(REPO, 'deploy/grafana/dashboards/durable-trader.json'), 'utf8'));
    assert.equal(grafana.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH, `/etc/grafana/dashboards/durable-trader.json`);
    for (const p of dashboard.panels) if (p.type !== 'row') assert.equal(p.datasource.uid, source.uid, `panel ${p.title} uses the provisioned data source`);
  });

  it('runs a worker image whose entry point is the trader CLI', () => {
    const dockerfile = fs.readFileSync(path.join(REPO, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /ENTRYPOINT \["node", "bin\/trader\.js"\]/);
    // From the build (dist/), compiled in a stage with the dev dependencies, copied into the production install.
    assert.match(dockerfile, /^RUN npm run build$/m);
    assert.match(dockerfile, /^COPY --from=build \/app\/dist \.\/dist$/m);
    assert.match(dockerfile, /^ENV TRADER_FROM=dist$/m);
    assert.ok(fs.existsSync(path.join(REPO, 'bin', 'trader.js')));
    for (const s of ['trading-worker', 'training-worker', 'telegram-bot']) assert.equal(services[s].build, '.');
  });
});
