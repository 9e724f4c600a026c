import { FormatError, HlipError } from '../errors.js';
import { ST_DTYPE_BYTES, decodeFloat32, decodeFloat64, decodeInt32, type StDType } from './dtypes.js';
import { allocBytes } from './limits.js';
import { PyDict, PyGlobal, PyOpaque, TORCH_STORAGE_TYPES, TruncatedPickleError, defaultBuild, isTuple, unpickle, type PyValue, type UnpickleOptions } from './pickle.js';
import { readRange, toSource, type ByteInput, type ByteSource } from './source.js';
import { ZipArchive } from './zip.js';

/**
 * PyTorch checkpoints (`torch.save`): the zip format (`<root>/data.pkl`, `<root>/data/<key>`) and the
 * legacy format (five consecutive pickles, then raw storages). Pickles go through the restricted
 * unpickler; storages stay on the source until a tensor's bytes are asked for.
 */

/** A typed storage: `numel` elements of `dtype`, read from the source on demand. */
export class PtStorage extends PyOpaque {
  readonly pyType = 'torch.Storage';
  constructor(
    readonly key: string,
    readonly dtype: StDType,
    readonly numel: number,
    readonly location: string,
    private readonly load: () => Promise<Uint8Array>,
  ) {
    super();
  }

  get byteLength(): number {
    return this.numel * ST_DTYPE_BYTES[this.dtype];
  }

  /** The storage's bytes (little-endian). */
  bytes(): Promise<Uint8Array> {
    return this.load();
  }
}

/** A tensor view on a storage, as `torch._utils._rebuild_tensor_v2` describes it. */
export class PtTensor extends PyOpaque {
  readonly pyType = 'torch.Tensor';
  constructor(
    readonly storage: PtStorage,
    /** In elements. */
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly requiresGrad: boolean,
    readonly isParameter: boolean,
    private readonly maxExpandedBytes: number,
    readonly source: string,
  ) {
    super();
  }

  get dtype(): StDType {
    return this.storage.dtype;
  }

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  isContiguous(): boolean {
    let expect = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      const n = this.shape[i] as number;
      if (n !== 1 && this.stride[i] !== expect) return false;
      expect *= n;
    }
    return true;
  }

  /** Contiguous row-major little-endian bytes (strides and storage offset applied). */
  async bytes(): Promise<Uint8Array> {
    const es = ST_DTYPE_BYTES[this.dtype];
    const numel = this.numel;
    if (numel * es > Math.max(this.storage.byteLength, this.maxExpandedBytes)) {
      throw new HlipError('limit', `tensor of ${numel} elements expands a ${this.storage.numel}-element storage beyond the ${this.maxExpandedBytes}-byte limit`, { source: this.source });
    }
    const st = await this.storage.bytes();
    if (numel === 0) return allocBytes(0, 'empty tensor', this.source);
    if (this.isContiguous()) return st.subarray(this.storageOffset * es, (this.storageOffset + numel) * es);
    const out = allocBytes(numel * es, 'strided tensor', this.source);
    const nd = this.shape.length;
    const inner = nd ? (this.shape[nd - 1] as number) : 1;
    const innerStride = nd ? (this.stride[nd - 1] as number) : 1;
    const outer = numel / inner;
    const idx = new Array<number>(Math.max(nd - 1, 0)).fill(0);
    let base = this.storageOffset;
    let o = 0;
    for (let r = 0; r < outer; r++) {
      if (innerStride === 1) {
        out.set(st.subarray(base * es, (base + inner) * es), o);
        o += inner * es;
      } else {
        for (let j = 0; j < inner; j++, o += es) {
          const s = (base + j * innerStride) * es;
          for (let b = 0; b < es; b++) out[o + b] = st[s + b] as number;
        }
      }
      for (let d = nd - 2; d >= 0; d--) {
        base += this.stride[d] as number;
        if (++(idx[d] as number) < (this.shape[d] as number)) break;
        base -= (this.shape[d] as number) * (this.stride[d] as number);
        idx[d] = 0;
      }
    }
    return out;
  }

  async float32(): Promise<Float32Array> {
    return decodeFloat32(await this.bytes(), this.dtype, this.source);
  }

  async float64(): Promise<Float64Array> {
    return decodeFloat64(await this.bytes(), this.dtype, this.source);
  }

  async int32(): Promise<Int32Array> {
    return decodeInt32(await this.bytes(), this.dtype, this.source);
  }
}

