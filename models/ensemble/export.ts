import { FEATURE_SCHEMA } from '../../lib/features';
import { msToTimeframe } from '../../lib/candles';
import { sha256Hex, writeModelVersion, type ModelManifest } from '../registry';
import type { FeatureNormalization } from '../normalization';
import type { EnsembleMetrics, EnsembleModel, MemberModel } from './index';
import { boostingToOnnx, forestToOnnx, logisticToOnnx, MEMBER_INPUT, MEMBER_OUTPUT, type MemberExportInfo } from './onnx-export';

export function memberToOnnx(model: MemberModel, info: MemberExportInfo): Uint8Array {
  switch (model.kind) {
    case 'logistic':
      return logisticToOnnx(model, info);
    case 'random_forest':
      return forestToOnnx(model, info);
    case 'gbt':
      return boostingToOnnx(model, info);
  }
}

export interface ExportOptions {
  /** Default: `ensemble-<created, compact UTC>-<first 8 hex of the members' sha256>`. */
  id?: string;
  kind?: string;
  created?: Date;
  metrics?: EnsembleMetrics;
  /** Data files or symbols the version was trained on, for the manifest. */
  sources?: string[];
  /** Every series it was trained on, with its candle range and data digest. */
  trainedOn?: NonNullable<ModelManifest['data']['trainedOn']>;
  /** The per-symbol feature normalization the members were trained behind. */
  normalization?: FeatureNormalization;
}

/** Headline figures (test split) for the registry row and a quick look at the manifest. */
export function metricsSummary(metrics: EnsembleMetrics): Record<string, unknown> {
  const pick = (m: EnsembleMetrics['test'][keyof EnsembleMetrics['test']]) => ({ accuracy: m.accuracy, auc: m.auc, logLoss: m.logLoss, ece: m.ece, rows: m.rows });
  return Object.fromEntries(Object.entries(metrics.test).map(([k, v]) => [k, pick(v)]));
}

/**
 * Writes the ensemble as one model version: `<dir>` gets one .onnx per member and manifest.json.
 * Returns the manifest. `dir` is the version directory itself (it must not exist yet).
 */
export function exportEnsemble(models: EnsembleModel, dir: string, opts: ExportOptions = {}): ModelManifest {
  const files: Record<string, Uint8Array> = {};
  const members = models.members.map((m) => {
    const bytes = memberToOnnx(m.model, { member: m.name, inputNames: models.inputNames, featureSchemaHash: models.featureSchema.hash });
    const file = `${m.name}.onnx`;
    files[file] = bytes;
    return { name: m.name, file, sha256: sha256Hex(bytes), input: MEMBER_INPUT, output: MEMBER_OUTPUT, calibration: m.calibration, params: { ...m.model.params } };
  });
  const created = opts.created ?? new Date();
  const digest = sha256Hex(Buffer.from(members.map((m) => m.sha256).join(''))).slice(0, 8);
  const stamp = created.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  const manifest: ModelManifest = {
    formatVersion: 1,
    id: opts.id ?? `ensemble-${stamp}-${digest}`,
    kind: opts.kind ?? 'ensemble',
    created: created.toISOString(),
    featureSchema: { version: models.featureSchema.version, hash: models.featureSchema.hash, names: [...FEATURE_SCHEMA.names] },
    inputs: { names: [...models.inputNames], width: models.width },
    labels: { kind: models.labels.kind, horizon: models.labels.horizon, roundTripCost: models.labels.roundTripCost },
    timeframe: msToTimeframe(models.timeframeMs),
    data: { from: new Date(models.data.from).toISOString(), to: new Date(models.data.to).toISOString(), rows: models.data.rows, sources: opts.sources, ...(opts.trainedOn ? { trainedOn: opts.trainedOn } : {}) },
    ...(opts.normalization ? { normalization: opts.normalization } : {}),
    metrics: opts.metrics ? { summary: metricsSummary(opts.metrics), ...opts.metrics } : {},
    members,
    ensemble: { method: 'soft_voting', longThreshold: models.longThreshold, exitThreshold: models.thresholds.exitProb, thresholds: models.thresholds, seed: models.seed },
    champion: false,
  };
  if (models.featureSchema.hash !== FEATURE_SCHEMA.hash) throw new Error(`ensemble was trained on feature schema ${models.featureSchema.hash.slice(0, 12)}, this build has ${FEATURE_SCHEMA.hash.slice(0, 12)}`);
  writeModelVersion(dir, manifest, files);
  return manifest;
}
