import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type postgres from 'postgres';
import type { Candle } from '../lib/candles';
import { BUILTIN_STRATEGY_NAMES, type ModelSignal, type BuiltinStrategyName } from '../lib/engine/types';
import { BUILTIN_STRATEGIES } from '../lib/strategy/builtins';
import type { ModelPart } from '../lib/strategy/types';
import { FEATURE_SCHEMA } from '../lib/features';
import { createSignalProvider, evictModelCache, SESSION_OPTIONS, type SignalProvider } from './inference';
import { buildObservation, loadPolicyManifest, manifestPathFor, OBSERVATION_WIDTH, POLICY_INPUT, POLICY_OUTPUT, type PpoPolicy } from './ppo';
import { championModelVersion, getModelVersion, MANIFEST_FILE, readManifest, VersionId } from './registry';
import { normalizeFeatures, type FeatureNormalization } from './normalization';
import { PROJECT_ROOT } from '../infra/project-root';

/**
 * The one model signal the trading decision reads, live and in backtests: a model version (an
 * ensemble and a PPO policy, both ONNX) turned into lib/engine's ModelSignal.
 *
 *   ensemble -> probUp, confidence (soft vote of the calibrated members; models/inference.ts)
 *   ppo      -> action
 *   hybrid   -> both; the engine (lib/engine/strategy.ts) decides what it does with them
 *
 * PPO's position flag. The policy was trained on (features, "am I long") and its action means
 * "be long" / "be flat". The signal call does not carry the engine's position, and a source that
 * remembered "the last action per symbol" would be state outside Temporal: lost on a worker
 * restart, different on another worker, different between a replay and a backtest. So the policy
 * is asked both questions in one batch, as if flat and as if long:
 *   long  if flat, long  if long  -> action 'long'   (enter, or stay)
 *   flat  if flat, flat  if long  -> action 'flat'   (exit, or stay out)
 *   flat  if flat, long  if long  -> no action       (hold whatever is held: no entry, no exit)
 *   long  if flat, flat  if long  -> action 'flat'   (the policy contradicts itself: no entries)
 * Whenever the engine's position matches the policy's, this is exactly what the policy would do
 * with the true flag; when risk overrode it (a stop-out, a blocked entry) the policy is asked the
 * question it can answer for both states. Same inputs, same signal: nothing depends on history.
 *
 * A missing or corrupt version, a feature-schema mismatch or a failing session gives
 * `{ ok: false, error }` (never a throw): the decision makes no new entries, protective exits go
 * on, and `onProblem` is told (rate limited) so the operator gets an alert.
 *
 * Which version: a fixed directory (`dir`: backtests, `--models DIR`), else the version the
 * trader asks for (it pins the version a signal reports and asks again after a reload), else the
 * registry's champion, else `fallbackDir` (the committed bootstrap model of a fresh clone).
 */

export type { ModelPart };

/**
 * The model a fresh clone trades with until a trained one is promoted: a version written by
 * `trader train` and committed (see models/bootstrap/report.md for what it is and how it scores).
 */
export const BOOTSTRAP_MODEL_DIR = path.join(PROJECT_ROOT, 'models', 'bootstrap');

/** Which parts of a version each built-in needs: what it declares (lib/strategy/builtins). */
export const STRATEGY_PARTS: Record<BuiltinStrategyName, readonly ModelPart[]> = Object.fromEntries(
  BUILTIN_STRATEGY_NAMES.map((name) => [name, BUILTIN_STRATEGIES[name].model ?? []]),
) as Record<BuiltinStrategyName, readonly ModelPart[]>;

/** The built-in whose source serves exactly these parts (any strategy's `model`), or undefined for none. */
export function strategyServing(parts: readonly ModelPart[]): BuiltinStrategyName | undefined {
  const ensemble = parts.includes('ensemble');
  const ppo = parts.includes('ppo');
  return ensemble && ppo ? 'hybrid' : ensemble ? 'ensemble' : ppo ? 'ppo' : undefined;
}

/** Finds version directories: the registry's champion and versions by id. */
export interface ModelResolver {
  champion(): Promise<{ id: string; dir: string } | undefined>;
  find(id: string): Promise<string | undefined>;
}