export interface PtReadOptions {
  /** Name for error messages (defaults to the File name or '<buffer>'). */
  name?: string;
  /** Largest pickle accepted (bytes); default 256 MiB. */
  maxPickleBytes?: number;
  /** Largest tensor that may be expanded from a smaller storage (stride 0 views), in bytes; default 16 MiB. */
  maxExpandedBytes?: number;
  /** Test hook: observer of every pickle opcode executed. */
  onOpcode?: UnpickleOptions['onOpcode'];
}

export interface PtCheckpoint {
  readonly format: 'zip' | 'legacy';
  /** The unpickled object (dicts are PyDict, tensors PtTensor). */
  readonly root: PyValue;
  /** Every tensor reachable from the root, by dotted path (`state_dict.module.visual…`, `optimizer.state.0.exp_avg`). */
  readonly tensors: ReadonlyMap<string, PtTensor>;
  /** `state_dict` of a training checkpoint, or the root when it is itself a dict of tensors; keys as stored. */
  readonly stateDict: ReadonlyMap<string, PtTensor> | null;
  readonly epoch?: number;
  readonly runName?: string;
  /** The root as JSON (tensors summarised as `{ tensor: dtype, shape }`), e.g. for `scaler` and `param_groups`. */
  readonly meta: JsonValue;
  readonly source: ByteSource;
  close(): Promise<void>;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
const MAX_NESTING = 100;

function isInt(v: PyValue): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** Pickle hooks that rebuild tensors; storage creation is format-specific. */
function torchHooks(source: string, maxExpandedBytes: number, storageFor: (pid: PyValue, offset: number) => PtStorage): UnpickleOptions {
  const bad = (msg: string, offset: number): never => {
    throw new FormatError(source, `${msg} (pickle byte ${offset})`);
  };
  const dims = (v: PyValue, what: string, offset: number): number[] => {
    if (!Array.isArray(v)) return bad(`${what} is not a tuple`, offset);
    return v.map((d) => (isInt(d) && d >= 0 ? d : bad(`${what} holds ${String(d)}`, offset)));
  };
  const rebuild = (args: readonly PyValue[], offset: number, v2: boolean): PtTensor => {
    if (v2 ? args.length < 6 || args.length > 7 : args.length !== 4) bad(`wrong number of arguments to _rebuild_tensor${v2 ? '_v2' : ''}`, offset);
    const [storage, off, size, stride, grad] = args;
    if (!(storage instanceof PtStorage)) return bad('tensor storage is not a storage', offset);
    if (!isInt(off as PyValue) || (off as number) < 0) bad('bad storage offset', offset);
    const shape = dims(size as PyValue, 'size', offset);
    const strides = dims(stride as PyValue, 'stride', offset);
    if (shape.length !== strides.length) bad('size and stride differ in length', offset);
    let numel = 1;
    let reach = off as number;
    for (let i = 0; i < shape.length; i++) {
      numel *= shape[i] as number;
      reach += ((shape[i] as number) - 1) * (strides[i] as number);
      if (!Number.isSafeInteger(numel) || !Number.isSafeInteger(reach)) bad('tensor size overflows', offset);
    }
    if (numel > 0 && reach >= storage.numel) bad(`tensor view (offset ${String(off)}, size [${shape}], stride [${strides}]) reaches beyond its ${storage.numel}-element storage`, offset);
    return new PtTensor(storage, off as number, shape, strides, grad === true, false, maxExpandedBytes, source);
  };
  return {
    source,
    persistentLoad: storageFor,
    call(fn: PyGlobal, args: readonly PyValue[], offset: number): PyValue {
      switch (fn.qualified) {
        case 'torch._utils._rebuild_tensor_v2': return rebuild(args, offset, true);
        case 'torch._utils._rebuild_tensor': return rebuild(args, offset, false);
        case 'torch._utils._rebuild_parameter': {
          const t = args[0];
          if (!(t instanceof PtTensor) || args.length !== 3) return bad('bad arguments to _rebuild_parameter', offset);
          return new PtTensor(t.storage, t.storageOffset, t.shape, t.stride, args[1] === true, true, maxExpandedBytes, source);
        }
        case 'torch.device': {
          if (typeof args[0] !== 'string') return bad('bad arguments to torch.device', offset);
          return args.length > 1 && isInt(args[1] as PyValue) ? `${args[0]}:${String(args[1])}` : args[0];
        }
        case 'collections.OrderedDict': {
          const d = new PyDict();
          d.ordered = true;
          if (args.length === 0) return d;
          if (args.length === 1 && Array.isArray(args[0])) {
            for (const kv of args[0] as PyValue[]) {
              if (!Array.isArray(kv) || kv.length !== 2) bad('OrderedDict item is not a pair', offset);
              d.set((kv as PyValue[])[0] as PyValue, (kv as PyValue[])[1] as PyValue);
            }
            return d;
          }
          return bad('bad arguments to OrderedDict', offset);
        }
        default:
          return bad(`${fn.qualified} cannot be called`, offset);
      }
    },
    build(obj, state, offset) {
      defaultBuild(obj, state, offset, source);
    },
  };
}

function storageDType(t: PyValue, source: string): StDType {
  if (!(t instanceof PyGlobal) || t.module !== 'torch' || !Object.prototype.hasOwnProperty.call(TORCH_STORAGE_TYPES, t.name)) throw new FormatError(source, 'persistent id names no torch storage type');
  return TORCH_STORAGE_TYPES[t.name] as StDType;
}

/** Parse ('storage', type, key, location, numel[, view]) and check it. */
function parsePid(pid: PyValue, legacy: boolean, source: string) {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5 || pid.length > 6) throw new FormatError(source, 'unsupported persistent id (expected a storage tuple)');
  const [, type, key, location, numel] = pid as PyValue[];
  const view = pid.length === 6 ? (pid[5] as PyValue) : null;
  if (typeof key !== 'string' || typeof location !== 'string' || !isInt(numel as PyValue) || (numel as number) < 0) throw new FormatError(source, 'malformed storage persistent id');
  if (view !== null && !legacy) throw new FormatError(source, 'storage views are not part of the zip format');
  return { dtype: storageDType(type as PyValue, source), key, location, numel: numel as number, view };
}

