import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { FEATURE_SCHEMA } from '../../lib/features';
import { attr, floatTensor, type GraphNode, node, serializeModel, type Tensor, tensorInfo } from '../onnx';
import { PpoPolicy } from './policy';

/**
 * The policy as an ONNX graph of plain operators, and the manifest that travels with it.
 *
 *   obs [N, W] float  (raw features in FEATURE_SCHEMA order, then the position flag 0/1)
 *     -> Sub(mean) -> Mul(scale) -> Clip(-clip, clip)          the training-set normalization
 *     -> Gemm(W1, b1, transB) -> Tanh -> ... -> Gemm(Wk, bk)   the MLP, logits [N, 2]
 *     -> Softmax(axis 1)                                        probabilities [N, 2] = (flat, long)
 *
 * The position flag has mean 0, scale 1 and clip >= 1, so it passes through unchanged.
 * ONNX Runtime computes in float32; the TypeScript policy in float64. They agree to ~1e-7.
 */

export const POLICY_INPUT = 'obs';
export const POLICY_OUTPUT = 'probabilities';
export const POLICY_LOGITS = 'logits';
const OPSET = 17;

/** ONNX bytes of the policy network with its input normalization. */
export function policyToOnnx(policyInput: PpoPolicy): Uint8Array {
  const policy = PpoPolicy.parse(policyInput);
  const { sizes, params } = policy.network;
  const W = sizes[0];
  const initializers: Tensor[] = [
    floatTensor('obs_mean', [W], policy.observation.mean),
    floatTensor('obs_scale', [W], policy.observation.scale),
    floatTensor('obs_clip_min', [], [-policy.observation.clip]),
    floatTensor('obs_clip_max', [], [policy.observation.clip]),
  ];
  const nodes: GraphNode[] = [
    node('Sub', [POLICY_INPUT, 'obs_mean'], ['obs_centered']),
    node('Mul', ['obs_centered', 'obs_scale'], ['obs_scaled']),
    node('Clip', ['obs_scaled', 'obs_clip_min', 'obs_clip_max'], ['z0']),
  ];
  let off = 0;
  const layers = sizes.length - 1;
  for (let l = 0; l < layers; l++) {
    const inSize = sizes[l];
    const outSize = sizes[l + 1];
    initializers.push(floatTensor(`W${l + 1}`, [outSize, inSize], params.slice(off, off + inSize * outSize)));
    off += inSize * outSize;
    initializers.push(floatTensor(`b${l + 1}`, [outSize], params.slice(off, off + outSize)));
    off += outSize;
    const last = l === layers - 1;
    const out = last ? POLICY_LOGITS : `a${l + 1}`;
    nodes.push(node('Gemm', [`z${l}`, `W${l + 1}`, `b${l + 1}`], [out], { attributes: { transB: attr.int(1) } }));
    if (!last) nodes.push(node('Tanh', [out], [`z${l + 1}`]));
  }
  nodes.push(node('Softmax', [POLICY_LOGITS], [POLICY_OUTPUT], { attributes: { axis: attr.int(1) } }));
  return serializeModel({
    opsetImports: [{ domain: '', version: OPSET }],
    producerName: 'durable-trader/ppo',
    docString: 'PPO trading policy: P(flat), P(long) for one observation per row',
    metadata: {
      feature_schema_version: String(policy.featureSchema.version),
      feature_schema_hash: policy.featureSchema.hash,
      observation: policy.observation.names.join(','),
      actions: policy.actions.join(','),
    },
    graph: {
      name: 'ppo_policy',
      inputs: [tensorInfo(POLICY_INPUT, 'float', ['N', W])],
      outputs: [tensorInfo(POLICY_LOGITS, 'float', ['N', 2]), tensorInfo(POLICY_OUTPUT, 'float', ['N', 2])],
      initializers,
      nodes,
    },
  });
}

// --- manifest -------------------------------------------------------------------------------------

export const POLICY_MANIFEST_FORMAT = 'durable-trader/ppo-manifest';

