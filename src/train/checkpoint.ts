// Training checkpoints as one safetensors file (browser-safe; src/train/checkpoint-node.ts writes
// them atomically on disk): model state dict, AdamW moments, and in `__metadata__` the JSON of the
// schedule step, epoch, data-loader state, RNG state and run config.
import { FormatError } from '../errors.js';
import type { ByteInput } from '../io/source.js';
import { openSafetensors, planSafetensors, safetensorsChunks, writeSafetensors, type SafetensorsFile, type SafetensorsPlan, type TensorToWrite } from '../io/safetensors.js';
import type { HostTensor } from '../nn/module.js';
import type { AdamWStateDict } from '../optim/adamw.js';
import type { GradScalerState } from './grad-scaler.js';

/** Plain JSON (what the data loader and the run config hand over). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** The trainer's random state: every draw is Philox under `seed` at a counter derived from the step. */
export interface TrainerRngState {
  algorithm: 'philox4x32-10';
  seed: number;
}

/** Everything needed to continue a run exactly where it stopped. */
export interface TrainingCheckpoint {
  /** Model state dict (parameters and buffers) by reference name, float32. */
  model: Map<string, HostTensor>;
  /** AdamW state; parameters numbered as `optimizerParams` lists them. */
  optimizer: AdamWStateDict;
  /** Names of the parameters AdamW numbers 0, 1, … (group 0 first). */
  optimizerParams: string[];
  /** Optimizer steps taken (the schedule's next step). */
  step: number;
  epoch: number;
  /** Opaque data-loader state (whatever the loader needs to resume its order). */
  loader: JsonValue;
  rng: TrainerRngState;
  /** The run's configuration (model and hyper-parameters), opaque here. */
  config: JsonValue;
  /** GradScaler state of a precision 'amp' run (open_clip's checkpoint["scaler"]); absent/null otherwise. */
  scaler?: GradScalerState | null;
}

export const CHECKPOINT_FORMAT = 'hlip-webgpu/training-checkpoint';
export const CHECKPOINT_VERSION = 1;

const MODEL = 'model.';
const OPT = 'optimizer.';

interface StateJson {
  version: number;
  step: number;
  epoch: number;
  loader: JsonValue;
  rng: TrainerRngState;
  config: JsonValue;
  model: string[];
  optimizer: {
    params: string[];
    paramGroups: AdamWStateDict['paramGroups'];
    /** Per parameter: its AdamW step count, or null when it has no state yet. */
    steps: (number | null)[];
  };
  /** Optional (files of fp32 runs and older files have none). */
  scaler?: GradScalerState | null;
}

function tensorsOf(c: TrainingCheckpoint): [string, TensorToWrite][] {
  const out: [string, TensorToWrite][] = [];
  for (const [name, t] of c.model) out.push([MODEL + name, { dtype: 'F32', shape: t.shape, data: t.data }]);
  c.optimizer.state.forEach((s, i) => {
    if (!s) return;
    const shape = [s.expAvg.length];
    out.push([`${OPT}${i}.exp_avg`, { dtype: 'F32', shape, data: s.expAvg }]);
    out.push([`${OPT}${i}.exp_avg_sq`, { dtype: 'F32', shape, data: s.expAvgSq }]);
  });
  return out;
}

function metadataOf(c: TrainingCheckpoint): Record<string, string> {
  if (c.optimizerParams.length !== c.optimizer.state.length) {
    throw new FormatError('<checkpoint>', `optimizer state has ${c.optimizer.state.length} entries but ${c.optimizerParams.length} parameter names`);
  }
  const state: StateJson = {
    version: CHECKPOINT_VERSION,
    step: c.step,
    epoch: c.epoch,
    loader: c.loader,
    rng: c.rng,
    config: c.config,
    model: [...c.model.keys()],
    optimizer: { params: c.optimizerParams, paramGroups: c.optimizer.paramGroups, steps: c.optimizer.state.map((s) => (s ? s.step : null)) },
    ...(c.scaler ? { scaler: c.scaler } : {}),
  };
  return { format: CHECKPOINT_FORMAT, state: JSON.stringify(state) };
}

/** The file layout (header + tensor plan), for streaming writers (see safetensorsChunks). */
export function planCheckpoint(c: TrainingCheckpoint): SafetensorsPlan {
  return planSafetensors(tensorsOf(c), metadataOf(c));
}

/** The file, chunk by chunk (header, then one tensor at a time). */
export function checkpointChunks(c: TrainingCheckpoint): AsyncGenerator<Uint8Array> {
  return safetensorsChunks(planCheckpoint(c));
}

