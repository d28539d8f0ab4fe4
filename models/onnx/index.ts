export * from './graph';
export { DATA_TYPE, type ElemType } from './schema';