/** A resolver over the PostgreSQL registry (models/registry.ts). */
export function registryResolver(sql: postgres.Sql, kind = 'ensemble'): ModelResolver {
  return {
    async champion() {
      const row = await championModelVersion(sql, kind);
      return row ? { id: row.id, dir: row.artifactPath } : undefined;
    },
    async find(id) {
      return (await getModelVersion(sql, id))?.artifactPath;
    },
  };
}

export interface ModelProblem {
  /** Stable per (version, kind of problem): the alert queue de-duplicates on it. */
  key: string;
  /** The signal's error, e.g. "member gbt file gbt.onnx is corrupt". */
  error: string;
  /** The symbol whose signal met the problem first. */
  symbol: string;
  version?: string;
}

export interface ModelSignalSourceOptions {
  /** Which parts to serve (default hybrid: both). `rules` needs no model: every call says so. */
  strategy?: BuiltinStrategyName;
  /** Serve this version directory whatever version is asked for. */
  dir?: string;
  /** Versions by id live in `<modelsRoot>/<id>` unless the resolver knows better. */
  modelsRoot?: string;
  resolver?: ModelResolver;
  /** When no version is asked for and the registry has no champion (or no resolver is given). */
  fallbackDir?: string;
  /** Told about every failing signal, at most once per problem key per `problemEveryMs`. */
  onProblem?: (p: ModelProblem) => void;
  problemEveryMs?: number;
  /** Passed to the ensemble provider (models/inference.ts). */
  batchWindowMs?: number;
}

export interface SignalRequest {
  /** The version the trader runs (null before its first signal). */
  version?: string | null;
  /** After a reloadModel signal: re-resolve; without a version that means the champion. */
  reload?: boolean;
}

export interface ModelSignalSource {
  /** The live form (activities/trading TradingDeps.signal). */
  (symbol: string, features: number[], candle: Candle, req?: SignalRequest): Promise<ModelSignal>;
  /** The backtest form (lib/backtest SignalFn). */
  readonly backtest: (symbol: string, features: number[], candle: Candle) => Promise<ModelSignal>;
  /** Loads what the strategy needs without a feature vector: `{ ok: true, version }` when it can serve. */
  ready(req?: SignalRequest): Promise<ModelSignal>;
  readonly strategy: BuiltinStrategyName;
}

// --- the PPO policy over ONNX Runtime --------------------------------------------------------------

export interface LoadedPpoPolicy {
  version: string;
  session: ort.InferenceSession;
  policy: PpoPolicy;
  /** The version's per-symbol feature normalization, applied before the policy's own. */
  normalization?: FeatureNormalization;
}

const ppoCache = new Map<string, Promise<LoadedPpoPolicy>>();

/**
 * The PPO policy of a version directory, once per process (versions are immutable); checked
 * against the version manifest's sha256 and this build's feature schema. A failed load is not
 * cached, so a repaired directory is picked up by the next call.
 */
export function loadPpoPolicy(dir: string): Promise<LoadedPpoPolicy> {
  const key = path.resolve(dir);
  let p = ppoCache.get(key);
  if (!p) {
    p = (async () => {
      const manifest = readManifest(key);
      if (!manifest.ppo) throw new Error(`model ${manifest.id} has no PPO policy (train it with trader train)`);
      const loaded = loadPolicyManifest(manifestPathFor(path.join(key, manifest.ppo.file)));
      if (loaded.manifest.onnx.sha256 !== manifest.ppo.sha256) throw new Error(`model ${manifest.id}: ${manifest.ppo.file} is not the policy its manifest names (sha256 differs)`);
      let session: ort.InferenceSession;
      try {
        session = await ort.InferenceSession.create(loaded.onnx, SESSION_OPTIONS);
      } catch (err) {
        throw new Error(`model ${manifest.id}: ONNX Runtime cannot load ${manifest.ppo.file}: ${(err as Error).message}`, { cause: err });
      }
      if (!session.inputNames.includes(POLICY_INPUT) || !session.outputNames.includes(POLICY_OUTPUT)) {
        throw new Error(`model ${manifest.id}: ${manifest.ppo.file} has inputs [${session.inputNames.join(', ')}], outputs [${session.outputNames.join(', ')}]; expected ${POLICY_INPUT} -> ${POLICY_OUTPUT}`);
      }
      return { version: manifest.id, session, policy: loaded.policy, normalization: manifest.normalization };
    })();
    ppoCache.set(key, p);
    p.catch(() => ppoCache.delete(key));
  }
  return p;
}