/** The whole file in memory (browser downloads, IndexedDB, tests). */
export function encodeCheckpoint(c: TrainingCheckpoint): Uint8Array {
  return writeSafetensors(tensorsOf(c), metadataOf(c));
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function parseState(file: SafetensorsFile): StateJson {
  const src = file.source.name;
  const md = file.metadata;
  if (!md || md['format'] !== CHECKPOINT_FORMAT) throw new FormatError(src, `not a training checkpoint (__metadata__.format is ${JSON.stringify(md?.['format'] ?? null)}, expected '${CHECKPOINT_FORMAT}')`);
  let s: unknown;
  try {
    s = JSON.parse(md['state'] ?? '');
  } catch (e) {
    throw new FormatError(src, `checkpoint state JSON is unreadable: ${(e as Error).message}`, e);
  }
  const bad = (what: string): never => {
    throw new FormatError(src, `checkpoint state: ${what}`);
  };
  if (!isObj(s)) return bad('not an object');
  if (s['version'] !== CHECKPOINT_VERSION) bad(`version ${JSON.stringify(s['version'])} is not supported (this build reads ${CHECKPOINT_VERSION})`);
  if (!isCount(s['step'])) bad('step must be a non-negative integer');
  if (!isCount(s['epoch'])) bad('epoch must be a non-negative integer');
  const rng = s['rng'];
  if (!isObj(rng) || rng['algorithm'] !== 'philox4x32-10' || !isCount(rng['seed'])) bad('rng must be { algorithm: "philox4x32-10", seed }');
  if (!Array.isArray(s['model']) || !s['model'].every((n) => typeof n === 'string')) bad('model must list tensor names');
  const o = s['optimizer'];
  if (!isObj(o) || !Array.isArray(o['params']) || !o['params'].every((n) => typeof n === 'string')) return bad('optimizer.params must list parameter names');
  if (!Array.isArray(o['steps']) || o['steps'].length !== o['params'].length || !o['steps'].every((x) => x === null || isCount(x))) bad('optimizer.steps must hold one step count (or null) per parameter');
  const groups = o['paramGroups'];
  if (!Array.isArray(groups)) return bad('optimizer.paramGroups must be a list');
  for (const g of groups) {
    if (!isObj(g) || typeof g['lr'] !== 'number' || typeof g['eps'] !== 'number' || typeof g['weightDecay'] !== 'number' || !Array.isArray(g['betas']) || g['betas'].length !== 2 || !Array.isArray(g['params']) || !g['params'].every(isCount)) {
      bad('optimizer.paramGroups entries need lr, betas [b1, b2], eps, weightDecay and params');
    }
  }
  const sc = s['scaler'];
  if (sc !== undefined && sc !== null) {
    const num = (k: string) => isObj(sc) && typeof sc[k] === 'number' && Number.isFinite(sc[k]);
    if (!['scale', 'growthFactor', 'backoffFactor', 'growthInterval', 'growthTracker'].every(num)) bad('scaler must be { scale, growthFactor, backoffFactor, growthInterval, growthTracker } (numbers)');
  }
  return s as unknown as StateJson;
}

/**
 * Reads and validates a checkpoint (bytes, a Blob/File or a ByteSource; `name` labels errors).
 * Every tensor is read back as float32 arrays; problems throw FormatError naming the file.
 */
export async function decodeCheckpoint(input: ByteInput | SafetensorsFile, name?: string): Promise<TrainingCheckpoint> {
  const file = 'tensors' in input && 'source' in input ? input : await openSafetensors(input, name);
  const src = file.source.name;
  const st = parseState(file);
  const model = new Map<string, HostTensor>();
  const f32 = async (n: string): Promise<Float32Array> => {
    const e = file.tensors.get(n);
    if (!e) throw new FormatError(src, `checkpoint is missing tensor '${n}'`);
    if (e.dtype !== 'F32') throw new FormatError(src, `checkpoint tensor '${n}' is ${e.dtype}, expected F32`);
    return Float32Array.from(await file.float32(n));
  };
  for (const n of st.model) {
    const e = file.tensors.get(MODEL + n);
    model.set(n, { shape: e ? [...e.shape] : [], data: await f32(MODEL + n) });
  }
  const state: AdamWStateDict['state'] = [];
  for (let i = 0; i < st.optimizer.params.length; i++) {
    const step = st.optimizer.steps[i];
    if (step === null || step === undefined) {
      state.push(null);
      continue;
    }
    const expAvg = await f32(`${OPT}${i}.exp_avg`);
    const expAvgSq = await f32(`${OPT}${i}.exp_avg_sq`);
    if (expAvg.length !== expAvgSq.length) throw new FormatError(src, `optimizer entry ${i} (${st.optimizer.params[i]}): moments of ${expAvg.length} and ${expAvgSq.length} elements`);
    state.push({ step, expAvg, expAvgSq });
  }
  const known = new Set([...st.model.map((n) => MODEL + n), ...state.flatMap((s, i) => (s ? [`${OPT}${i}.exp_avg`, `${OPT}${i}.exp_avg_sq`] : []))]);
  const extra = file.names().filter((n) => !known.has(n));
  if (extra.length) throw new FormatError(src, `checkpoint holds tensors its state does not list: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ', …' : ''}`);
  const paramGroups = st.optimizer.paramGroups.map((g) => ({ lr: g.lr, betas: [g.betas[0], g.betas[1]] as [number, number], eps: g.eps, weightDecay: g.weightDecay, params: [...g.params] }));
  return {
    model,
    optimizer: { state, paramGroups },
    optimizerParams: [...st.optimizer.params],
    step: st.step,
    epoch: st.epoch,
    loader: st.loader,
    rng: { algorithm: 'philox4x32-10', seed: st.rng.seed },
    config: st.config,
    ...(st.scaler ? { scaler: { ...st.scaler } } : {}),
  };
}
