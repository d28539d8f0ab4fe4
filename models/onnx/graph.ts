import { ATTRIBUTE_TYPE, DATA_TYPE, type ElemType, ModelProto } from './schema';

/**
 * A small ONNX writer: describe a graph as plain values, get the model's bytes.
 *
 *   const bytes = serializeModel({
 *     opsetImports: [{ domain: '', version: 17 }, { domain: ONNX_ML_DOMAIN, version: 3 }],
 *     graph: {
 *       name: 'logit',
 *       inputs: [tensorInfo('X', 'float', [null, 3])],
 *       outputs: [tensorInfo('Y', 'float', [null, 1])],
 *       initializers: [floatTensor('W', [3, 1], [0.1, 0.2, 0.3])],
 *       nodes: [node('MatMul', ['X', 'W'], ['Y'])],
 *     },
 *   });
 *
 * Attribute kinds are explicit (`attr.int(1)` vs `attr.float(1)`): ONNX operators check them.
 * Every name is checked before encoding (each node input must be a graph input, an
 * initializer or an earlier node's output), so a wiring mistake fails here with the name in
 * the message instead of as an opaque load error inside ONNX Runtime.
 */

export const ONNX_ML_DOMAIN = 'ai.onnx.ml';
/** IR 8 pairs with default-domain opset 17 and ai.onnx.ml opset 3, all loadable by ORT >= 1.13. */
export const DEFAULT_IR_VERSION = 8;
export const DEFAULT_OPSET_IMPORTS: OpsetImport[] = [
  { domain: '', version: 17 },
  { domain: ONNX_ML_DOMAIN, version: 3 },
];

export interface OpsetImport {
  /** '' (or 'ai.onnx') for the default operator set. */
  domain: string;
  version: number;
}

export interface Tensor {
  name: string;
  elemType: ElemType;
  dims: number[];
  values: ArrayLike<number> | string[];
}

export type Attribute =
  | { kind: 'float'; value: number }
  | { kind: 'int'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'floats'; value: ArrayLike<number> }
  | { kind: 'ints'; value: ArrayLike<number> }
  | { kind: 'strings'; value: string[] }
  | { kind: 'tensor'; value: Tensor };

export const attr = {
  float: (value: number): Attribute => ({ kind: 'float', value }),
  int: (value: number): Attribute => ({ kind: 'int', value }),
  string: (value: string): Attribute => ({ kind: 'string', value }),
  floats: (value: ArrayLike<number>): Attribute => ({ kind: 'floats', value }),
  ints: (value: ArrayLike<number>): Attribute => ({ kind: 'ints', value }),
  strings: (value: string[]): Attribute => ({ kind: 'strings', value }),
  tensor: (value: Tensor): Attribute => ({ kind: 'tensor', value }),
};

export interface GraphNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  /** '' for the default domain, ONNX_ML_DOMAIN for the classical-ML operators. */
  domain?: string;
  attributes?: Record<string, Attribute>;
}

/** A typed graph input or output; `null` or a string in `shape` is a symbolic (batch) dimension. */
export interface ValueInfo {
  name: string;
  elemType: ElemType;
  shape: (number | string | null)[];
}

export interface GraphSpec {
  name: string;
  nodes: GraphNode[];
  initializers?: Tensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  docString?: string;
}

export interface ModelSpec {
  graph: GraphSpec;
  opsetImports?: OpsetImport[];
  irVersion?: number;
  producerName?: string;
  producerVersion?: string;
  docString?: string;
  /** Free-form key/value pairs stored in the model (ONNX metadata_props). */
  metadata?: Record<string, string>;
}

export class OnnxGraphError extends Error {
  override name = 'OnnxGraphError';
}

export function node(opType: string, inputs: string[], outputs: string[], options: Omit<GraphNode, 'opType' | 'inputs' | 'outputs'> = {}): GraphNode {
  return { opType, inputs, outputs, ...options };
}

export function tensorInfo(name: string, elemType: ElemType, shape: (number | string | null)[]): ValueInfo {
  return { name, elemType, shape };
}

export const floatTensor = (name: string, dims: number[], values: ArrayLike<number>): Tensor => ({ name, elemType: 'float', dims, values });
export const int64Tensor = (name: string, dims: number[], values: ArrayLike<number>): Tensor => ({ name, elemType: 'int64', dims, values });

