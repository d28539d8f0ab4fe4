import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../../infra/logger';
import { connect, openDatabase, type Database } from '../../infra/postgres';
import { MIGRATIONS_DIR, MigrationChecksumMismatch, loadMigrations, migrate } from '../../infra/migrate';
import { databaseUrl, freePort, freshDatabase, testLog, testServer, type TestDatabase } from '../../testkit/db';

const REPO = path.resolve(__dirname, '..', '..');

function capturingLogger() {
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', name: 'pg-test', destination: { write: (s: string) => void lines.push(s) } });
  return { log, text: () => lines.join('') };
}

/** An empty database on the test server, not migrated. */
async function emptyDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const srv = await testServer();
  const name = `e_${process.pid}_${crypto.randomBytes(4).toString('hex')}`;
  await srv.admin.unsafe(`create database "${name}"`);
  return { url: databaseUrl(srv.adminUrl, name), drop: async () => void (await srv.admin.unsafe(`drop database if exists "${name}" with (force)`)) };
}

describe('migrations', () => {
  let db: TestDatabase;
  before(async () => {
    db = await freshDatabase();
  });
  after(async () => db?.drop());

  it('are recorded with their checksums, and running them again applies nothing', async () => {
    const files = loadMigrations();
    assert.ok(files.length >= 4);
    assert.deepEqual(files.map((m) => m.version), [...files.map((m) => m.version)].sort((a, b) => a - b));
    const rows = await db.sql<{ version: number; name: string; checksum: string }[]>`select version, name, checksum from schema_migrations order by version`;
    assert.deepEqual(rows.map((r) => [r.version, r.name, r.checksum]), files.map((m) => [m.version, m.name, m.checksum]));
    const again = await migrate(db.sql);
    assert.deepEqual(again.applied, []);
    assert.equal(again.version, files[files.length - 1].version);
  });

  it('refuses a changed checksum of an applied file, naming it, before applying anything new', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-migrations-'));
    try {
      for (const f of fs.readdirSync(MIGRATIONS_DIR)) fs.copyFileSync(path.join(MIGRATIONS_DIR, f), path.join(dir, f));
      // CRLF line endings (a Windows checkout) are not a change.
      const orders = path.join(dir, '0002_orders.sql');
      fs.writeFileSync(orders, fs.readFileSync(orders, 'utf8').replace(/\n/g, '\r\n'));
      assert.deepEqual((await migrate(db.sql, { dir })).applied, []);
      // A new file is applied, once.
      fs.writeFileSync(path.join(dir, '0900_extra.sql'), 'create table migration_probe (id int);');
      assert.deepEqual((await migrate(db.sql, { dir })).applied.map((m) => m.file), ['0900_extra.sql']);
      assert.deepEqual((await migrate(db.sql, { dir })).applied, []);
      // An edited applied file is a hard error; the next new file is not applied.
      fs.appendFileSync(orders, '\n-- edited after it was applied\n');
      fs.writeFileSync(path.join(dir, '0901_more.sql'), 'create table migration_probe_2 (id int);');
      await assert.rejects(migrate(db.sql, { dir }), (e: unknown) => e instanceof MigrationChecksumMismatch && e.file === '0002_orders.sql' && /0002_orders\.sql was changed/.test(e.message));
      const [probe] = await db.sql<{ t: string | null }[]>`select to_regclass('migration_probe_2')::text as t`;
      assert.equal(probe.t, null);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('two processes migrating one new database at once apply each file exactly once', async () => {
    const target = await emptyDatabase();
    const pools = [connect(target.url, testLog, { max: 2 }), connect(target.url, testLog, { max: 2 })];
    try {
      const results = await Promise.all(pools.map((p) => migrate(p)));
      const n = loadMigrations().length;
      assert.equal(results[0].applied.length + results[1].applied.length, n);
      assert.deepEqual(results.map((r) => r.version), [results[0].version, results[0].version]);
      const [{ count }] = await pools[0]<{ count: number }[]>`select count(*)::int as count from schema_migrations`;
      assert.equal(count, n);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
      await target.drop();
    }
  });
});

describe('openDatabase', function () {
  this.timeout(120_000); // starts and stops real PostgreSQL servers of its own

  describe('with DATABASE_URL', () => {
    it('connects, migrates, and never shows the password', async () => {
      const target = await emptyDatabase();
      const { log, text } = capturingLogger();
      const password = new URL(target.url).password;
      const db = await openDatabase({ databaseUrl: target.url, home: '/nonexistent-unused', log });
      try {
        assert.equal(db.embedded, false);
        assert.ok(!db.url.includes(password), db.url);
        assert.match(db.url, /\*\*\*@127\.0\.0\.1/);
        const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from schema_migrations`;
        assert.equal(n, loadMigrations().length);
      } finally {
        await db.close();
        await target.drop();
      }
      await assert.rejects(db.sql`select 1`);
      assert.match(text(), /applied migration/);
      assert.ok(!text().includes(password), 'the password reached the log');
    });

    it('says clearly when the server cannot be reached, without the password', async () => {
      const url = `postgres://trader:s3cret-Passw0rd@127.0.0.1:${await freePort()}/ledger`;
      await assert.rejects(openDatabase({ databaseUrl: url, home: '/nonexistent-unused', log: testLog }), (e: Error) => {
        assert.match(e.message, /cannot reach PostgreSQL at DATABASE_URL=postgres:\/\/trader:\*\*\*@127\.0\.0\.1:\d+\/ledger: .*ECONNREFUSED/);
        assert.ok(!e.message.includes('s3cret-Passw0rd'));
        return true;
      });
    });
  });

  describe('embedded, under TRADER_HOME', () => {
    let home: string;
    let dataDir: string;
    const open: Database[] = [];
    const start = async (port: number, log = testLog) => {
      const db = await openDatabase({ home, port, log });
      open.push(db);
      return db;
    };

    before(() => {
      home = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-pg-home-'));
      fs.chmodSync(home, 0o755); // as root, PostgreSQL runs as `postgres` and must enter it
      dataDir = path.join(home, 'postgres');
    });
    afterEach(async () => {
      for (const db of open.splice(0).reverse()) await db.close().catch(() => undefined);
    });
    after(() => fs.rmSync(home, { recursive: true, force: true }));

    it('initialises once, logs the server at debug, and keeps its data across restarts', async () => {
      const { log, text } = capturingLogger();
      const db = await start(await freePort(), log);
      assert.equal(db.embedded, true);
      await db.sql`insert into audit_log (event, payload) values ('persistence.check', '{}')`;
      await db.close();
      const password = fs.readFileSync(path.join(home, 'postgres.password'), 'utf8').trim();
      assert.equal(fs.statSync(path.join(home, 'postgres.password')).mode & 0o777, 0o600);
      assert.ok(!db.url.includes(password));
      assert.match(text(), /"level":"debug".*database system is ready to accept connections/);
      assert.ok(!text().includes(password), 'the password reached the log');
      assert.ok(fs.existsSync(path.join(dataDir, 'PG_VERSION')));
      assert.ok(!fs.existsSync(path.join(dataDir, 'postmaster.pid')), 'a clean stop removes the lock file');

      // A password file that a copy or a restore left readable by others is made owner-only again.
      fs.chmodSync(path.join(home, 'postgres.password'), 0o644);
      const again = await start(await freePort());
      const [{ n }] = await again.sql<{ n: number }[]>`select count(*)::int as n from audit_log where event = 'persistence.check'`;
      assert.equal(n, 1);
      assert.equal(fs.statSync(path.join(home, 'postgres.password')).mode & 0o777, 0o600);
      assert.equal(fs.readFileSync(path.join(home, 'postgres.password'), 'utf8').trim(), password, 'the same install keeps its password');
      // Generated per install, not a constant: another TRADER_HOME gets another one.
      const otherHome = fs.mkdtempSync(path.join(os.tmpdir(), 'dt-pg-home-'));
      fs.chmodSync(otherHome, 0o755);
      try {
        const other = await openDatabase({ home: otherHome, port: await freePort(), log: testLog });
        open.push(other);
        const otherPassword = fs.readFileSync(path.join(otherHome, 'postgres.password'), 'utf8').trim();
        assert.notEqual(otherPassword, password);
        assert.ok(otherPassword.length >= 24, 'a long random password');
        await other.close();
      } finally {
        fs.rmSync(otherHome, { recursive: true, force: true });
      }
    });

    it('recovers from a stale postmaster.pid whose pid is gone or now belongs to another program', async () => {
      const dead = spawnSync('true').pid!;
      // A live process of the user PostgreSQL runs as: PostgreSQL itself takes such a pid for a
      // running postmaster ("lock file already exists") and refuses to start.
      const asRoot = process.getuid?.() === 0;
      const uid = asRoot ? Number(spawnSync('id', ['-u', 'postgres']).stdout.toString().trim()) : undefined;
      const sleeper = spawn('sleep', ['60'], { uid, stdio: 'ignore' });
      // And the postmaster of another cluster (the shared test server).
      const srv = await testServer();
      const otherPostmaster = srv.dataDir ? Number(fs.readFileSync(path.join(srv.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]) : undefined;
      const { log, text } = capturingLogger();
      try {
        for (const pid of [dead, sleeper.pid!, otherPostmaster].filter((p): p is number => p !== undefined)) {
          const port = await freePort();
          fs.writeFileSync(path.join(dataDir, 'postmaster.pid'), `${pid}\n${dataDir}\n1735689600\n${port}\n\n127.0.0.1\n  5432001         0\nready   \n`);
          const db = await start(port, log);
          const [{ n }] = await db.sql<{ n: number }[]>`select count(*)::int as n from audit_log where event = 'persistence.check'`;
          assert.equal(n, 1, `data kept (stale pid ${pid})`);
          await db.close();
          assert.match(text(), new RegExp(`"stalePid":"${pid}".*removing stale postmaster.pid`));
        }
      } finally {
        sleeper.kill();
      }
    });

    it('says clearly when its port is taken by another program', async () => {
      const squatter = net.createServer();
      const port = await freePort();
      await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
      try {
        await assert.rejects(start(port), new RegExp(`port ${port} \\(POSTGRES_PORT\\) is already in use by another program`));
      } finally {
        squatter.close();
      }
    });

    it('a second process on the same TRADER_HOME uses the running server and leaves it running', async () => {
      const owner = await start(await freePort());
      const guest = await start(await freePort());
      assert.equal(new URL(guest.url).port, new URL(owner.url).port);
      await guest.close();
      const [{ ok }] = await owner.sql<{ ok: number }[]>`select 1 as ok`;
      assert.equal(ok, 1);
    });

    it('takes over a server orphaned by a killed trader (kill -9) instead of failing', async () => {
      const port = await freePort();
      const child = spawn(
        process.execPath,
        ['-r', 'tsx/cjs', '-e', `require('./infra/postgres').openDatabase({ home: ${JSON.stringify(home)}, port: ${port} }).then(() => console.log('READY'))`],
        { cwd: REPO, env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      await new Promise<void>((resolve, reject) => {
        child.stdout!.on('data', (d: Buffer) => d.toString().includes('READY') && resolve());
        child.on('exit', (code) => reject(new Error(`child exited ${code}`)));
      });
      const orphan = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      child.kill('SIGKILL');
      const ppid = () => Number(fs.readFileSync(`/proc/${orphan}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      for (let i = 0; i < 100 && ppid() !== 1; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(ppid(), 1, 'the server outlived its parent');

      const { log, text } = capturingLogger();
      const db = await start(await freePort(), log);
      await db.sql`select 1`;
      assert.match(text(), new RegExp(`"orphanPid":${orphan}.*found an orphaned PostgreSQL`));
      const fresh = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      assert.notEqual(fresh, orphan);
      assert.throws(() => process.kill(orphan, 0), /ESRCH/, 'the orphan was stopped');
    });

    it('close() returns when the server died under it, and the next start recovers (OOM killer)', async () => {
      const db = await start(await freePort());
      const postmaster = Number(fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(postmaster, 'SIGKILL');
      await assert.rejects(db.sql`select pg_sleep(0.2)`);
      // Until node has reaped its child, nobody can tell it is gone.
      for (let i = 0; i < 100; i++) {
        try {
          process.kill(postmaster, 0);
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      const t = Date.now();
      await db.close();
      assert.ok(Date.now() - t < 2000, 'no grace period for queries a dead server cannot finish');
      const again = await start(await freePort());
      const [{ n }] = await again.sql<{ n: number }[]>`select count(*)::int as n from audit_log where event = 'persistence.check'`;
      assert.equal(n, 1);
    });
  });
});
