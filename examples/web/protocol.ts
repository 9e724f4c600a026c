// Messages between the page (app.ts) and the worker (worker.ts). Every request carries an id; the worker
// answers with any number of 'progress' messages, then one 'done' or 'error'. 'cancel' names a request id.
import type { FindingPrompt } from '../../src/eval/zeroshot.js';

export type WeightDType = 'f32' | 'f16';

/** A file of the opened study; `path` is its path inside a picked folder (or its name). */
export interface StudyFile {
  path: string;
  file: File;
}

/** One volume for the viewer: an uncompressed NIfTI-1 file made by the worker. */
export interface ViewVolume {
  name: string;
  nifti: Uint8Array;
}

export interface DeviceInfo {
  adapter: string;
  f16: boolean;
  maxBufferMiB: number;
  maxStorageBindingMiB: number;
}

export interface ScanSummary {
  name: string;
  dims: [number, number, number];
  spacing: [number, number, number];
  orientation: string;
}

export interface ModelSummary {
  source: string;
  kind: 'ct' | 'mri';
  shape: [number, number, number];
  numScans: number;
  parameters: number;
  dtype: WeightDType;
  /** Default findings for this model (the synthetic benchmark's, for its kind). */
  prompts: FindingPrompt[];
}

/** What loading a model file is expected to take, from its header alone. */
export interface MemoryEstimate {
  source: string;
  parameters: number;
  weightBytes: number;
  largestTensorBytes: number;
  /** Rough working memory of one inference with a relevance map (activations and their gradients). */
  workBytes: number | null;
  dtype: WeightDType;
  /** Problems that will stop the load (a tensor larger than the adapter allows). */
  blockers: string[];
}

export interface InferResult {
  probabilities: Record<string, number>;
  /** Per model input scan, the index of the study volume it was made from (scans repeat to the model's count). */
  scans: number[];
}

export interface RelevanceResult {
  finding: string;
  /** Per model input scan: the map on its volume's own grid and affine, min-max scaled to [0, 1] over the study. */
  maps: ViewVolume[];
}

export interface TrainResult {
  steps: number;
  seconds: number;
  model: ModelSummary;
}

/**
 * Model file to load: a picked file, or a URL of the app's own assets (the demo model). A released model
 * converted to safetensors carries neither config nor tokenizer: `config` is its open_clip model config
 * (hlip/model_configs/<name>.json, or open_clip_config.json) and `tokenizer` its vocab.txt or tokenizer.json.
 */
export type ModelInput = ({ file: File } | { url: string }) & { config?: File; tokenizer?: File };

/** Request payloads and their results, by request type. */
export interface Calls {
  init: { req: Record<string, never>; res: DeviceInfo };
  openStudy: { req: { files: StudyFile[] }; res: { scans: ScanSummary[]; views: ViewVolume[] } };
  /** New scan order: order[k] = the current index of the scan to put at position k. */
  orderScans: { req: { order: number[] }; res: Record<string, never> };
  estimate: { req: { input: ModelInput; dtype: WeightDType }; res: MemoryEstimate };
  loadModel: { req: { input: ModelInput; dtype: WeightDType }; res: ModelSummary };
  infer: { req: { prompts: FindingPrompt[] }; res: InferResult };
  relevance: { req: { finding: string }; res: RelevanceResult };
  train: { req: { steps: number; studies: number; seed: number }; res: TrainResult };
  saveModel: { req: Record<string, never>; res: { bytes: Uint8Array; name: string } };
}

export type CallType = keyof Calls;

export type Request = { [K in CallType]: { id: number; type: K; req: Calls[K]['req'] } }[CallType] | { id: number; type: 'cancel'; target: number };

export interface Progress {
  stage: string;
  done: number;
  total: number;
  /** Training: loss of step `done` and the step's wall time (GPU work only, data loading excluded). */
  loss?: number;
  stepMs?: number;
}

export type Reply =
  | { id: number; type: 'progress'; progress: Progress }
  | { id: number; type: 'done'; result: unknown }
  | { id: number; type: 'error'; message: string; cancelled: boolean };