const isInt = (x: number) => Number.isSafeInteger(x);

function checkTensor(t: Tensor, where: string): void {
  const size = t.dims.reduce((a, d) => a * d, 1);
  if (!t.dims.every((d) => isInt(d) && d >= 0)) throw new OnnxGraphError(`${where}: dims must be non-negative integers, got [${t.dims.join(', ')}]`);
  if (t.values.length !== size) throw new OnnxGraphError(`${where}: dims [${t.dims.join(', ')}] hold ${size} values, got ${t.values.length}`);
  if (t.elemType === 'string') {
    if (!Array.from(t.values as ArrayLike<unknown>).every((v) => typeof v === 'string')) throw new OnnxGraphError(`${where}: string tensor with a non-string value`);
    return;
  }
  const nums = t.values as ArrayLike<number>;
  for (let i = 0; i < nums.length; i++) {
    const v = nums[i];
    if (typeof v !== 'number' || Number.isNaN(v)) throw new OnnxGraphError(`${where}: value ${i} is not a number (${String(v)})`);
    if ((t.elemType === 'int64' || t.elemType === 'int32') && !isInt(v)) throw new OnnxGraphError(`${where}: value ${i} (${v}) is not an integer`);
  }
}

function encodeTensor(t: Tensor, where: string): Record<string, unknown> {
  checkTensor(t, where);
  const out: Record<string, unknown> = { name: t.name, dims: t.dims, data_type: DATA_TYPE[t.elemType] };
  const values = Array.from(t.values as ArrayLike<number | string>);
  if (t.elemType === 'float') out.float_data = values;
  else if (t.elemType === 'double') out.double_data = values;
  else if (t.elemType === 'int64') out.int64_data = values;
  else if (t.elemType === 'int32') out.int32_data = values;
  else out.string_data = (values as string[]).map((s) => Buffer.from(s, 'utf8'));
  return out;
}

function encodeAttribute(name: string, a: Attribute, where: string): Record<string, unknown> {
  const at = `${where} attribute '${name}'`;
  const out: Record<string, unknown> = { name, type: ATTRIBUTE_TYPE[a.kind] };
  switch (a.kind) {
    case 'float':
      if (!Number.isFinite(a.value)) throw new OnnxGraphError(`${at}: float must be finite, got ${a.value}`);
      out.f = a.value;
      break;
    case 'int':
      if (!isInt(a.value)) throw new OnnxGraphError(`${at}: int must be a safe integer, got ${a.value}`);
      out.i = a.value;
      break;
    case 'string':
      out.s = Buffer.from(a.value, 'utf8');
      break;
    case 'floats': {
      const v = Array.from(a.value);
      const bad = v.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new OnnxGraphError(`${at}: element ${bad} is not finite (${v[bad]})`);
      out.floats = v;
      break;
    }
    case 'ints': {
      const v = Array.from(a.value);
      const bad = v.findIndex((x) => !isInt(x));
      if (bad >= 0) throw new OnnxGraphError(`${at}: element ${bad} is not a safe integer (${v[bad]})`);
      out.ints = v;
      break;
    }
    case 'strings':
      out.strings = a.value.map((s) => Buffer.from(s, 'utf8'));
      break;
    case 'tensor':
      out.t = encodeTensor(a.value, at);
      break;
    default:
      throw new OnnxGraphError(`${at}: unknown attribute kind ${(a as { kind: string }).kind}`);
  }
  return out;
}

function encodeValueInfo(v: ValueInfo): Record<string, unknown> {
  const dim = v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d ?? 'N' }));
  return { name: v.name, type: { tensor_type: { elem_type: DATA_TYPE[v.elemType], shape: { dim } } } };
}

