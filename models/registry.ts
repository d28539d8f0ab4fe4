import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type postgres from 'postgres';
import { z } from 'zod';
import { transaction } from '../infra/transaction';
import { FeatureNormalization } from './normalization';

/**
 * Model versions. A version is a directory, immutable once written:
 *   <models dir>/<version id>/manifest.json   (ModelManifest below)
 *   <models dir>/<version id>/<member>.onnx   (one per ensemble member, sha256 in the manifest)
 * and a row in PostgreSQL `model_versions` (ledger/migrations/0004, 0007) that records where it
 * is, its role and the candle series it was trained on. The database decides which version is the champion (a unique index allows one per
 * kind); the manifest's `champion` flag mirrors it for someone reading the directory.
 */

export class ModelRegistryError extends Error {
  override name = 'ModelRegistryError';
}

export const MANIFEST_FILE = 'manifest.json';

export const VersionId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'a version id is 1-128 letters, digits, dots, dashes or underscores');
const FileName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*\.onnx$/, 'a plain file name ending in .onnx');
const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex sha256');
const Count = z.number().int().nonnegative();

export const MemberManifest = z.object({
  name: z.enum(['logistic', 'random_forest', 'gbt']),
  file: FileName,
  sha256: Sha256,
  /** ONNX input name, float32 [N, inputs.width]. */
  input: z.string().min(1),
  /** ONNX output name, float32 [N, 2]; column 1 is the member's raw P(up). */
  output: z.string().min(1),
  calibration: z.object({ method: z.literal('platt'), a: z.number().finite(), b: z.number().finite() }),
  params: z.record(z.string(), z.unknown()),
});
export type MemberManifest = z.infer<typeof MemberManifest>;

export const ModelManifest = z
  .object({
    formatVersion: z.literal(1),
    id: VersionId,
    kind: z.string().regex(/^[a-z][a-z0-9_-]*$/),
    created: z.iso.datetime(),
    featureSchema: z.object({ version: z.number().int().positive(), hash: z.string().regex(/^[0-9a-f]{64}$/), names: z.array(z.string().min(1)).min(1) }),
    inputs: z.object({ names: z.array(z.string().min(1)).min(1), width: z.number().int().positive() }),
    labels: z.object({ kind: z.literal('forward_return_net_of_cost'), horizon: z.number().int().positive(), roundTripCost: z.number().min(0).lt(1) }),
    timeframe: z.string().regex(/^[1-9]\d*[smhdw]$/),
    data: z.object({
      from: z.iso.datetime(),
      to: z.iso.datetime(),
      rows: z.object({ train: Count, validation: Count, test: Count }),
      sources: z.array(z.string()).optional(),
      /** Every series the version was trained on (symbol, timeframe, candle range, sha256 of the data). */
      trainedOn: z
        .array(z.object({ path: z.string(), symbol: z.string(), exchange: z.string(), timeframe: z.string(), candles: Count, from: z.iso.datetime(), to: z.iso.datetime(), sha256: Sha256 }))
        .optional(),
    }),
    /** Per-symbol feature normalization (models/normalization.ts); absent in versions trained without it. */
    normalization: FeatureNormalization.optional(),
    metrics: z.record(z.string(), z.unknown()),
    members: z.array(MemberManifest).min(1),
    ensemble: z.object({
      method: z.literal('soft_voting'),
      /** Enter at or above this P(up) (versions before fitted thresholds: a fixed 0.55). */
      longThreshold: z.number().gt(0).lt(1),
      /** Leave at or below this P(up); absent in versions before fitted thresholds (the engine's 0.45 then). */
      exitThreshold: z.number().gt(0).lt(1).optional(),
      /** How the two were chosen on the validation rows (models/ensemble/thresholds.ts). */
      thresholds: z.object({ method: z.literal('validation_expected_value') }).loose().optional(),
      seed: z.number().int(),
    }),
    champion: z.boolean(),
    /** The PPO policy of the same version, when one was trained (written by models/ppo). */
    ppo: z.object({ file: FileName, sha256: Sha256 }).loose().optional(),
  })
  .superRefine((m, ctx) => {
    if (m.inputs.width !== m.inputs.names.length) ctx.addIssue({ code: 'custom', path: ['inputs', 'width'], message: `width ${m.inputs.width} but ${m.inputs.names.length} names` });
    if (Date.parse(m.data.to) <= Date.parse(m.data.from)) ctx.addIssue({ code: 'custom', path: ['data', 'to'], message: 'data range must end after it starts' });
    const files = m.members.map((x) => x.file).concat(m.ppo ? [m.ppo.file] : []);
    if (new Set(files).size !== files.length) ctx.addIssue({ code: 'custom', path: ['members'], message: 'two members share a file' });
    const names = m.members.map((x) => x.name);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: ['members'], message: 'a member appears twice' });
    if (m.ensemble.exitThreshold !== undefined && m.ensemble.exitThreshold >= m.ensemble.longThreshold) {
      ctx.addIssue({ code: 'custom', path: ['ensemble', 'exitThreshold'], message: `exit threshold ${m.ensemble.exitThreshold} must be below the entry threshold ${m.ensemble.longThreshold}` });
    }
  });
