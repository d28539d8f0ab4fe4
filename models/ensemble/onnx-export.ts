import { attr, node, ONNX_ML_DOMAIN, serializeModel, tensorInfo, type GraphNode } from '../onnx';
import type { GradientBoostingModel } from './gbt';
import type { RandomForestModel } from './forest';
import type { LogisticModel } from './logistic';
import type { Tree } from './trees';

/**
 * Ensemble members as ONNX classifiers (ai.onnx.ml). Every member file has the same contract:
 *   input  'features'      float32 [N, width]  (MODEL_INPUT_NAMES order)
 *   output 'probabilities' float32 [N, 2]      column 1 = the member's raw (uncalibrated) P(up)
 * Both classes carry explicit weights and no base_values, so ONNX Runtime's two-class shortcuts
 * (which rewrite one class's score from the other's) never apply: class scores are plain sums,
 * then the post-transform. Checked against ORT 1.30 by the parity tests.
 */

export const MEMBER_INPUT = 'features';
export const MEMBER_OUTPUT = 'probabilities';

export interface MemberExportInfo {
  member: string;
  inputNames: readonly string[];
  featureSchemaHash: string;
}

function classifierModel(info: MemberExportInfo, width: number, n: GraphNode, doc: string): Uint8Array {
  return serializeModel({
    docString: doc,
    metadata: { member: info.member, feature_schema_hash: info.featureSchemaHash, input_names: JSON.stringify(info.inputNames) },
    graph: {
      name: info.member,
      inputs: [tensorInfo(MEMBER_INPUT, 'float', [null, width])],
      // The operators' label output stays internal: for two classes ORT picks it by its own
      // binary rules (e.g. score > 0 without base values), not by argmax of the probabilities.
      outputs: [tensorInfo(MEMBER_OUTPUT, 'float', [null, 2])],
      nodes: [n],
    },
  });
}

export function logisticToOnnx(model: LogisticModel, info: MemberExportInfo): Uint8Array {
  const w = Array.from(model.weights);
  return classifierModel(info, model.width, node('LinearClassifier', [MEMBER_INPUT], ['label', MEMBER_OUTPUT], {
    domain: ONNX_ML_DOMAIN,
    attributes: {
      // class 0 scores -z, class 1 scores z: LOGISTIC gives [sigmoid(-z), sigmoid(z)].
      coefficients: attr.floats([...w.map((v) => -v), ...w]),
      intercepts: attr.floats([-model.intercept, model.intercept]),
      classlabels_ints: attr.ints([0, 1]),
      post_transform: attr.string('LOGISTIC'),
    },
  }), 'L2 logistic regression, standardization folded into the weights');
}

function treeEnsembleAttributes(trees: Tree[], leafWeights: (leaf: number) => [number, number]) {
  const a = {
    treeIds: [] as number[], nodeIds: [] as number[], featureIds: [] as number[], modes: [] as string[], values: [] as number[],
    trueIds: [] as number[], falseIds: [] as number[], cTree: [] as number[], cNode: [] as number[], cClass: [] as number[], cWeight: [] as number[],
  };
  trees.forEach((tree, t) => {
    for (let i = 0; i < tree.feature.length; i++) {
      const leaf = tree.feature[i] < 0;
      a.treeIds.push(t);
      a.nodeIds.push(i);
      a.featureIds.push(leaf ? 0 : tree.feature[i]);
      a.modes.push(leaf ? 'LEAF' : 'BRANCH_LEQ');
      a.values.push(leaf ? 0 : tree.threshold[i]);
      a.trueIds.push(leaf ? 0 : tree.left[i]);
      a.falseIds.push(leaf ? 0 : tree.right[i]);
      if (leaf) {
        const [w0, w1] = leafWeights(tree.value[i]);
        a.cTree.push(t, t);
        a.cNode.push(i, i);
        a.cClass.push(0, 1);
        a.cWeight.push(w0, w1);
      }
    }
  });
  return {
    nodes_treeids: attr.ints(a.treeIds),
    nodes_nodeids: attr.ints(a.nodeIds),
    nodes_featureids: attr.ints(a.featureIds),
    nodes_modes: attr.strings(a.modes),
    nodes_values: attr.floats(a.values),
    nodes_truenodeids: attr.ints(a.trueIds),
    nodes_falsenodeids: attr.ints(a.falseIds),
    class_treeids: attr.ints(a.cTree),
    class_nodeids: attr.ints(a.cNode),
    class_ids: attr.ints(a.cClass),
    class_weights: attr.floats(a.cWeight),
    classlabels_int64s: attr.ints([0, 1]),
  };
}

export function forestToOnnx(model: RandomForestModel, info: MemberExportInfo): Uint8Array {
  const T = model.trees.length;
  // Averaging = summing leaves pre-divided by the tree count; NONE leaves [P(0), P(1)] as is.
  const attrs = { ...treeEnsembleAttributes(model.trees, (p) => [(1 - p) / T, p / T]), post_transform: attr.string('NONE') };
  return classifierModel(info, model.width, node('TreeEnsembleClassifier', [MEMBER_INPUT], ['label', MEMBER_OUTPUT], { domain: ONNX_ML_DOMAIN, attributes: attrs }),
    `random forest, ${T} trees, max depth ${model.params.maxDepth}`);
}

export function boostingToOnnx(model: GradientBoostingModel, info: MemberExportInfo): Uint8Array {
  // The base score goes into the first tree's leaves rather than `base_values`: with two
  // classes and base_values set, ONNX Runtime rewrites the class scores from class 0's sum
  // (its binary-classifier convention), which is not sigmoid(base + sum) for our weights.
  const [first, ...rest] = model.trees;
  const shifted = { ...first, value: first.value.map((v, i) => (first.feature[i] < 0 ? Math.fround(v + model.base) : v)) };
  const attrs = {
    ...treeEnsembleAttributes([shifted, ...rest], (v) => [-v, v]),
    post_transform: attr.string('LOGISTIC'),
  };
  return classifierModel(info, model.width, node('TreeEnsembleClassifier', [MEMBER_INPUT], ['label', MEMBER_OUTPUT], { domain: ONNX_ML_DOMAIN, attributes: attrs }),
    `gradient-boosted trees (logistic loss), ${model.trees.length} rounds, depth ${model.params.maxDepth}`);
}
