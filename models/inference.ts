import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { ModelSignal } from '../lib/engine/types';
import { FEATURE_SCHEMA } from '../lib/features';
import { MODEL_INPUT_NAMES, MODEL_INPUT_WIDTH, toModelRow } from './dataset';
import { calibrate } from './ensemble/calibration';
import { combineMembers } from './ensemble';
import { loadModelVersion, modelsDir, VersionId, type ModelManifest } from './registry';
import { normalizeFeatures } from './normalization';

/**
 * The ensemble served by ONNX Runtime, for the trading decision.
 *
 * `createSignalProvider(...)` returns `(symbol, features, candle) => Promise<ModelSignal>`. It
 * never throws and never rejects: a missing or corrupt model, a feature-schema mismatch, a bad
 * vector or a runtime failure all come back as `{ ok: false, error }`, which the decision treats
 * as "no new entries" while protective exits keep working.
 *
 * ONNX sessions are cached per model version directory for the life of the process (versions
 * are immutable), shared by every provider that points at it. Calls that arrive while a batch is
 * being gathered (same event-loop turn by default, or within `batchWindowMs`) are answered by
 * one session.run per member over the whole batch: several symbols deciding on the same candle
 * close cost one inference, not one per symbol.
 */

/** What the decision receives: lib/engine's ModelSignal ({ ok, probUp, confidence, action, version, error }). */
export type { ModelSignal };

export interface SignalProviderOptions {
  /** A model version directory (manifest.json + .onnx files). */
  dir?: string;
  /** Or a version id, looked up under `modelsRoot` (default `<TRADER_HOME or ./.data>/models`). */
  version?: string;
  modelsRoot?: string;
  /** probUp at or above this -> 'long'; default: the manifest's longThreshold. */
  longThreshold?: number;
  /** 0 (default): batch the calls made in the same event-loop turn; > 0: wait this many ms. */
  batchWindowMs?: number;
  /** A batch this large runs at once without waiting for the window. */
  maxBatch?: number;
  /** The feature schema hash the caller computes vectors with (default: this build's). */
  expectedSchemaHash?: string;
}

export interface SignalProvider {
  (symbol: string, features: ArrayLike<number>, candle?: { timestamp: number }): Promise<ModelSignal>;
  /** Loads (or re-checks) the model: `{ ok: true, version }` when it can serve. */
  ready(): Promise<ModelSignal>;
  /** The directory this provider serves. */
  readonly dir: string;
}

interface MemberSession {
  name: string;
  session: ort.InferenceSession;
  input: string;
  output: string;
  calibration: ModelManifest['members'][number]['calibration'];
}

interface Pending {
  row: Float32Array;
  resolve: (s: ModelSignal) => void;
  threshold: number;
}

export class LoadedEnsemble {
  private queue: Pending[] = [];
  private timer: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private windowMs: number | undefined;
  private maxBatch = 256;

  constructor(readonly manifest: ModelManifest, readonly members: MemberSession[]) {}

  get version(): string {
    return this.manifest.id;
  }

  configure(windowMs: number, maxBatch: number): void {
    // Several providers may share one loaded version: the shortest window wins.
    this.windowMs = Math.min(this.windowMs ?? windowMs, windowMs);
    this.maxBatch = Math.min(this.maxBatch, maxBatch);
  }

  enqueue(row: Float32Array, threshold: number): Promise<ModelSignal> {
    return new Promise((resolve) => {
      this.queue.push({ row, resolve, threshold });
      if (this.queue.length >= this.maxBatch) this.flush();
      else if (!this.timer) this.timer = (this.windowMs ?? 0) > 0 ? setTimeout(() => this.flush(), this.windowMs) : setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer as NodeJS.Timeout);
      clearImmediate(this.timer as NodeJS.Immediate);
      this.timer = undefined;
    }
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    this.run(batch.map((p) => p.row))
      .then((scored) => batch.forEach((p, i) => p.resolve(this.signal(scored.probUp[i], scored.confidence[i], scored.agreement[i], p.threshold))))
      .catch((err: unknown) => batch.forEach((p) => p.resolve({ ok: false, version: this.version, error: `inference failed: ${(err as Error)?.message ?? String(err)}` })));
  }