/** Forgets cached sessions (ensemble and policy) of one directory or of all. */
export async function evictSignalCache(dir?: string): Promise<void> {
  await evictModelCache(dir);
  const keys = dir === undefined ? [...ppoCache.keys()] : [path.resolve(dir)];
  for (const k of keys) {
    const p = ppoCache.get(k);
    ppoCache.delete(k);
    const loaded = await p?.catch(() => undefined);
    await loaded?.session.release().catch(() => undefined);
  }
}

/** The table in the header: P(long) as if flat and as if long -> the action to signal. */
export function ppoAction(probLongIfFlat: number, probLongIfLong: number): { action?: 'long' | 'flat'; why: string } {
  const fromFlat = probLongIfFlat > 0.5 ? 'long' : 'flat';
  const fromLong = probLongIfLong > 0.5 ? 'long' : 'flat';
  if (fromFlat === fromLong) return { action: fromFlat, why: `policy: ${fromFlat} whatever the position` };
  if (fromFlat === 'flat') return { why: 'policy: hold the current position' };
  return { action: 'flat', why: 'policy contradicts itself (enter when flat, leave when long): no entries' };
}

/** P(long) for (features, flat) and (features, long) in one session run; `symbol` picks the normalization. */
export async function ppoProbabilities(loaded: LoadedPpoPolicy, features: ArrayLike<number>, symbol = ''): Promise<{ ifFlat: number; ifLong: number }> {
  features = normalizeFeatures(loaded.normalization, symbol, features);
  const obs = new Float32Array(2 * OBSERVATION_WIDTH);
  obs.set(buildObservation(features, 'flat'), 0);
  obs.set(buildObservation(features, 'long'), OBSERVATION_WIDTH);
  const out = await loaded.session.run({ [POLICY_INPUT]: new ort.Tensor('float32', obs, [2, OBSERVATION_WIDTH]) }, [POLICY_OUTPUT]);
  const p = out[POLICY_OUTPUT].data as Float32Array;
  return { ifFlat: p[1], ifLong: p[3] };
}

// --- the source ------------------------------------------------------------------------------------

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));

