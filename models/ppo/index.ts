export {
  ACTIONS, DEFAULT_EXCLUDED_FEATURES, fitNormalizer, fitNormalizerRanges, marketFromCandles, OBSERVATION_NAMES, OBSERVATION_WIDTH, PpoDataError, PpoEnvConfig, TradingEnv,
  type ObservationNormalizer, type PpoAction, type PpoEnvConfigInput, type PpoMarket, type StepResult,
} from './env';
export { buildObservation, POLICY_FORMAT, PolicyInputError, policyAct, PpoPolicy } from './policy';
export {
  evaluateOn, evaluatePolicy, PpoAbortedError, PpoOptions, runBacktest, trainPpo,
  type PpoBacktest, type PpoEvaluation, type PpoIterationStats, type PpoMetrics, type PpoOptionsInput, type PpoProgress, type PpoTrainingData, type PpoTrainResult,
} from './ppo';
export {
  exportPolicy, loadPolicyManifest, manifestPathFor, POLICY_INPUT, POLICY_LOGITS, POLICY_OUTPUT, PolicyArtifactError, PolicyManifest, policyToOnnx,
  type ExportedPolicy, type LoadedPolicy, type PolicyArtifactProblem,
} from './onnx-policy';
