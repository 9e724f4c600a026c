// Our weights and training checkpoints as the reference open_clip/HLIP training checkpoint
// (`torch.save({"epoch", "name", "state_dict", "optimizer"})`, hlip-spec §8), so a run can continue
// with torchrun and the reference code. Browser-safe: builds the object tree that src/io/pt-write.ts
// pickles; tensor bytes are read from the safetensors source piece by piece while the file is written.
import { FormatError } from '../errors.js';
import { PyDict, type PyValue } from '../io/pickle.js';
import { PyFloat, SaveTensor, pyDict, pyTuple } from '../io/pt-write.js';
import type { SafetensorsEntry, SafetensorsFile } from '../io/safetensors.js';
import { readRange } from '../io/source.js';
import { CHECKPOINT_FORMAT } from './checkpoint.js';

/** The reference saves from its DistributedDataParallel wrapper: every state_dict key starts with this. */
export const DDP_PREFIX = 'module.';

/** Buffers that HF transformers ≥ 4.31 no longer saves; the reference model refuses them when loading strictly. */
const NON_PERSISTENT = /(^|\.)embeddings\.(position_ids|token_type_ids)$/;

/** Tensor bytes are read in pieces of this size (a 94 MB embedding table is never held whole). */
const PIECE_BYTES = 16 * 2 ** 20;

/**
 * Names in the order PyTorch's `state_dict()` / `named_parameters()` list them: modules pre-order,
 * a module's own tensors before its children's. Our modules register children and tensors in the
 * reference order except that own tensors may come after children (open_clip's TextTransformer
 * `positional_embedding`, frozen position tables) and that our HF text encoder registers `proj`
 * before `transformer`; both are fixed here. The optimizer's parameter numbering follows this order,
 * so it decides which moments belong to which parameter when the reference loads them.
 */
export function referenceOrder(names: readonly string[]): string[] {
  interface Node { own: string[]; kids: Map<string, Node> }
  const root: Node = { own: [], kids: new Map() };
  for (const n of names) {
    const parts = n.split('.');
    let node = root;
    for (const p of parts.slice(0, -1)) {
      let k = node.kids.get(p);
      if (!k) node.kids.set(p, (k = { own: [], kids: new Map() }));
      node = k;
    }
    node.own.push(n);
  }
  const out: string[] = [];
  const walk = (node: Node) => {
    out.push(...node.own);
    let kids = [...node.kids.keys()];
    // open_clip's HFTextEncoder registers `transformer`, then `pooler` (no tensors), then `proj`.
    if (kids.includes('transformer') && kids.includes('proj')) kids = [...kids.filter((k) => k !== 'proj' && k !== 'transformer'), 'transformer', 'proj'];
    for (const k of kids) walk(node.kids.get(k) as Node);
  };
  walk(root);
  return out;
}

export interface ReferenceExportOptions {
  /** `epoch` to write (the reference resumes at this epoch). Default: the checkpoint's completed epochs, or metadata `epoch`, or 0. */
  epoch?: number;
  /** Run name to write. Default: metadata `name`, else `fallbackName`. */
  name?: string;
  fallbackName?: string;
  /** Include the AdamW state of a training checkpoint (default true). */
  optimizer?: boolean;
  /** Read tensor bytes in pieces of this many bytes (default 16 MiB). */
  pieceBytes?: number;
}

export interface ReferenceExport {
  /** The object to save (`writePt` / `planPt`). */
  readonly root: PyDict;
  readonly kind: 'training-checkpoint' | 'state-dict';
  readonly epoch: number;
  readonly name: string;
  readonly stateDictKeys: number;
  /** Parameters with AdamW state in `optimizer.state` (absent: no optimizer written). */
  readonly optimizerStates?: number;
  /** Input tensors not written, and why. */
  readonly skipped: readonly string[];
  /** Things the user should know (mid-epoch checkpoint…). */
  readonly notes: readonly string[];
}

