// The worker bundles this file and everything it imports into a deterministic V8 isolate:
// only workflow code here (no Node built-ins, no I/O, no Date.now/Math.random).
export { systemCheckWorkflow } from './system-check';
export { symbolTraderWorkflow } from './symbol-trader';
export { portfolioWorkflow } from './portfolio';
export { retrainWorkflow } from './retrain';
export { hyperoptWorkflow } from './hyperopt';
