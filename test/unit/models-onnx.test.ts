import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import {
  attr, decodeModel, floatTensor, int64Tensor, node, ONNX_ML_DOMAIN, OnnxGraphError, readMetadata, serializeModel, tensorInfo,
} from '../../models/onnx';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

describe('models/onnx writer', () => {
  it('writes a plain-op MLP layer that ONNX Runtime runs with the expected values', async () => {
    const W = [0.5, -1, 2, 0.25, -0.75, 1.5]; // [3, 2]
    const b = [0.1, -0.2];
    const bytes = serializeModel({
      metadata: { kind: 'test-mlp' },
      graph: {
        name: 'mlp',
        inputs: [tensorInfo('X', 'float', [null, 3])],
        outputs: [tensorInfo('P', 'float', [null, 2])],
        initializers: [floatTensor('W', [3, 2], W), floatTensor('b', [2], b)],
        nodes: [node('Gemm', ['X', 'W', 'b'], ['H']), node('Tanh', ['H'], ['T']), node('Softmax', ['T'], ['P'], { attributes: { axis: attr.int(-1) } })],
      },
    });
    const session = await ort.InferenceSession.create(bytes);
    const x = [1, 2, 3, -1, 0.5, 0];
    const out = await session.run({ X: new ort.Tensor('float32', Float32Array.from(x), [2, 3]) });
    const p = out.P.data as Float32Array;
    for (let r = 0; r < 2; r++) {
      const h = [0, 1].map((j) => Math.tanh(b[j] + [0, 1, 2].reduce((s, i) => s + x[r * 3 + i] * W[i * 2 + j], 0)));
      const e = h.map(Math.exp);
      const expected = e.map((v) => v / (e[0] + e[1]));
      for (let j = 0; j < 2; j++) assert.ok(Math.abs(p[r * 2 + j] - expected[j]) < 1e-6, `row ${r} col ${j}: ${p[r * 2 + j]} vs ${expected[j]}`);
    }
    assert.deepEqual(readMetadata(bytes), { kind: 'test-mlp' });
  });

  it('writes an ai.onnx.ml LinearClassifier with both classes explicit', async () => {
    const bytes = serializeModel({
      graph: {
        name: 'lin',
        inputs: [tensorInfo('X', 'float', [null, 2])],
        outputs: [tensorInfo('label', 'int64', [null]), tensorInfo('probabilities', 'float', [null, 2])],
        nodes: [node('LinearClassifier', ['X'], ['label', 'probabilities'], {
          domain: ONNX_ML_DOMAIN,
          attributes: {
            coefficients: attr.floats([-1, 2, 1, -2]), intercepts: attr.floats([-0.3, 0.3]),
            classlabels_ints: attr.ints([0, 1]), post_transform: attr.string('LOGISTIC'),
          },
        })],
      },
    });
    const session = await ort.InferenceSession.create(bytes);
    const out = await session.run({ X: new ort.Tensor('float32', Float32Array.from([0.5, 0.1, -1, 1]), [2, 2]) });
    const z = out.probabilities.data as Float32Array;
    assert.ok(Math.abs(z[1] - sigmoid(0.5 - 0.2 + 0.3)) < 1e-6, `row 0 p1 ${z[1]}`);
    assert.ok(Math.abs(z[3] - sigmoid(-1 - 2 + 0.3)) < 1e-6, `row 1 p1 ${z[3]}`);
    assert.deepEqual(Array.from(out.label.data as BigInt64Array), [1n, 0n]);
  });

  it('round-trips through decodeModel with opset imports and int64 tensors', () => {
    const bytes = serializeModel({
      graph: {
        name: 'shape',
        inputs: [tensorInfo('X', 'float', ['batch', 4])],
        outputs: [tensorInfo('Y', 'float', [null, 2, 2])],
        initializers: [int64Tensor('s', [3], [-1, 2, 2])],
        nodes: [node('Reshape', ['X', 's'], ['Y'])],
      },
    });
    const m = decodeModel(bytes) as { ir_version: number; opset_import: { domain?: string; version: number }[]; graph: { initializer: { int64_data: number[] }[] } };
    assert.equal(m.ir_version, 8);
    assert.deepEqual(m.opset_import.map((o) => [o.domain ?? '', o.version]), [['', 17], [ONNX_ML_DOMAIN, 3]]);
    assert.deepEqual(m.graph.initializer[0].int64_data, [-1, 2, 2]);
  });

  it('rejects wiring mistakes with the offending name', () => {
    const base = { name: 'g', inputs: [tensorInfo('X', 'float', [null, 2])], outputs: [tensorInfo('Y', 'float', [null, 2])] };
    assert.throws(() => serializeModel({ graph: { ...base, nodes: [node('Add', ['X', 'nope'], ['Y'])] } }), (e: Error) => e instanceof OnnxGraphError && /'nope'/.test(e.message));
    assert.throws(() => serializeModel({ graph: { ...base, nodes: [node('Relu', ['X'], ['Z'])] } }), /output 'Y' is produced by no node/);
    assert.throws(() => serializeModel({ graph: { ...base, nodes: [node('Relu', ['X'], ['X'])] } }), /defined twice/);
    assert.throws(() => serializeModel({ opsetImports: [{ domain: '', version: 17 }], graph: { ...base, nodes: [node('Normalizer', ['X'], ['Y'], { domain: ONNX_ML_DOMAIN })] } }), /no opset import/);
    assert.throws(() => serializeModel({ graph: { ...base, initializers: [floatTensor('W', [2, 2], [1, 2, 3])], nodes: [node('MatMul', ['X', 'W'], ['Y'])] } }), /hold 4 values, got 3/);
    assert.throws(() => serializeModel({ graph: { ...base, nodes: [node('LeakyRelu', ['X'], ['Y'], { attributes: { alpha: attr.float(NaN) } })] } }), /must be finite/);
    assert.throws(() => serializeModel({ graph: { ...base, nodes: [node('Flatten', ['X'], ['Y'], { attributes: { axis: attr.int(1.5) } })] } }), /safe integer/);
  });

  it('ONNX Runtime refuses truncated bytes (what a corrupt file looks like)', async () => {
    const bytes = serializeModel({ graph: { name: 'g', inputs: [tensorInfo('X', 'float', [null, 2])], outputs: [tensorInfo('Y', 'float', [null, 2])], nodes: [node('Relu', ['X'], ['Y'])] } });
    await assert.rejects(ort.InferenceSession.create(bytes.subarray(0, Math.floor(bytes.length / 2))));
  });
});