export function createModelSignalSource(opts: ModelSignalSourceOptions): ModelSignalSource {
  const strategy = opts.strategy ?? 'hybrid';
  const parts = STRATEGY_PARTS[strategy];
  if (!parts) throw new RangeError(`unknown strategy ${String(strategy)}`);
  const fixedDir = opts.dir ? path.resolve(opts.dir) : undefined;
  const modelsRoot = opts.modelsRoot ? path.resolve(opts.modelsRoot) : undefined;
  const fallbackDir = opts.fallbackDir ? path.resolve(opts.fallbackDir) : undefined;
  const problemEveryMs = opts.problemEveryMs ?? 15 * 60_000;
  const providers = new Map<string, SignalProvider>();
  const lastProblem = new Map<string, number>();

  const providerFor = (dir: string): SignalProvider => {
    let p = providers.get(dir);
    if (!p) {
      p = createSignalProvider({ dir, batchWindowMs: opts.batchWindowMs });
      providers.set(dir, p);
    }
    return p;
  };

  const fallbackId = (): string | undefined => {
    if (!fallbackDir) return undefined;
    try {
      return readManifest(fallbackDir).id;
    } catch {
      return undefined;
    }
  };

  /** The directory to serve, or why there is none. */
  const resolve = async (req: SignalRequest): Promise<{ dir: string } | { error: string; version?: string }> => {
    if (fixedDir) return { dir: fixedDir };
    const version = req.version ?? undefined;
    if (version !== undefined) {
      const id = VersionId.safeParse(version);
      if (!id.success) return { error: `invalid model version id ${JSON.stringify(version)}: ${id.error.issues[0]?.message}` };
      const known = await opts.resolver?.find(version);
      if (known) return { dir: path.resolve(known) };
      if (fallbackDir && fallbackId() === version) return { dir: fallbackDir };
      if (modelsRoot) return { dir: path.join(modelsRoot, version) };
      return { error: `model version ${version} is not in the registry and no models directory is configured`, version };
    }
    const champion = await opts.resolver?.champion();
    if (champion) return { dir: path.resolve(champion.dir) };
    if (fallbackDir) return { dir: fallbackDir };
    return { error: 'no model to serve: the registry has no champion and there is no bootstrap model (run `trader train --promote`)' };
  };

  const report = (symbol: string, signal: ModelSignal): ModelSignal => {
    if (signal.ok || !opts.onProblem) return signal;
    const error = signal.error ?? 'unknown model error';
    const kind = error.replace(/\d+(\.\d+)?/g, '#').slice(0, 80);
    const key = `model:${signal.version ?? 'unresolved'}:${kind}`;
    const now = Date.now();
    const last = lastProblem.get(key);
    if (last === undefined || now - last >= problemEveryMs) {
      lastProblem.set(key, now);
      try {
        opts.onProblem({ key, symbol, version: signal.version, error });
      } catch {
        // An alert hook that throws must not take the trading decision down with it.
      }
    }
    return signal;
  };

  const serve = async (symbol: string, features: number[] | undefined, candle: Candle | undefined, req: SignalRequest): Promise<ModelSignal> => {
    if (parts.length === 0) return { ok: false, error: `strategy ${strategy} uses no model` };
    const target = await resolve(req);
    if ('error' in target) return { ok: false, version: target.version, error: target.error };
    const { dir } = target;
    if (!fs.existsSync(path.join(dir, MANIFEST_FILE))) return { ok: false, version: req.version ?? undefined, error: `no model at ${dir} (${MANIFEST_FILE} is missing)` };

    const ensemble = parts.includes('ensemble')
      ? features
        ? providerFor(dir)(symbol, features, candle)
        : providerFor(dir).ready()
      : Promise.resolve(undefined);
    const ppo = parts.includes('ppo') ? ppoPart(dir, symbol, features) : Promise.resolve(undefined);
    const [e, p] = await Promise.all([ensemble, ppo]);
    for (const part of [e, p]) if (part && !part.ok) return part;
    const version = e?.version ?? p?.version;
    if (e && p && e.version !== p.version) return { ok: false, version, error: `ensemble ${e.version} and policy ${p.version} are from different versions` };
    const out: ModelSignal = { ok: true, version };
    if (e?.probUp !== undefined) out.probUp = e.probUp;
    if (e?.confidence !== undefined) out.confidence = e.confidence;
    if (e?.enterProb !== undefined) out.enterProb = e.enterProb;
    if (e?.exitProb !== undefined) out.exitProb = e.exitProb;
    // The action: the policy's when it is served (none = hold), else the ensemble's threshold view.
    const action = p ? p.action : e?.action;
    if (action !== undefined) out.action = action;
    return out;
  };

  const ppoPart = async (dir: string, symbol: string, features: number[] | undefined): Promise<ModelSignal> => {
    let loaded: LoadedPpoPolicy;
    try {
      loaded = await loadPpoPolicy(dir);
    } catch (err) {
      let version: string | undefined;
      try {
        version = readManifest(dir).id;
      } catch {
        version = undefined;
      }
      return { ok: false, version, error: message(err) };
    }
    if (!features) return { ok: true, version: loaded.version };
    if (features.length !== FEATURE_SCHEMA.width) {
      return { ok: false, version: loaded.version, error: `feature schema mismatch: got ${features.length} features, schema v${FEATURE_SCHEMA.version} has ${FEATURE_SCHEMA.width}` };
    }
    for (let i = 0; i < features.length; i++) {
      if (!Number.isFinite(features[i])) return { ok: false, version: loaded.version, error: `feature ${FEATURE_SCHEMA.names[i]} is not finite (incomplete warm-up?)` };
    }
    const probs = await ppoProbabilities(loaded, features, symbol);
    const decision = ppoAction(probs.ifFlat, probs.ifLong);
    return { ok: true, version: loaded.version, action: decision.action };
  };

  const source = (async (symbol: string, features: number[], candle: Candle, req: SignalRequest = {}): Promise<ModelSignal> => {
    try {
      return report(symbol, await serve(symbol, features, candle, req));
    } catch (err) {
      return report(symbol, { ok: false, version: req.version ?? undefined, error: `model signal failed: ${message(err)}` });
    }
  }) as ModelSignalSource;
  Object.defineProperty(source, 'backtest', { value: (symbol: string, features: number[], candle: Candle) => source(symbol, features, candle, {}), enumerable: true });
  Object.defineProperty(source, 'strategy', { value: strategy, enumerable: true });
  source.ready = async (req: SignalRequest = {}) => {
    try {
      return await serve('(ready)', undefined, undefined, req);
    } catch (err) {
      return { ok: false, error: `model check failed: ${message(err)}` };
    }
  };
  return source;
}