/** Every tensor reachable from `root`, by dotted path; shared objects are visited once. */
export function collectTensors(root: PyValue, source = '<checkpoint>'): Map<string, PtTensor> {
  const out = new Map<string, PtTensor>();
  const seen = new Set<object>();
  const todo: [PyValue, string, number][] = [[root, '', 0]];
  const join = (p: string, k: string) => (p ? `${p}.${k}` : k);
  while (todo.length) {
    const [v, path, depth] = todo.pop() as [PyValue, string, number];
    if (v instanceof PtTensor) {
      if (!seen.has(v)) out.set(path, v);
      seen.add(v);
      continue;
    }
    if (!(v instanceof PyDict) && !Array.isArray(v)) continue;
    if (seen.has(v)) continue;
    seen.add(v);
    if (depth >= MAX_NESTING) throw new FormatError(source, `checkpoint nests deeper than ${MAX_NESTING} levels`);
    const kids: [PyValue, string, number][] = [];
    if (v instanceof PyDict) {
      for (const [k, c] of v) if (typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint') kids.push([c, join(path, String(k)), depth + 1]);
    } else {
      (v as PyValue[]).forEach((c, i) => kids.push([c, join(path, String(i)), depth + 1]));
    }
    for (let i = kids.length - 1; i >= 0; i--) todo.push(kids[i] as [PyValue, string, number]);
  }
  return out;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** Largest JSON view (counting shared containers once per use) before sharing counts as an attack. */
const MAX_JSON_NODES = 5_000_000;

/**
 * A JSON view of an unpickled value: dicts become objects (keys stringified), tuples arrays, big
 * integers decimal strings, tensors `{ tensor: dtype, shape }`, bytes `{ bytes: length }`. Shared
 * containers are converted once and reused; a pickle that shares them so much that the expanded
 * JSON would explode (each level referencing the previous twice) is a FormatError.
 */
export function pyToJson(root: PyValue, source = '<checkpoint>'): JsonValue {
  const done = new Map<object, { json: JsonValue; nodes: number }>();
  const onPath = new Set<object>();
  const conv = (v: PyValue, depth: number): { json: JsonValue; nodes: number } => {
    if (v === null || typeof v === 'boolean' || typeof v === 'string') return { json: v, nodes: 1 };
    if (typeof v === 'number') return { json: Number.isFinite(v) ? v : String(v), nodes: 1 };
    if (typeof v === 'bigint') return { json: v.toString(), nodes: 1 };
    if (v instanceof Uint8Array) return { json: { bytes: v.byteLength }, nodes: 1 };
    if (v instanceof PtTensor) return { json: { tensor: v.dtype, shape: [...v.shape] }, nodes: 1 };
    if (v instanceof PtStorage) return { json: { storage: v.dtype, numel: v.numel }, nodes: 1 };
    if (v instanceof PyGlobal) return { json: { global: v.qualified }, nodes: 1 };
    if (v instanceof PyOpaque) return { json: { object: v.pyType }, nodes: 1 };
    const known = done.get(v);
    if (known) return known;
    if (depth >= MAX_NESTING) throw new FormatError(source, `checkpoint nests deeper than ${MAX_NESTING} levels`);
    if (onPath.has(v)) return { json: '<cycle>', nodes: 1 };
    onPath.add(v);
    let nodes = 1;
    const add = (c: PyValue) => {
      const r = conv(c, depth + 1);
      nodes += r.nodes;
      if (nodes > MAX_JSON_NODES) throw new FormatError(source, `checkpoint metadata expands beyond ${MAX_JSON_NODES} values (excessive sharing)`);
      return r.json;
    };
    let json: JsonValue;
    if (v instanceof PyDict) {
      const o = Object.create(null) as { [k: string]: JsonValue };
      for (const [k, c] of v) o[typeof k === 'string' ? k : JSON.stringify(add(k))] = add(c);
      json = o;
    } else {
      json = (v as PyValue[]).map(add);
    }
    onPath.delete(v);
    const r = { json, nodes };
    done.set(v, r);
    return r;
  };
  return conv(root, 0).json;
}

function tensorDict(v: PyValue | undefined): Map<string, PtTensor> | null {
  if (!(v instanceof PyDict)) return null;
  const m = new Map<string, PtTensor>();
  for (const [k, t] of v) {
    if (typeof k !== 'string' || !(t instanceof PtTensor)) return null;
    m.set(k, t);
  }
  return m;
}

function finish(format: 'zip' | 'legacy', root: PyValue, src: ByteSource): PtCheckpoint {
  const tensors = collectTensors(root, src.name);
  let stateDict: Map<string, PtTensor> | null = null;
  let epoch: number | undefined;
  let runName: string | undefined;
  if (root instanceof PyDict) {
    stateDict = tensorDict(root.get('state_dict')) ?? (root.size ? tensorDict(root) : null);
    const e = root.get('epoch');
    const n = root.get('name');
    if (isInt(e as PyValue)) epoch = e as number;
    if (typeof n === 'string') runName = n;
  }
  return {
    format, root, tensors, stateDict, source: src, meta: pyToJson(root, src.name),
    ...(epoch !== undefined ? { epoch } : {}),
    ...(runName !== undefined ? { runName } : {}),
    close: async () => { await src.close?.(); },
  };
}

async function readZip(src: ByteSource, opts: PtReadOptions, maxPickle: number, maxExpanded: number): Promise<PtCheckpoint> {
  const name = src.name;
  const zip = await ZipArchive.open(src);
  const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkls.length !== 1) throw new FormatError(name, pkls.length ? 'several <root>/data.pkl entries' : 'zip archive has no <root>/data.pkl: not a PyTorch checkpoint');
  const root = (pkls[0] as string).slice(0, -'data.pkl'.length);
  const bo = zip.get(`${root}byteorder`);
  if (bo) {
    const order = new TextDecoder().decode(await zip.read(bo)).trim();
    if (order !== 'little') throw new FormatError(name, `unsupported byte order '${order}'`);
  }
  const pklEntry = zip.get(pkls[0] as string)!;
  if (pklEntry.size > maxPickle) throw new HlipError('limit', `data.pkl is ${pklEntry.size} bytes, above the ${maxPickle}-byte limit`, { source: name });
  const pkl = await zip.read(pklEntry);
  const storages = new Map<string, PtStorage>();
  const hooks = torchHooks(name, maxExpanded, (pid) => {
    const p = parsePid(pid, false, name);
    const have = storages.get(p.key);
    if (have) {
      if (have.dtype !== p.dtype || have.numel !== p.numel) throw new FormatError(name, `storage '${p.key}' is described twice differently`);
      return have;
    }
    const entry = zip.get(`${root}data/${p.key}`);
    if (!entry) throw new FormatError(name, `storage '${p.key}' has no entry ${root}data/${p.key}`);
    const nbytes = p.numel * ST_DTYPE_BYTES[p.dtype];
    if (entry.size < nbytes) throw new FormatError(name, `storage '${p.key}' needs ${nbytes} bytes, its entry holds ${entry.size}`);
    const st = new PtStorage(p.key, p.dtype, p.numel, p.location, async () => (await zip.read(entry)).subarray(0, nbytes));
    storages.set(p.key, st);
    return st;
  });
  const { value, end } = unpickle(pkl, { ...hooks, onOpcode: opts.onOpcode });
  if (end !== pkl.byteLength) throw new FormatError(name, `data.pkl has ${pkl.byteLength - end} bytes after STOP`);
  return finish('zip', value, src);
}

interface LegacyStorage {
  st: PtStorage;
  root: string;
}

async function readLegacy(src: ByteSource, opts: PtReadOptions, maxPickle: number, maxExpanded: number): Promise<PtCheckpoint> {
  const name = src.name;
  let chunk = Math.min(src.size, 1 << 20);
  for (;;) {
    const buf = await readRange(src, 0, chunk, 'legacy pickles');
    try {
      return await parseLegacy(src, buf, opts, maxExpanded);
    } catch (e) {
      if (!(e instanceof TruncatedPickleError) || chunk >= src.size) throw e;
      if (chunk >= maxPickle) throw new HlipError('limit', `legacy checkpoint pickles exceed the ${maxPickle}-byte limit`, { source: name });
      chunk = Math.min(src.size, maxPickle, chunk * 4);
    }
  }
}

async function parseLegacy(src: ByteSource, buf: Uint8Array, opts: PtReadOptions, maxExpanded: number): Promise<PtCheckpoint> {
  const name = src.name;
  const plain = (start: number) => unpickle(buf, { source: name, start, onOpcode: opts.onOpcode, allowedGlobals: new Set() });
  const magic = plain(0);
  if (magic.value !== LEGACY_MAGIC) throw new FormatError(name, 'not a PyTorch checkpoint (legacy magic number missing)');
  const proto = plain(magic.end);
  if (proto.value !== LEGACY_PROTOCOL) throw new FormatError(name, `unsupported legacy protocol version ${String(proto.value)}`);
  const sys = plain(proto.end);
  if (sys.value instanceof PyDict && sys.value.get('little_endian') === false) throw new FormatError(name, 'big-endian legacy checkpoints are not supported');
  const storages = new Map<string, LegacyStorage>();
  const offsets = new Map<string, number>();
  const loadRoot = (key: string, dtype: StDType, numel: number) => async () => {
    const at = offsets.get(key);
    if (at === undefined) throw new FormatError(name, `storage '${key}' is missing from the storage list`);
    return readRange(src, at, numel * ST_DTYPE_BYTES[dtype], `storage '${key}'`);
  };
  const hooks = torchHooks(name, maxExpanded, (pid) => {
    const p = parsePid(pid, true, name);
    let root = storages.get(p.key);
    if (root) {
      if (root.st.dtype !== p.dtype || root.st.numel !== p.numel) throw new FormatError(name, `storage '${p.key}' is described twice differently`);
    } else {
      root = { st: new PtStorage(p.key, p.dtype, p.numel, p.location, loadRoot(p.key, p.dtype, p.numel)), root: p.key };
      storages.set(p.key, root);
    }
    if (p.view === null) return root.st;
    // Old typed-storage views: (view_key, offset, size) into the root storage.
    const v = p.view;
    if (!isTuple(v) || v.length !== 3 || typeof v[0] !== 'string' || !isInt(v[1] as PyValue) || !isInt(v[2] as PyValue)) throw new FormatError(name, 'malformed storage view');
    const [vkey, voff, vsize] = v as [string, number, number];
    if (voff < 0 || vsize < 0 || voff + vsize > root.st.numel) throw new FormatError(name, `storage view '${vkey}' lies outside its storage`);
    const es = ST_DTYPE_BYTES[p.dtype];
    const base = root.st;
    return new PtStorage(vkey, p.dtype, vsize, p.location, async () => (await base.bytes()).subarray(voff * es, (voff + vsize) * es));
  });
  const obj = unpickle(buf, { ...hooks, start: sys.end, onOpcode: opts.onOpcode });
  const keys = plain(obj.end);
  if (!Array.isArray(keys.value)) throw new FormatError(name, 'legacy storage key list is not a list');
  let pos = keys.end;
  for (const key of keys.value) {
    if (typeof key !== 'string') throw new FormatError(name, 'legacy storage key is not a string');
    const s = storages.get(key);
    if (!s) throw new FormatError(name, `storage '${key}' is listed but never used`);
    if (offsets.has(key)) throw new FormatError(name, `storage '${key}' is listed twice`);
    const head = pos + 8 <= buf.byteLength ? buf.subarray(pos, pos + 8) : await readRange(src, pos, 8, `size of storage '${key}'`);
    const hv = new DataView(head.buffer, head.byteOffset, 8);
    const count = hv.getUint32(4, true) * 4294967296 + hv.getUint32(0, true);
    if (count !== s.st.numel) throw new FormatError(name, `storage '${key}' has ${count} elements in the file but ${s.st.numel} in its description`);
    offsets.set(key, pos + 8);
    pos += 8 + s.st.byteLength;
    if (pos > src.size) throw new FormatError(name, `storage '${key}' runs past the end of the file`);
  }
  for (const key of storages.keys()) if (!offsets.has(key)) throw new FormatError(name, `storage '${key}' is missing from the storage list`);
  return finish('legacy', obj.value, src);
}

/** Which container a file is, from its first bytes. */
export function sniffFormat(first: Uint8Array): 'pt-zip' | 'pt-legacy' | 'safetensors' {
  if (first.length >= 4 && first[0] === 0x50 && first[1] === 0x4b && (first[2] === 3 || first[2] === 5)) return 'pt-zip';
  if (first.length >= 4 && first[0] === 0x80 && (first[1] as number) <= 5 && first[2] === 0x8a && first[3] === 0x0a) return 'pt-legacy';
  return 'safetensors';
}

/** Read a PyTorch checkpoint; tensors are read lazily from the source (`await t.bytes()`). */
export async function readPt(input: ByteInput, opts: PtReadOptions = {}): Promise<PtCheckpoint> {
  const src = toSource(input, opts.name);
  const maxPickle = opts.maxPickleBytes ?? 256 * 2 ** 20;
  const maxExpanded = opts.maxExpandedBytes ?? 16 * 2 ** 20;
  const head = await readRange(src, 0, Math.min(4, src.size), 'file magic');
  const kind = sniffFormat(head);
  if (kind === 'pt-zip') return readZip(src, opts, maxPickle, maxExpanded);
  if (kind === 'pt-legacy') return readLegacy(src, opts, maxPickle, maxExpanded);
  throw new FormatError(src.name, 'not a PyTorch checkpoint (neither a zip archive nor a legacy pickle stream)');
}

/** Keys with a leading `module.` (DistributedDataParallel) removed; a clash is an error. */
export function stripModulePrefix<T>(dict: ReadonlyMap<string, T>, prefix = 'module.'): Map<string, T> {
  const out = new Map<string, T>();
  for (const [k, v] of dict) {
    const s = k.startsWith(prefix) ? k.slice(prefix.length) : k;
    if (out.has(s)) throw new FormatError('<state_dict>', `'${k}' and another key both map to '${s}' after removing '${prefix}'`);
    out.set(s, v);
  }
  return out;
}

/**
 * The model weights of a checkpoint under the reference open_clip names (`visual.trunk.…`,
 * `text.…`, `logit_scale`): its state_dict with the `module.` prefix removed.
 */
export function openClipStateDict(ckpt: PtCheckpoint): Map<string, PtTensor> {
  if (!ckpt.stateDict) throw new FormatError(ckpt.source.name, 'checkpoint holds no state_dict');
  return stripModulePrefix(ckpt.stateDict);
}
