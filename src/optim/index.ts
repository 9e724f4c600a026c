export { AdamW, type AdamWOptions, type AdamWStateDict, type ParamGroup, type ParamGroupSpec } from './adamw.js';