export type ModelManifest = z.infer<typeof ModelManifest>;

export const sha256Hex = (bytes: Uint8Array) => crypto.createHash('sha256').update(bytes).digest('hex');

/** Where versions live: `<TRADER_HOME>/models` (AppConfig.home), unless a CLI `--out` says otherwise. */
export function modelsDir(home: string): string {
  return path.join(home, 'models');
}

function formatIssues(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
}

export function parseManifest(json: unknown, where = 'manifest'): ModelManifest {
  const r = ModelManifest.safeParse(json);
  if (!r.success) throw new ModelRegistryError(`${where} is not a valid model manifest: ${formatIssues(r.error)}`);
  return r.data;
}

function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/**
 * Writes a version directory: every file, then the manifest, into a temporary sibling that is
 * renamed into place, so a reader never sees a half-written version. Refuses to overwrite.
 * `files` maps file names to bytes; each member's sha256 must match its bytes.
 */
export function writeModelVersion(dir: string, manifest: ModelManifest, files: Record<string, Uint8Array>): string {
  const m = parseManifest(manifest);
  const target = path.resolve(dir);
  if (fs.existsSync(target)) throw new ModelRegistryError(`${target} already exists: model versions are immutable, write a new version id`);
  const expected = m.members.map((x) => [x.file, x.sha256] as const).concat(m.ppo ? [[m.ppo.file, m.ppo.sha256] as const] : []);
  for (const [file, sha] of expected) {
    const bytes = files[file];
    if (!bytes) throw new ModelRegistryError(`manifest names ${file} but no bytes were given for it`);
    if (sha256Hex(bytes) !== sha) throw new ModelRegistryError(`${file}: bytes do not match the manifest's sha256`);
  }
  fs.mkdirSync(path.dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  fs.mkdirSync(tmp);
  try {
    for (const [file, bytes] of Object.entries(files)) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(file)) throw new ModelRegistryError(`refusing file name ${JSON.stringify(file)}`);
      fs.writeFileSync(path.join(tmp, file), bytes);
    }
    fs.writeFileSync(path.join(tmp, MANIFEST_FILE), `${JSON.stringify(m, null, 2)}\n`);
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return target;
}