/** A tensor of the file, read in pieces when written. */
function fileTensor(file: SafetensorsFile, e: SafetensorsEntry, shape: readonly number[], pieceBytes: number): SaveTensor {
  return new SaveTensor(e.dtype, shape, async function* () {
    for (let o = 0; o < e.byteLength; o += pieceBytes) {
      yield await readRange(file.source, e.byteOffset + o, Math.min(pieceBytes, e.byteLength - o), `tensor '${e.name}'`);
    }
  });
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

interface CheckpointState {
  epoch: number;
  loader: unknown;
  model: string[];
  optimizer: { params: string[]; steps: (number | null)[]; paramGroups: { lr: number; betas: [number, number]; eps: number; weightDecay: number; params: number[] }[] };
}

/** The parts of our training checkpoint's state JSON the export needs, checked. */
function checkpointState(file: SafetensorsFile): CheckpointState {
  const src = file.source.name;
  const bad = (what: string): never => {
    throw new FormatError(src, `training checkpoint state: ${what}`);
  };
  let s: unknown;
  try {
    s = JSON.parse(file.metadata?.['state'] ?? '');
  } catch (e) {
    throw new FormatError(src, `training checkpoint state JSON is unreadable: ${(e as Error).message}`, e);
  }
  if (!isObj(s)) return bad('not an object');
  if (s['version'] !== 1) bad(`version ${JSON.stringify(s['version'])} is not supported`);
  if (!isCount(s['epoch'])) bad('epoch must be a non-negative integer');
  if (!Array.isArray(s['model']) || !s['model'].every((n) => typeof n === 'string')) bad('model must list tensor names');
  const o = s['optimizer'];
  if (!isObj(o) || !Array.isArray(o['params']) || !o['params'].every((n) => typeof n === 'string')) return bad('optimizer.params must list parameter names');
  const params = o['params'] as string[];
  if (!Array.isArray(o['steps']) || o['steps'].length !== params.length || !o['steps'].every((x) => x === null || isCount(x))) bad('optimizer.steps must hold one step count (or null) per parameter');
  const groups = o['paramGroups'];
  if (!Array.isArray(groups)) return bad('optimizer.paramGroups must be a list');
  const seen = new Set<number>();
  for (const g of groups) {
    const ok = isObj(g) && typeof g['lr'] === 'number' && typeof g['eps'] === 'number' && typeof g['weightDecay'] === 'number' && Array.isArray(g['betas']) && g['betas'].length === 2 && g['betas'].every((b) => typeof b === 'number') && Array.isArray(g['params']) && g['params'].every(isCount);
    if (!ok) bad('optimizer.paramGroups entries need lr, betas [b1, b2], eps, weightDecay and params');
    for (const i of (g as { params: number[] }).params) {
      if (i >= params.length || seen.has(i)) bad(`optimizer.paramGroups names parameter #${i} ${i >= params.length ? 'which does not exist' : 'twice'}`);
      seen.add(i);
    }
  }
  if (seen.size !== params.length) bad(`optimizer.paramGroups cover ${seen.size} of ${params.length} parameters`);
  return { epoch: s['epoch'] as number, loader: s['loader'], model: s['model'] as string[], optimizer: { params, steps: o['steps'] as (number | null)[], paramGroups: groups as CheckpointState['optimizer']['paramGroups'] } };
}

/**
 * The reference checkpoint for a safetensors file: our training checkpoint (model + AdamW state),
 * our `model.safetensors`, or any state dict in reference names (with or without `module.`).
 */
export function referenceCheckpoint(file: SafetensorsFile, opts: ReferenceExportOptions = {}): ReferenceExport {
  const src = file.source.name;
  const piece = opts.pieceBytes ?? PIECE_BYTES;
  const md = file.metadata ?? {};
  const skipped: string[] = [];
  const notes: string[] = [];
  const training = md['format'] === CHECKPOINT_FORMAT;
  const st = training ? checkpointState(file) : null;

  // Model tensors by reference name (no prefix) → file entry.
  const model = new Map<string, SafetensorsEntry>();
  if (st) {
    for (const n of st.model) {
      const e = file.tensors.get(`model.${n}`);
      if (!e) throw new FormatError(src, `training checkpoint is missing tensor 'model.${n}'`);
      model.set(n, e);
    }
  } else {
    const names = file.names();
    const prefixed = names.some((n) => n.startsWith(DDP_PREFIX));
    for (const n of names) {
      if (prefixed && !n.startsWith(DDP_PREFIX)) {
        skipped.push(`${n} (not under '${DDP_PREFIX}')`);
        continue;
      }
      const k = prefixed ? n.slice(DDP_PREFIX.length) : n;
      if (NON_PERSISTENT.test(k)) {
        skipped.push(`${n} (non-persistent buffer in the reference's transformers version)`);
        continue;
      }
      if (model.has(k)) throw new FormatError(src, `'${n}' and another tensor both map to '${k}'`);
      model.set(k, file.entry(n));
    }
  }
  if (!model.size) throw new FormatError(src, 'no model tensors to export');

  const order = referenceOrder([...model.keys()]);
  const stateDict = new PyDict();
  stateDict.ordered = true;
  for (const k of order) {
    const e = model.get(k) as SafetensorsEntry;
    stateDict.set(DDP_PREFIX + k, fileTensor(file, e, e.shape, piece));
  }

  let epoch = opts.epoch;
  if (epoch === undefined) {
    if (st) epoch = st.epoch;
    else if (md['epoch'] !== undefined && /^\d+$/.test(md['epoch'])) epoch = Number(md['epoch']);
    else epoch = 0;
  }
  if (!isCount(epoch)) throw new FormatError(src, `epoch must be a non-negative integer, got ${String(epoch)}`);
  if (st && opts.epoch === undefined && isObj(st.loader) && isCount(st.loader['position']) && st.loader['position'] > 0) {
    notes.push(`the checkpoint was saved after batch ${String(st.loader['position'])} of epoch ${st.epoch}; the reference resumes at the start of epoch ${epoch} (it saves only at epoch ends)`);
  }
  const name = opts.name ?? md['name'] ?? opts.fallbackName ?? 'hlip-webgpu';

  const root = pyDict([['epoch', epoch], ['name', name], ['state_dict', stateDict]]);
  let optimizerStates: number | undefined;
  if (st && (opts.optimizer ?? true)) {
    const { optimizer, count } = referenceOptimizer(file, st, order, model, piece);
    root.set('optimizer', optimizer);
    optimizerStates = count;
  } else if (st) {
    notes.push('optimizer state left out (--no-optimizer)');
  }
  return {
    root, kind: st ? 'training-checkpoint' : 'state-dict', epoch, name, stateDictKeys: stateDict.size, skipped, notes,
    ...(optimizerStates !== undefined ? { optimizerStates } : {}),
  };
}

/**
 * `torch.optim.AdamW.state_dict()` as the reference writes it: `state` {index: {step (0-dim float32),
 * exp_avg, exp_avg_sq (shaped like the parameter)}} and two `param_groups` (no decay, then decay)
 * whose indices number the trainable parameters in the reference's `named_parameters()` order.
 */
function referenceOptimizer(file: SafetensorsFile, st: CheckpointState, order: readonly string[], model: ReadonlyMap<string, SafetensorsEntry>, piece: number): { optimizer: PyDict; count: number } {
  const src = file.source.name;
  const ours = new Map(st.optimizer.params.map((n, i) => [n, i] as const));
  for (const n of st.optimizer.params) if (!model.has(n)) throw new FormatError(src, `optimizer parameter '${n}' is not a model tensor`);
  // Reference numbering: group by group, each in state_dict order.
  const refGroups = st.optimizer.paramGroups.map((g) => {
    const members = new Set(g.params.map((i) => st.optimizer.params[i] as string));
    return order.filter((n) => members.has(n));
  });
  const refNames = refGroups.flat();
  const state = new PyDict();
  let count = 0;
  refNames.forEach((n, ref) => {
    const i = ours.get(n) as number;
    const step = st.optimizer.steps[i];
    if (step === null || step === undefined) return;
    const shape = (model.get(n) as SafetensorsEntry).shape;
    const moment = (field: 'exp_avg' | 'exp_avg_sq') => {
      const e = file.tensors.get(`optimizer.${i}.${field}`);
      if (!e) throw new FormatError(src, `training checkpoint is missing tensor 'optimizer.${i}.${field}' (${n})`);
      if (numel(e.shape) !== numel(shape)) throw new FormatError(src, `'optimizer.${i}.${field}' has ${numel(e.shape)} elements but parameter '${n}' has shape [${shape.join(', ')}]`);
      return fileTensor(file, e, shape, piece);
    };
    state.set(ref, pyDict([['step', new SaveTensor('F32', [], new Uint8Array(new Float32Array([step]).buffer))], ['exp_avg', moment('exp_avg')], ['exp_avg_sq', moment('exp_avg_sq')]]));
    count++;
  });
  let next = 0;
  const groups: PyValue[] = st.optimizer.paramGroups.map((g, gi) => {
    const ids = (refGroups[gi] as string[]).map(() => next++);
    // Key order and defaults as torch 1.13's AdamW.state_dict() (2.x adds keys it defaults on load).
    return pyDict([
      ['weight_decay', new PyFloat(g.weightDecay)],
      ['lr', new PyFloat(g.lr)],
      ['betas', pyTuple(new PyFloat(g.betas[0]), new PyFloat(g.betas[1]))],
      ['eps', new PyFloat(g.eps)],
      ['amsgrad', false],
      ['foreach', null],
      ['maximize', false],
      ['capturable', false],
      ['params', ids],
    ]);
  });
  return { optimizer: pyDict([['state', state], ['param_groups', groups]]), count };
}
