export { FEATURE_PARAMS, FEATURE_SCHEMA, featureIndex, type FeatureSchema, type FeatureSpec } from './schema';
export { createFeatureStream, type FeatureStream } from './stream';
export { computeFeatureMatrix, featureRow, type FeatureMatrix } from './batch';
export { InvalidCandleError, candleRejection } from './validate';