/** Checks the graph's wiring; throws OnnxGraphError naming the first problem. */
export function validateGraph(g: GraphSpec, opsetImports: OpsetImport[] = DEFAULT_OPSET_IMPORTS): void {
  if (!g.name) throw new OnnxGraphError('graph needs a name');
  if (g.inputs.length === 0) throw new OnnxGraphError(`graph '${g.name}' has no inputs`);
  if (g.outputs.length === 0) throw new OnnxGraphError(`graph '${g.name}' has no outputs`);
  const domains = new Set(opsetImports.map((o) => (o.domain === 'ai.onnx' ? '' : o.domain)));
  const known = new Set<string>();
  const define = (name: string, what: string) => {
    if (!name) throw new OnnxGraphError(`graph '${g.name}': ${what} has an empty name`);
    if (known.has(name)) throw new OnnxGraphError(`graph '${g.name}': '${name}' is defined twice (${what})`);
    known.add(name);
  };
  for (const i of g.inputs) define(i.name, 'input');
  for (const t of g.initializers ?? []) define(t.name, 'initializer');
  g.nodes.forEach((n, k) => {
    const label = `node ${k} (${n.opType}${n.name ? ` '${n.name}'` : ''})`;
    if (!n.opType) throw new OnnxGraphError(`graph '${g.name}': node ${k} has no opType`);
    if (!domains.has(n.domain ?? '')) throw new OnnxGraphError(`graph '${g.name}': ${label} uses domain '${n.domain}' with no opset import for it`);
    if (n.outputs.length === 0) throw new OnnxGraphError(`graph '${g.name}': ${label} has no outputs`);
    for (const i of n.inputs) {
      // '' marks an omitted optional input in ONNX.
      if (i !== '' && !known.has(i)) throw new OnnxGraphError(`graph '${g.name}': ${label} reads '${i}', which is not a graph input, initializer or earlier output`);
    }
    for (const o of n.outputs) define(o, `output of ${label}`);
  });
  for (const o of g.outputs) {
    if (!known.has(o.name)) throw new OnnxGraphError(`graph '${g.name}': output '${o.name}' is produced by no node`);
  }
}

/** The ModelProto as a plain object (protobufjs field names), validated. */
export function buildModel(spec: ModelSpec): Record<string, unknown> {
  const opsetImports = spec.opsetImports ?? DEFAULT_OPSET_IMPORTS;
  if (opsetImports.length === 0) throw new OnnxGraphError('a model needs at least one opset import');
  for (const o of opsetImports) {
    if (!isInt(o.version) || o.version < 1) throw new OnnxGraphError(`opset import '${o.domain}': version must be a positive integer, got ${o.version}`);
  }
  const g = spec.graph;
  validateGraph(g, opsetImports);
  return {
    ir_version: spec.irVersion ?? DEFAULT_IR_VERSION,
    opset_import: opsetImports.map((o) => ({ domain: o.domain, version: o.version })),
    producer_name: spec.producerName ?? 'durable-trader',
    producer_version: spec.producerVersion ?? '0',
    doc_string: spec.docString ?? '',
    metadata_props: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: {
      name: g.name,
      doc_string: g.docString ?? '',
      input: g.inputs.map(encodeValueInfo),
      output: g.outputs.map(encodeValueInfo),
      initializer: (g.initializers ?? []).map((t) => encodeTensor(t, `initializer '${t.name}'`)),
      node: g.nodes.map((n, k) => ({
        name: n.name ?? `${n.opType}_${k}`,
        op_type: n.opType,
        domain: n.domain ?? '',
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attributes ?? {}).map(([name, a]) => encodeAttribute(name, a, `node ${k} (${n.opType})`)),
      })),
    },
  };
}

/** Serialize a model to ONNX bytes (what `InferenceSession.create(bytes)` and `.onnx` files hold). */
export function serializeModel(spec: ModelSpec): Uint8Array {
  const plain = buildModel(spec);
  const problem = ModelProto.verify(plain);
  if (problem) throw new OnnxGraphError(`model does not fit the ONNX schema: ${problem}`);
  return ModelProto.encode(ModelProto.fromObject(plain)).finish();
}

/** Decode ONNX bytes back to a plain object (longs as numbers, bytes as base64) for inspection. */
export function decodeModel(bytes: Uint8Array): Record<string, unknown> {
  return ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, bytes: String, defaults: false }) as Record<string, unknown>;
}

/** Metadata stored by serializeModel, read back from the bytes. */
export function readMetadata(bytes: Uint8Array): Record<string, string> {
  const m = decodeModel(bytes) as { metadata_props?: { key: string; value: string }[] };
  return Object.fromEntries((m.metadata_props ?? []).map((e) => [e.key, e.value]));
}