  private signal(probUp: number, confidence: number, agreement: number, threshold: number): ModelSignal {
    if (!Number.isFinite(probUp)) return { ok: false, version: this.version, error: `model ${this.version} produced a non-finite probability` };
    const exit = this.manifest.ensemble.exitThreshold;
    // Fitted thresholds (an exit threshold in the manifest): size by the members' agreement (see combineMembers).
    const out: ModelSignal = { ok: true, probUp, confidence: exit === undefined ? confidence : agreement, action: probUp >= threshold ? 'long' : 'flat', version: this.version, enterProb: threshold };
    if (exit !== undefined && exit < threshold) out.exitProb = exit;
    return out;
  }

  /** Calibrated member probabilities and the soft vote for each row (model input layout). */
  async run(rows: Float32Array[]): Promise<{ probUp: Float64Array; confidence: Float64Array; agreement: Float64Array; members: Float64Array[] }> {
    const n = rows.length;
    const width = this.manifest.inputs.width;
    // A row's answer must not depend on how requests were batched (backtest and replay parity):
    // ONNX Runtime scores a one-row batch on another code path (its GEMV for the linear member)
    // whose float32 sums differ in the last bits from any batch of two or more, which agree with
    // one another. So a lone row is scored beside a copy of itself. Pinned in
    // test/unit/models-inference.test.ts (scored alone, in pairs, in odd chunks, all at once).
    const rowsRun = n === 1 ? 2 : n;
    const X = new Float32Array(rowsRun * width);
    rows.forEach((r, i) => X.set(r, i * width));
    if (n === 1) X.set(rows[0], width);
    const tensor = new ort.Tensor('float32', X, [rowsRun, width]);
    const outputs = await Promise.all(this.members.map((m) => m.session.run({ [m.input]: tensor }, [m.output])));
    const members = this.members.map((m, k) => {
      const z = outputs[k][m.output].data as Float32Array;
      const p = new Float64Array(n);
      for (let i = 0; i < n; i++) p[i] = calibrate(m.calibration, z[2 * i + 1]);
      return p;
    });
    const probUp = new Float64Array(n);
    const confidence = new Float64Array(n);
    const agreement = new Float64Array(n);
    const votes = new Float64Array(members.length);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < members.length; k++) votes[k] = members[k][i];
      const c = combineMembers(votes);
      probUp[i] = c.probUp;
      confidence[i] = c.confidence;
      agreement[i] = c.agreement;
    }
    return { probUp, confidence, agreement, members };
  }
}

/** Single-threaded sessions: the models are tiny, and a thread pool costs more than it saves. */
export const SESSION_OPTIONS: ort.InferenceSession.SessionOptions = {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
};

const cache = new Map<string, Promise<LoadedEnsemble>>();

/** Loads a version directory once per process; a failed load is not cached (the next call retries). */
export function loadEnsemble(dir: string): Promise<LoadedEnsemble> {
  const key = path.resolve(dir);
  let p = cache.get(key);
  if (!p) {
    p = (async () => {
      const v = loadModelVersion(key);
      const members: MemberSession[] = [];
      for (const m of v.manifest.members) {
        let session: ort.InferenceSession;
        try {
          session = await ort.InferenceSession.create(v.members.get(m.name)!, SESSION_OPTIONS);
        } catch (err) {
          throw new Error(`model ${v.manifest.id}: ONNX Runtime cannot load ${m.file}: ${(err as Error).message}`, { cause: err });
        }
        if (!session.inputNames.includes(m.input) || !session.outputNames.includes(m.output)) {
          throw new Error(`model ${v.manifest.id}: ${m.file} has inputs [${session.inputNames.join(', ')}] and outputs [${session.outputNames.join(', ')}], manifest expects ${m.input} -> ${m.output}`);
        }
        members.push({ name: m.name, session, input: m.input, output: m.output, calibration: m.calibration });
      }
      return new LoadedEnsemble(v.manifest, members);
    })();
    cache.set(key, p);
    p.catch(() => cache.delete(key));
  }
  return p;
}

/** Forgets cached sessions (all, or one directory's) and releases them. */
export async function evictModelCache(dir?: string): Promise<void> {
  const keys = dir === undefined ? [...cache.keys()] : [path.resolve(dir)];
  for (const k of keys) {
    const p = cache.get(k);
    cache.delete(k);
    const loaded = await p?.catch(() => undefined);
    for (const m of loaded?.members ?? []) await m.session.release().catch(() => undefined);
  }
}

