import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Sql } from 'postgres';
import type { Logger } from './logger';
import { transaction } from './transaction';
import { PROJECT_ROOT } from './project-root';

/**
 * A minimal ordered-SQL migration runner (the issue allows one instead of a migration
 * framework): files `NNNN_name.sql` in ledger/migrations, applied in version order, each in its
 * own transaction, recorded in schema_migrations with the sha256 of its text.
 *
 * Every step holds a transaction-level advisory lock, so two processes starting together (the
 * trading worker and the CLI, two workers) apply each file once and never interleave. A file
 * whose text changed after it was applied is a hard error: the database no longer matches the
 * code, and silently carrying on would hide that. Statements that cannot run in a transaction
 * (CREATE INDEX CONCURRENTLY) are not supported.
 */

/** The ledger's migrations (ordered SQL files): this runner is generic, the schema is the ledger's. */
export const MIGRATIONS_DIR = path.join(PROJECT_ROOT, 'ledger', 'migrations');

/** Arbitrary but fixed: the key every migrating process of this project waits on. */
const MIGRATION_LOCK_KEY = 7_361_203_118_001;

export interface Migration {
  version: number;
  name: string;
  file: string;
  text: string;
  checksum: string;
}

export class MigrationChecksumMismatch extends Error {
  override readonly name = 'MigrationChecksumMismatch';
  constructor(readonly file: string, readonly applied: string, readonly current: string) {
    super(
      `migration ${file} was changed after it was applied (applied sha256 ${applied.slice(0, 12)}, file now ${current.slice(0, 12)}): ` +
        'restore the file and put the change in a new migration',
    );
  }
}

const FILE_RE = /^(\d+)_([a-z0-9_]+)\.sql$/;

/** Line endings are normalized first, so a checkout with CRLF is not a "changed" file. */
export function checksumOf(text: string): string {
  return crypto.createHash('sha256').update(text.replace(/\r\n/g, '\n')).digest('hex');
}

export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const file of fs.readdirSync(dir)) {
    if (!file.endsWith('.sql')) continue;
    const m = FILE_RE.exec(file);
    if (!m) throw new Error(`migration file ${file} is not named NNNN_name.sql (lowercase name)`);
    const text = fs.readFileSync(path.join(dir, file), 'utf8');
    out.push({ version: Number(m[1]), name: m[2], file, text, checksum: checksumOf(text) });
  }
  out.sort((a, b) => a.version - b.version);
  for (let i = 1; i < out.length; i++) {
    if (out[i].version === out[i - 1].version) throw new Error(`two migrations with version ${out[i].version}: ${out[i - 1].file}, ${out[i].file}`);
  }
  return out;
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

function verifyApplied(migrations: Migration[], applied: AppliedRow[], log?: Logger): void {
  const byVersion = new Map(migrations.map((m) => [m.version, m]));
  for (const row of applied) {
    const m = byVersion.get(row.version);
    if (!m) {
      // An older build running against a newer schema (a rolled-back deploy): allowed, but said.
      log?.warn({ version: row.version, name: row.name }, 'database has a migration this code does not know; is this an older build?');
      continue;
    }
    if (m.checksum !== row.checksum) throw new MigrationChecksumMismatch(m.file, row.checksum, m.checksum);
  }
}

export interface MigrateResult {
  /** Files applied by this call (empty when the schema was already current). */
  applied: Migration[];
  /** Highest version now recorded. */
  version: number;
}

export async function migrate(sql: Sql, opts: { dir?: string; log?: Logger } = {}): Promise<MigrateResult> {
  const migrations = loadMigrations(opts.dir);
  const applied: Migration[] = [];
  await transaction(sql, async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx`
      create table if not exists schema_migrations (
        version integer primary key,
        name text not null,
        checksum char(64) not null check (checksum ~ '^[0-9a-f]{64}$'),
        applied_at timestamptz not null default now()
      )`;
    // Refuse before applying anything new: a tampered history must stop the start-up.
    verifyApplied(migrations, await tx<AppliedRow[]>`select version, name, checksum from schema_migrations`, opts.log);
  });
  for (const m of migrations) {
    await transaction(sql, async (tx) => {
      await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
      const [row] = await tx<AppliedRow[]>`select version, name, checksum from schema_migrations where version = ${m.version}`;
      if (row) {
        // Another process may have applied it while we waited for the lock.
        verifyApplied([m], [row], opts.log);
        return;
      }
      await tx.unsafe(m.text).simple();
      await tx`insert into schema_migrations (version, name, checksum) values (${m.version}, ${m.name}, ${m.checksum})`;
      applied.push(m);
      opts.log?.info({ version: m.version, file: m.file }, 'applied migration');
    });
  }
  const [cur] = await sql<{ version: number | null }[]>`select max(version) as version from schema_migrations`;
  return { applied, version: cur.version ?? 0 };
}
