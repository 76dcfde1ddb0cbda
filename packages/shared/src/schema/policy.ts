export { PolicySpec } from './common.js';
