// Node entry: the whole library plus the Dawn-backed device factory.
export * from '../index.js';
export { createNodeDevice } from './gpu.js';
export * as ioNode from '../io/node-files.js';
export * as dataNode from './dataset.js';
export * as hfNode from '../io/node-hf.js';
export * as trainNode from '../train/checkpoint-node.js';
export * as inferNode from './model.js';