export function readManifest(dir: string): ModelManifest {
  const file = path.join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ModelRegistryError(`no model at ${dir}: cannot read ${MANIFEST_FILE} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelRegistryError(`${file} is corrupt: ${(err as Error).message}`);
  }
  return parseManifest(json, file);
}

export interface LoadedVersion {
  dir: string;
  manifest: ModelManifest;
  /** Member file bytes by member name, each checked against its sha256. */
  members: Map<MemberManifest['name'], Uint8Array>;
}

/** Reads and verifies a version directory; throws ModelRegistryError saying what is wrong. */
export function loadModelVersion(dir: string): LoadedVersion {
  const abs = path.resolve(dir);
  const manifest = readManifest(abs);
  const members = new Map<MemberManifest['name'], Uint8Array>();
  for (const m of manifest.members) {
    const file = path.join(abs, m.file);
    let bytes: Uint8Array;
    try {
      bytes = fs.readFileSync(file);
    } catch (err) {
      throw new ModelRegistryError(`model ${manifest.id}: member ${m.name} file ${m.file} is missing (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    if (sha256Hex(bytes) !== m.sha256) throw new ModelRegistryError(`model ${manifest.id}: member ${m.name} file ${m.file} is corrupt (sha256 differs from the manifest)`);
    members.set(m.name, bytes);
  }
  return { dir: abs, manifest, members };
}

/** Rewrites the manifest's champion flag (the only field that changes after writing). */
export function setManifestChampion(dir: string, champion: boolean): void {
  const m = readManifest(dir);
  if (m.champion === champion) return;
  writeFileAtomic(path.join(dir, MANIFEST_FILE), `${JSON.stringify({ ...m, champion }, null, 2)}\n`);
}

// --- PostgreSQL ----------------------------------------------------------------------------

export interface ModelVersionRow {
  id: string;
  kind: string;
  featureSchemaHash: string;
  dataFrom: Date;
  dataTo: Date;
  metrics: Record<string, unknown>;
  artifactPath: string;
  role: 'champion' | 'challenger' | 'retired';
  createdAt: Date;
  promotedAt: Date | null;
  /** The candle series it was trained on (manifest data.trainedOn). */
  trainedOn: TrainedOn;
}

export type TrainedOn = NonNullable<ModelManifest['data']['trainedOn']>;

interface DbRow {
  id: string;
  kind: string;
  feature_schema_hash: string;
  data_from: Date;
  data_to: Date;
  metrics: Record<string, unknown>;
  artifact_path: string;
  role: ModelVersionRow['role'];
  created_at: Date;
  promoted_at: Date | null;
  trained_on: TrainedOn;
}

const fromDb = (r: DbRow): ModelVersionRow => ({
  id: r.id, kind: r.kind, featureSchemaHash: r.feature_schema_hash, dataFrom: r.data_from, dataTo: r.data_to, metrics: r.metrics,
  artifactPath: r.artifact_path, role: r.role, createdAt: r.created_at, promotedAt: r.promoted_at, trainedOn: r.trained_on ?? [],
});

/** Records a written version as a challenger. `metrics` defaults to the manifest's headline metrics. */
export async function registerModelVersion(sql: postgres.Sql, dir: string, metrics?: Record<string, unknown>): Promise<ModelVersionRow> {
  const abs = path.resolve(dir);
  const m = readManifest(abs);
  const summary = (metrics ?? m.metrics.summary ?? {}) as postgres.JSONValue;
  const rows = await sql<DbRow[]>`
    insert into model_versions (id, kind, feature_schema_hash, data_from, data_to, metrics, artifact_path, role, created_at, trained_on)
    values (${m.id}, ${m.kind}, ${m.featureSchema.hash}, ${new Date(m.data.from)}, ${new Date(m.data.to)}, ${sql.json(summary)}, ${abs}, 'challenger', ${new Date(m.created)}, ${sql.json((m.data.trainedOn ?? []) as postgres.JSONValue)})
    returning *`;
  return fromDb(rows[0]);
}

/**
 * Makes `id` the champion of its kind; the previous champion is retired. One transaction, so
 * the unique index never sees two champions and a trader never sees none. The manifests' flags
 * follow once the transaction has committed.
 */
export async function promoteModelVersion(sql: postgres.Sql, id: string): Promise<{ champion: ModelVersionRow; retired?: ModelVersionRow }> {
  const result = await transaction(sql, async (tx) => {
    const [target] = await tx<DbRow[]>`select * from model_versions where id = ${id} for update`;
    if (!target) throw new ModelRegistryError(`no model version '${id}' in the registry`);
    if (target.role === 'champion') return { champion: fromDb(target) };
    const retired = await tx<DbRow[]>`update model_versions set role = 'retired' where kind = ${target.kind} and role = 'champion' returning *`;
    const [champion] = await tx<DbRow[]>`update model_versions set role = 'champion', promoted_at = now() where id = ${id} returning *`;
    return { champion: fromDb(champion), retired: retired[0] ? fromDb(retired[0]) : undefined };
  });
  for (const [row, flag] of [[result.champion, true], [result.retired, false]] as const) {
    if (row && fs.existsSync(path.join(row.artifactPath, MANIFEST_FILE))) setManifestChampion(row.artifactPath, flag);
  }
  return result;
}

export async function championModelVersion(sql: postgres.Sql, kind = 'ensemble'): Promise<ModelVersionRow | undefined> {
  const [row] = await sql<DbRow[]>`select * from model_versions where kind = ${kind} and role = 'champion'`;
  return row ? fromDb(row) : undefined;
}

export async function getModelVersion(sql: postgres.Sql, id: string): Promise<ModelVersionRow | undefined> {
  const [row] = await sql<DbRow[]>`select * from model_versions where id = ${id}`;
  return row ? fromDb(row) : undefined;
}

export async function listModelVersions(sql: postgres.Sql, kind?: string): Promise<ModelVersionRow[]> {
  const rows = kind === undefined
    ? await sql<DbRow[]>`select * from model_versions order by created_at desc, id`
    : await sql<DbRow[]>`select * from model_versions where kind = ${kind} order by created_at desc, id`;
  return rows.map(fromDb);
}