export const PolicyManifest = z.object({
  format: z.literal(POLICY_MANIFEST_FORMAT),
  formatVersion: z.literal(1),
  kind: z.literal('ppo'),
  onnx: z.object({
    /** File name, relative to the manifest's directory. */
    file: z.string().min(1).refine((f) => basename(f) === f, 'must be a bare file name next to the manifest'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    bytes: z.number().int().positive(),
    opset: z.number().int(),
    input: z.object({ name: z.string(), width: z.number().int().positive(), names: z.array(z.string()) }),
    /** Output name -> meaning of its columns. */
    outputs: z.record(z.string(), z.array(z.string())),
  }),
  featureSchema: z.object({ version: z.number().int(), hash: z.string() }),
  policy: PpoPolicy,
  /** Training and evaluation figures, as trainPpo reported them (free-form for readers). */
  metrics: z.record(z.string(), z.unknown()).optional(),
});
export type PolicyManifest = z.infer<typeof PolicyManifest>;

export type PolicyArtifactProblem = 'missing' | 'corrupt' | 'checksum' | 'schema_mismatch';

/**
 * A policy that must not be used: the caller blocks new entries (protective exits go on) and
 * alerts. `problem` says why, for the alert and for tests.
 */
export class PolicyArtifactError extends Error {
  override name = 'PolicyArtifactError';
  constructor(message: string, readonly problem: PolicyArtifactProblem, readonly path: string) {
    super(message);
  }
}

export interface ExportedPolicy {
  onnxPath: string;
  manifestPath: string;
  sha256: string;
  bytes: number;
}

/** `dir/name.onnx` -> `dir/name.manifest.json`. */
export function manifestPathFor(onnxFile: string): string {
  if (!onnxFile.endsWith('.onnx')) throw new RangeError(`policy file must end in .onnx, got '${onnxFile}'`);
  return onnxFile.slice(0, -'.onnx'.length) + '.manifest.json';
}

function writeAtomically(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/**
 * Writes `file` (.onnx) and its manifest beside it (`name.manifest.json`), each atomically (a
 * reader never sees half a file); the ONNX file goes first, so a manifest always names a complete
 * model. The output is a pure function of the policy and metrics: no timestamps inside.
 */
export function exportPolicy(policy: PpoPolicy, file: string, metrics?: object): ExportedPolicy {
  const manifestPath = manifestPathFor(file);
  const bytes = policyToOnnx(policy);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const manifest: PolicyManifest = {
    format: POLICY_MANIFEST_FORMAT,
    formatVersion: 1,
    kind: 'ppo',
    onnx: {
      file: basename(file),
      sha256,
      bytes: bytes.length,
      opset: OPSET,
      input: { name: POLICY_INPUT, width: policy.observation.names.length, names: [...policy.observation.names] },
      outputs: { [POLICY_OUTPUT]: [...policy.actions], [POLICY_LOGITS]: [...policy.actions] },
    },
    featureSchema: { version: policy.featureSchema.version, hash: policy.featureSchema.hash },
    policy,
    ...(metrics ? { metrics: JSON.parse(JSON.stringify(metrics)) as Record<string, unknown> } : {}),
  };
  mkdirSync(dirname(file), { recursive: true });
  writeAtomically(file, bytes);
  writeAtomically(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  return { onnxPath: file, manifestPath, sha256, bytes: bytes.length };
}

export interface LoadedPolicy {
  manifest: PolicyManifest;
  policy: PpoPolicy;
  onnxPath: string;
  /** The verified model bytes (what InferenceSession.create takes). */
  onnx: Uint8Array;
}

/**
 * Reads a policy manifest (or the .onnx beside it), checks the model file's checksum and that the
 * policy was trained on the current feature schema. Throws PolicyArtifactError otherwise.
 */
export function loadPolicyManifest(path: string, schema: { version: number; hash: string } = FEATURE_SCHEMA): LoadedPolicy {
  const manifestPath = path.endsWith('.onnx') ? manifestPathFor(path) : path;
  const read = (p: string, what: string): Buffer => {
    try {
      return readFileSync(p);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new PolicyArtifactError(`${what} ${p}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, code === 'ENOENT' ? 'missing' : 'corrupt', p);
    }
  };
  let json: unknown;
  try {
    json = JSON.parse(read(manifestPath, 'policy manifest').toString('utf8'));
  } catch (err) {
    if (err instanceof PolicyArtifactError) throw err;
    throw new PolicyArtifactError(`policy manifest ${manifestPath} is not JSON: ${(err as Error).message}`, 'corrupt', manifestPath);
  }
  const parsed = PolicyManifest.safeParse(json);
  if (!parsed.success) {
    const why = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new PolicyArtifactError(`policy manifest ${manifestPath} is invalid: ${why}`, 'corrupt', manifestPath);
  }
  const manifest = parsed.data;
  if (manifest.featureSchema.hash !== schema.hash || manifest.policy.featureSchema.hash !== schema.hash) {
    throw new PolicyArtifactError(
      `policy ${manifestPath} was trained on feature schema v${manifest.featureSchema.version} (${manifest.featureSchema.hash.slice(0, 12)}), ` +
        `this build computes v${schema.version} (${schema.hash.slice(0, 12)}): retrain before trading with it`,
      'schema_mismatch',
      manifestPath,
    );
  }
  const onnxPath = join(dirname(manifestPath), manifest.onnx.file);
  const onnx = read(onnxPath, 'policy model');
  const sha = createHash('sha256').update(onnx).digest('hex');
  if (sha !== manifest.onnx.sha256) {
    throw new PolicyArtifactError(`policy model ${onnxPath} does not match its manifest (sha256 ${sha.slice(0, 12)}, expected ${manifest.onnx.sha256.slice(0, 12)})`, 'checksum', onnxPath);
  }
  return { manifest, policy: manifest.policy, onnxPath, onnx: new Uint8Array(onnx.buffer, onnx.byteOffset, onnx.byteLength) };
}