/** Why this build cannot feed the model, or undefined when it can. */
function schemaProblem(m: ModelManifest, expectedHash: string): string | undefined {
  if (m.featureSchema.hash !== expectedHash) {
    return `feature schema mismatch: model ${m.id} was trained on schema v${m.featureSchema.version} (${m.featureSchema.hash.slice(0, 12)}), features are computed with ${expectedHash.slice(0, 12)}`;
  }
  if (m.inputs.width !== MODEL_INPUT_WIDTH || m.inputs.names.some((n, i) => n !== MODEL_INPUT_NAMES[i])) {
    return `model input mismatch: model ${m.id} expects [${m.inputs.names.join(', ')}], this build produces [${MODEL_INPUT_NAMES.join(', ')}]`;
  }
  return undefined;
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function createSignalProvider(opts: SignalProviderOptions): SignalProvider {
  let dir: string;
  let configError: string | undefined;
  if (opts.dir) dir = path.resolve(opts.dir);
  else if (opts.version) {
    const id = VersionId.safeParse(opts.version);
    if (!id.success) configError = `invalid model version id ${JSON.stringify(opts.version)}: ${id.error.issues[0]?.message}`;
    dir = path.resolve(opts.modelsRoot ?? modelsDir(process.env.TRADER_HOME?.trim() || './.data'), opts.version);
  } else {
    dir = '';
    configError = 'createSignalProvider needs a model directory (dir) or a version id (version)';
  }
  const expectedHash = opts.expectedSchemaHash ?? FEATURE_SCHEMA.hash;
  const windowMs = opts.batchWindowMs ?? 0;
  const maxBatch = opts.maxBatch ?? 256;
  if (!(windowMs >= 0 && windowMs <= 1000)) configError ??= `batchWindowMs must be in 0..1000, got ${windowMs}`;
  if (!(Number.isInteger(maxBatch) && maxBatch >= 1)) configError ??= `maxBatch must be a positive integer, got ${maxBatch}`;
  if (opts.longThreshold !== undefined && !(opts.longThreshold > 0 && opts.longThreshold < 1)) configError ??= `longThreshold must be in (0, 1), got ${opts.longThreshold}`;

  const acquire = async (): Promise<{ model: LoadedEnsemble } | { error: ModelSignal }> => {
    if (configError) return { error: { ok: false, error: configError } };
    let model: LoadedEnsemble;
    try {
      model = await loadEnsemble(dir);
    } catch (err) {
      return { error: { ok: false, error: message(err) } };
    }
    const problem = schemaProblem(model.manifest, expectedHash);
    if (problem) return { error: { ok: false, version: model.version, error: problem } };
    model.configure(windowMs, maxBatch);
    return { model };
  };

  const provider = (async (symbol: string, features: ArrayLike<number>, candle?: { timestamp: number }): Promise<ModelSignal> => {
    try {
      const got = await acquire();
      if ('error' in got) return got.error;
      const { model } = got;
      const where = `${symbol}${candle ? ` @ ${new Date(candle.timestamp).toISOString()}` : ''}`;
      if (!features || typeof features.length !== 'number') return { ok: false, version: model.version, error: `${where}: features must be an array of numbers` };
      if (features.length !== FEATURE_SCHEMA.width) {
        return { ok: false, version: model.version, error: `feature schema mismatch for ${where}: got ${features.length} features, schema v${FEATURE_SCHEMA.version} has ${FEATURE_SCHEMA.width}` };
      }
      // The version's per-symbol normalization (none in versions trained without it).
      const row = toModelRow(features, undefined, 0, normalizeFeatures(model.manifest.normalization, symbol, features));
      if (!row) return { ok: false, version: model.version, error: `${where}: feature vector has a non-finite value (incomplete warm-up?)` };
      return await model.enqueue(row, opts.longThreshold ?? model.manifest.ensemble.longThreshold);
    } catch (err) {
      return { ok: false, error: `inference failed: ${message(err)}` };
    }
  }) as SignalProvider;
  provider.ready = async () => {
    const got = await acquire();
    return 'error' in got ? got.error : { ok: true, version: got.model.version };
  };
  Object.defineProperty(provider, 'dir', { value: dir, enumerable: true });
  return provider;
}
