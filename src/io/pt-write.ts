import { DTypeError, FormatError, HlipError } from '../errors.js';
import { ST_DTYPE_BYTES, type StDType } from './dtypes.js';
import { allocBytes } from './limits.js';
import { PyDict, PyGlobal, PyOpaque, TORCH_STORAGE_TYPES, isTuple, type PyTuple, type PyValue } from './pickle.js';
import { PtTensor } from './pt.js';
import { contiguousStrides } from '../tensor/shape.js';
import { crc32 } from './zip.js';

/**
 * Writes PyTorch checkpoints as `torch.save` does (zip format, pickle protocol 2), restricted to what
 * `torch.load(weights_only=True)` accepts in torch 1.13 and 2.x: dicts, OrderedDicts (with BUILD
 * state such as a state_dict's `_metadata`), lists, tuples, str, int, float, bool, None, and tensors
 * rebuilt by `torch._utils._rebuild_tensor_v2` from storages given as persistent ids. The pickler
 * follows CPython's protocol-2 pickler opcode for opcode (memo, batching), and the archive follows
 * torch's writer (stored entries, data 64-byte aligned by an `FB` padding field, data descriptors,
 * ZIP64 end records), so a file is byte-identical to what torch 1.13 writes for the same object.
 * Tensor bytes are pulled one tensor (or one piece) at a time while the file is consumed.
 */

/** A Python float whose value is integral (plain JS numbers that are integers pickle as int). */
export class PyFloat extends PyOpaque {
  readonly pyType = 'float';
  constructor(readonly value: number) {
    super();
  }
}

/** Tensor bytes: one array, or pieces (so a large tensor need not be held whole). */
export type TensorBytes = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/** A tensor to save: contiguous row-major little-endian bytes of `dtype`, produced when written. */
export class SaveTensor extends PyOpaque {
  readonly pyType = 'torch.Tensor';
  constructor(
    readonly dtype: StDType,
    readonly shape: readonly number[],
    readonly data: TensorBytes | (() => TensorBytes | Promise<TensorBytes>),
    readonly requiresGrad = false,
  ) {
    super();
  }
}

/** A Python tuple (the unpickler's convention: a frozen array). */
export function pyTuple(...items: PyValue[]): PyTuple {
  return Object.freeze(items);
}

/** A dict (or an OrderedDict) from entries, for building trees to save. */
export function pyDict(entries: Iterable<readonly [PyValue, PyValue]>, ordered = false): PyDict {
  const d = new PyDict();
  d.ordered = ordered;
  for (const [k, v] of entries) d.set(k, v);
  return d;
}

/** Storage class `torch.save` names for each element type; the others have no torch 1.13 storage. */
const STORAGE_OF: Partial<Record<StDType, string>> = Object.fromEntries(Object.entries(TORCH_STORAGE_TYPES).map(([cls, dt]) => [dt, cls]));

export interface PtWriteOptions {
  /** Top folder inside the archive (torch uses the file name without extension). Default 'archive'. */
  archiveName?: string;
  /** Write the `byteorder` entry (torch ≥ 2.1 does; 1.13 ignores it). Default true. */
  byteorder?: boolean;
  /** Storage entry order: 'torch' sorts keys as strings ('0', '1', '10', …) as torch.save does; 'pickle' keeps first-use order. */
  storageOrder?: 'torch' | 'pickle';
  /** Offsets and sizes from this value on use ZIP64 fields. Tests lower it; default 0xffffffff. */
  zip64Threshold?: number;
}

/** One storage entry: the tensor it holds and where it goes in the archive. */
export interface PlannedStorage {
  readonly key: string;
  /** Where the tensor sits in the saved object (`state_dict.module.logit_scale`), for messages. */
  readonly path: string;
  readonly dtype: StDType;
  readonly nbytes: number;
  readonly tensor: SaveTensor | PtTensor;
}

export interface PlannedEntry {
  name: string;
  headerOffset: number;
  /** Local header (with padding) ready to write; the data starts right after it. */
  header: Uint8Array;
  size: number;
  /** Fixed content (data.pkl, version, byteorder) or a storage to pull. */
  content: Uint8Array | PlannedStorage;
}

export interface PtPlan {
  readonly archiveName: string;
  /** data.pkl */
  readonly pickle: Uint8Array;
  readonly storages: readonly PlannedStorage[];
  readonly totalBytes: number;
  readonly entries: readonly PlannedEntry[];
  readonly zip64Threshold: number;
  /** Offset of the central directory. */
  readonly centralOffset: number;
}

const WRITER = '<pt writer>';
const MAX_DEPTH = 1000;
/** CPython's batch size for APPENDS / SETITEMS. */
const BATCH = 1000;

// Pickle opcodes (protocol 2 and below).
const OP = {
  MARK: 0x28, STOP: 0x2e, BINPERSID: 0x51, REDUCE: 0x52, BUILD: 0x62, GLOBAL: 0x63, NONE: 0x4e, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d,
  BINFLOAT: 0x47, BINUNICODE: 0x58, APPEND: 0x61, APPENDS: 0x65, EMPTY_DICT: 0x7d, EMPTY_LIST: 0x5d, EMPTY_TUPLE: 0x29, SETITEM: 0x73, SETITEMS: 0x75,
  TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87, BINGET: 0x68, LONG_BINGET: 0x6a, BINPUT: 0x71, LONG_BINPUT: 0x72, PROTO: 0x80,
  NEWTRUE: 0x88, NEWFALSE: 0x89, LONG1: 0x8a,
} as const;

/** Growable byte buffer. */
class Bytes {
  private buf = new Uint8Array(1 << 16);
  private dv = new DataView(this.buf.buffer);
  n = 0;
  private room(k: number) {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }
  u8(v: number) { this.room(1); this.buf[this.n++] = v; }
  u16(v: number) { this.room(2); this.dv.setUint16(this.n, v, true); this.n += 2; }
  u32(v: number) { this.room(4); this.dv.setUint32(this.n, v >>> 0, true); this.n += 4; }
  u64(v: number) { this.room(8); this.dv.setUint32(this.n, v % 4294967296, true); this.dv.setUint32(this.n + 4, Math.floor(v / 4294967296), true); this.n += 8; }
  f64be(v: number) { this.room(8); this.dv.setFloat64(this.n, v, false); this.n += 8; }
  raw(b: Uint8Array) { this.room(b.length); this.buf.set(b, this.n); this.n += b.length; }
  take(): Uint8Array { return this.buf.slice(0, this.n); }
}

const utf8 = new TextEncoder();

/** Little-endian two's complement without redundant sign bytes, as CPython's encode_long. */
function encodeLong(x: bigint): Uint8Array {
  if (x === 0n) return new Uint8Array(0);
  const bits = (x < 0n ? -x - 1n : x).toString(2).length;
  let n = (bits >> 3) + 1;
  let v = x < 0n ? (1n << BigInt(8 * n)) + x : x;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++, v >>= 8n) out[i] = Number(v & 0xffn);
  if (x < 0n && n > 1 && out[n - 1] === 0xff && ((out[n - 2] as number) & 0x80) !== 0) n--;
  return out.subarray(0, n);
}

/** CPython's protocol-2 pickler over PyValue trees, with torch.save's tensor reduction. */
class Pickler {
  readonly out = new Bytes();
  readonly storages: { path: string; tensor: SaveTensor | PtTensor; dtype: StDType; nbytes: number }[] = [];
  private memoNext = 0;
  private readonly memoObj = new Map<object, number>();
  // Strings are memoised by value (CPython by identity: the unpickled object is the same either way).
  private readonly memoStr = new Map<string, number>();
  private readonly memoGlobal = new Map<string, number>();

  constructor(private readonly source: string) {}

  private fail(path: string, msg: string): never {
    throw new FormatError(this.source, `cannot save ${path || 'the root object'}: ${msg}`);
  }

  private put(): number {
    const i = this.memoNext++;
    if (i < 256) { this.out.u8(OP.BINPUT); this.out.u8(i); } else { this.out.u8(OP.LONG_BINPUT); this.out.u32(i); }
    return i;
  }

  private get(i: number) {
    if (i < 256) { this.out.u8(OP.BINGET); this.out.u8(i); } else { this.out.u8(OP.LONG_BINGET); this.out.u32(i); }
  }

  private global(module: string, name: string) {
    const key = `${module}\n${name}`;
    const m = this.memoGlobal.get(key);
    if (m !== undefined) return this.get(m);
    this.out.u8(OP.GLOBAL);
    this.out.raw(utf8.encode(`${key}\n`));
    this.memoGlobal.set(key, this.put());
  }

  private int(v: bigint | number) {
    const b = typeof v === 'bigint' ? v : BigInt(v);
    if (b >= 0n && b <= 0xffn) { this.out.u8(OP.BININT1); this.out.u8(Number(b)); return; }
    if (b >= 0n && b <= 0xffffn) { this.out.u8(OP.BININT2); this.out.u16(Number(b)); return; }
    if (b >= -0x80000000n && b <= 0x7fffffffn) { this.out.u8(OP.BININT); this.out.u32(Number(b) >>> 0); return; }
    const enc = encodeLong(b);
    if (enc.length >= 256) throw new FormatError(this.source, `integer of ${enc.length} bytes is too large to save`);
    this.out.u8(OP.LONG1);
    this.out.u8(enc.length);
    this.out.raw(enc);
  }

  private float(v: number) {
    this.out.u8(OP.BINFLOAT);
    this.out.f64be(v);
  }

  private str(s: string) {
    const m = this.memoStr.get(s);
    if (m !== undefined) return this.get(m);
    const b = utf8.encode(s);
    this.out.u8(OP.BINUNICODE);
    this.out.u32(b.length);
    this.out.raw(b);
    this.memoStr.set(s, this.put());
  }

  private ints(items: readonly number[]) {
    // A tuple of ints (sizes, strides): never shared, so no memo lookup.
    const n = items.length;
    if (n === 0) return this.out.u8(OP.EMPTY_TUPLE);
    if (n > 3) this.out.u8(OP.MARK);
    for (const d of items) this.int(d);
    this.out.u8(n === 1 ? OP.TUPLE1 : n === 2 ? OP.TUPLE2 : n === 3 ? OP.TUPLE3 : OP.TUPLE);
    this.put();
  }

  save(v: PyValue, path: string, depth: number): void {
    if (depth > MAX_DEPTH) this.fail(path, `nesting deeper than ${MAX_DEPTH} levels`);
    if (v === null) return this.out.u8(OP.NONE);
    if (v === true) return this.out.u8(OP.NEWTRUE);
    if (v === false) return this.out.u8(OP.NEWFALSE);
    if (typeof v === 'number') return Number.isInteger(v) && !Object.is(v, -0) ? this.int(v) : this.float(v);
    if (typeof v === 'bigint') return this.int(v);
    if (typeof v === 'string') return this.str(v);
    if (v instanceof PyFloat) return this.float(v.value);
    if (v instanceof Uint8Array) return this.fail(path, 'bytes values have no weights_only-loadable protocol-2 encoding');
    if (v instanceof PyGlobal) return this.fail(path, `a reference to ${v.qualified} is not loadable with weights_only`);
    const seen = this.memoObj.get(v);
    if (seen !== undefined) return this.get(seen);
    if (v instanceof SaveTensor || v instanceof PtTensor) return this.tensor(v, path);
    if (v instanceof PyOpaque) return this.fail(path, `${v.pyType} objects cannot be saved`);
    if (Array.isArray(v)) return isTuple(v) ? this.tuple(v, path, depth) : this.list(v as PyValue[], path, depth);
    if (v instanceof PyDict) return this.dict(v, path, depth);
    return this.fail(path, 'unsupported value');
  }

  private tuple(v: PyTuple, path: string, depth: number) {
    const n = v.length;
    if (n === 0) return this.out.u8(OP.EMPTY_TUPLE);
    if (n > 3) this.out.u8(OP.MARK);
    v.forEach((x, i) => this.save(x, `${path}[${i}]`, depth + 1));
    this.out.u8(n === 1 ? OP.TUPLE1 : n === 2 ? OP.TUPLE2 : n === 3 ? OP.TUPLE3 : OP.TUPLE);
    this.memoObj.set(v, this.put());
  }

  private list(v: PyValue[], path: string, depth: number) {
    this.out.u8(OP.EMPTY_LIST);
    this.memoObj.set(v, this.put());
    for (let i = 0; i < v.length; i += BATCH) {
      const k = Math.min(BATCH, v.length - i);
      if (k > 1) this.out.u8(OP.MARK);
      for (let j = i; j < i + k; j++) this.save(v[j] as PyValue, `${path}[${j}]`, depth + 1);
      this.out.u8(k > 1 ? OP.APPENDS : OP.APPEND);
    }
  }

  private keyPath(path: string, k: PyValue): string {
    const s = typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint' ? String(k) : '<key>';
    return path ? `${path}.${s}` : s;
  }

  private items(entries: readonly (readonly [PyValue, PyValue])[], path: string, depth: number) {
    for (let i = 0; i < entries.length; i += BATCH) {
      const k = Math.min(BATCH, entries.length - i);
      if (k > 1) this.out.u8(OP.MARK);
      for (let j = i; j < i + k; j++) {
        const [key, val] = entries[j] as readonly [PyValue, PyValue];
        if (key instanceof PyDict || (Array.isArray(key) && !isTuple(key))) this.fail(path, 'dict keys must be hashable (str, int, float, bool, None or tuples)');
        this.save(key, path, depth + 1);
        this.save(val, this.keyPath(path, key), depth + 1);
      }
      this.out.u8(k > 1 ? OP.SETITEMS : OP.SETITEM);
    }
  }

  private dict(v: PyDict, path: string, depth: number) {
    if (v.ordered) {
      // OrderedDict.__reduce__: (OrderedDict, (), state, None, items), items before BUILD.
      this.global('collections', 'OrderedDict');
      this.out.u8(OP.EMPTY_TUPLE);
      this.out.u8(OP.REDUCE);
    } else {
      if (v.attrs?.size) this.fail(path, 'attributes (BUILD state) are only loadable on an OrderedDict');
      this.out.u8(OP.EMPTY_DICT);
    }
    this.memoObj.set(v, this.put());
    this.items([...v], path, depth);
    if (v.ordered && v.attrs?.size) {
      this.out.u8(OP.EMPTY_DICT);
      this.put();
      this.items([...v.attrs], path, depth);
      this.out.u8(OP.BUILD);
    }
  }

  /** torch.Tensor.__reduce_ex__: _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, OrderedDict()). */
  private tensor(t: SaveTensor | PtTensor, path: string) {
    const dtype = t.dtype;
    const cls = STORAGE_OF[dtype];
    if (!cls) throw new DTypeError(`${this.source}: ${path}: PyTorch has no storage type for ${dtype}`);
    const shape = [...t.shape];
    let numel = 1;
    for (const d of shape) {
      if (!Number.isSafeInteger(d) || d < 0) this.fail(path, `bad dimension ${d} in shape [${shape.join(', ')}]`);
      numel *= d;
    }
    const nbytes = numel * ST_DTYPE_BYTES[dtype];
    if (!Number.isSafeInteger(nbytes)) this.fail(path, `tensor of shape [${shape.join(', ')}] is too large`);
    const key = String(this.storages.length);
    this.storages.push({ path, tensor: t, dtype, nbytes });
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.out.u8(OP.MARK);
    this.out.u8(OP.MARK);
    this.str('storage');
    this.global('torch', cls);
    this.str(key);
    this.str('cpu');
    this.int(numel);
    this.out.u8(OP.TUPLE);
    this.put();
    this.out.u8(OP.BINPERSID);
    this.int(0);
    this.ints(shape);
    this.ints(contiguousStrides(shape));
    this.out.u8(t.requiresGrad ? OP.NEWTRUE : OP.NEWFALSE);
    this.global('collections', 'OrderedDict');
    this.out.u8(OP.EMPTY_TUPLE);
    this.out.u8(OP.REDUCE);
    this.put();
    this.out.u8(OP.TUPLE);
    this.put();
    this.out.u8(OP.REDUCE);
    this.memoObj.set(t, this.put());
  }

  finish(): Uint8Array {
    this.out.u8(OP.STOP);
    return this.out.take();
  }
}

/** data.pkl of `root` (protocol 2, as torch.save writes it) and the storages it refers to, in key order. */
export function picklePt(root: PyValue, source = WRITER): { pickle: Uint8Array; storages: PlannedStorage[] } {
  const p = new Pickler(source);
  p.out.u8(OP.PROTO);
  p.out.u8(2);
  p.save(root, '', 0);
  const pickle = p.finish();
  return { pickle, storages: p.storages.map((s, i) => ({ key: String(i), ...s })) };
}

// ---------------------------------------------------------------- ZIP archive (torch's layout)

const ALIGN = 64;
const FLAGS = 0x0808; // data descriptor follows the data; names are UTF-8
const SIG_LOCAL = 0x04034b50;
const SIG_DESCRIPTOR = 0x08074b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_LOCATOR = 0x07064b50;
const SIG_EOCD = 0x06054b50;
const DESCRIPTOR_BYTES = 16;
const U32_MAX = 0xffffffff;

/** Local header whose `FB` extra field pads the data start to a multiple of 64, as torch's writer does. */
function localHeader(name: Uint8Array, offset: number): Uint8Array {
  const start = offset + 30 + name.length + 4;
  const pad = (ALIGN - (start % ALIGN)) % ALIGN;
  const b = new Bytes();
  b.u32(SIG_LOCAL);
  b.u16(0); // version needed (torch writes 0)
  b.u16(FLAGS);
  b.u16(0); // stored
  b.u16(0); // time
  b.u16(0); // date
  b.u32(0); // crc, sizes: in the data descriptor
  b.u32(0);
  b.u32(0);
  b.u16(name.length);
  b.u16(4 + pad);
  b.raw(name);
  b.u8(0x46); // 'F'
  b.u8(0x42); // 'B'
  b.u16(pad);
  b.raw(new Uint8Array(pad).fill(0x5a)); // 'Z'
  return b.take();
}

function archiveRoot(name: string | undefined): string {
  const root = name ?? 'archive';
  if (!/^[A-Za-z0-9_.-]+$/.test(root) || root === '.' || root === '..') throw new HlipError('config', `archive name ${JSON.stringify(root)} must be a plain folder name ([A-Za-z0-9_.-])`);
  return root;
}

/** Lay out the archive: every entry's offset and header; the tensor bytes are not touched. */
export function planPt(root: PyValue, opts: PtWriteOptions = {}, source = WRITER): PtPlan {
  const archiveName = archiveRoot(opts.archiveName);
  const threshold = opts.zip64Threshold ?? U32_MAX;
  const { pickle, storages } = picklePt(root, source);
  const ordered = opts.storageOrder === 'pickle' ? storages : [...storages].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const plain = (s: string) => utf8.encode(s);
  const contents: [string, Uint8Array | PlannedStorage][] = [[`${archiveName}/data.pkl`, pickle]];
  if (opts.byteorder ?? true) contents.push([`${archiveName}/byteorder`, plain('little')]);
  for (const s of ordered) contents.push([`${archiveName}/data/${s.key}`, s]);
  contents.push([`${archiveName}/version`, plain('3\n')]);
  const entries: PlannedEntry[] = [];
  let offset = 0;
  for (const [name, content] of contents) {
    const size = content instanceof Uint8Array ? content.byteLength : content.nbytes;
    if (size >= U32_MAX) throw new HlipError('limit', `${name}: ${size} bytes is too large for one archive entry`, { source });
    const header = localHeader(plain(name), offset);
    entries.push({ name, headerOffset: offset, header, size, content });
    offset += header.byteLength + size + DESCRIPTOR_BYTES;
  }
  const central = centralDirectory(entries, [], offset, threshold);
  return { archiveName, pickle, storages, entries, totalBytes: offset + central.byteLength, zip64Threshold: threshold, centralOffset: offset };
}

/** Central directory and end records (crcs in entry order; zeros while planning, sizes are what count). */
function centralDirectory(entries: readonly PlannedEntry[], crcs: readonly number[], cdOffset: number, threshold: number): Uint8Array {
  const b = new Bytes();
  entries.forEach((e, i) => {
    const name = utf8.encode(e.name);
    const big = e.headerOffset >= threshold;
    b.u32(SIG_CENTRAL);
    b.u16(0); // made by
    b.u16(0); // needed
    b.u16(FLAGS);
    b.u16(0);
    b.u16(0);
    b.u16(0);
    b.u32(crcs[i] ?? 0);
    b.u32(e.size);
    b.u32(e.size);
    b.u16(name.length);
    b.u16(big ? 12 : 0);
    b.u16(0); // comment
    b.u16(0); // disk
    b.u16(0); // internal attributes
    b.u32(0); // external attributes
    b.u32(big ? U32_MAX : e.headerOffset);
    b.raw(name);
    if (big) {
      b.u16(0x0001); // ZIP64 extended information: the local header offset
      b.u16(8);
      b.u64(e.headerOffset);
    }
  });
  const cdSize = b.n;
  const eocd64At = cdOffset + cdSize;
  b.u32(SIG_EOCD64);
  b.u64(44);
  b.u16(0x031e);
  b.u16(0x002d);
  b.u32(0);
  b.u32(0);
  b.u64(entries.length);
  b.u64(entries.length);
  b.u64(cdSize);
  b.u64(cdOffset);
  b.u32(SIG_LOCATOR);
  b.u32(0);
  b.u64(eocd64At);
  b.u32(1);
  b.u32(SIG_EOCD);
  b.u16(0);
  b.u16(0);
  b.u16(Math.min(entries.length, 0xffff));
  b.u16(Math.min(entries.length, 0xffff));
  b.u32(cdSize >= threshold ? U32_MAX : cdSize);
  b.u32(cdOffset >= threshold ? U32_MAX : cdOffset);
  b.u16(0);
  return b.take();
}

async function resolveBytes(s: PlannedStorage): Promise<TensorBytes> {
  const t = s.tensor;
  if (t instanceof PtTensor) return t.bytes();
  return typeof t.data === 'function' ? t.data() : t.data;
}

async function* pieces(data: TensorBytes): AsyncGenerator<Uint8Array> {
  if (data instanceof Uint8Array) yield data;
  else yield* data as AsyncIterable<Uint8Array>;
}

/**
 * The file, chunk by chunk: each entry's header, its data (tensor bytes pulled one tensor, or one
 * piece, at a time), its descriptor; then the central directory. Nothing is held beyond one piece.
 */
export async function* ptChunks(plan: PtPlan, source = WRITER): AsyncGenerator<Uint8Array> {
  const crcs: number[] = [];
  let offset = 0;
  for (const e of plan.entries) {
    if (offset !== e.headerOffset) throw new HlipError('io', `internal: entry ${e.name} at ${offset}, planned at ${e.headerOffset}`, { source });
    yield e.header;
    let crc = 0;
    let n = 0;
    if (e.content instanceof Uint8Array) {
      crc = crc32(e.content);
      n = e.content.byteLength;
      yield e.content;
    } else {
      const s = e.content;
      for await (const piece of pieces(await resolveBytes(s))) {
        if (!(piece instanceof Uint8Array)) throw new FormatError(source, `${s.path}: tensor data must be Uint8Array pieces`);
        if (n + piece.byteLength > s.nbytes) throw new FormatError(source, `${s.path}: ${s.dtype} tensor needs ${s.nbytes} bytes, its data gives more`);
        crc = crc32(piece, crc);
        n += piece.byteLength;
        if (piece.byteLength) yield piece;
      }
      if (n !== s.nbytes) throw new FormatError(source, `${s.path}: ${s.dtype} tensor needs ${s.nbytes} bytes, its data gives ${n}`);
    }
    const d = new Bytes();
    d.u32(SIG_DESCRIPTOR);
    d.u32(crc);
    d.u32(n);
    d.u32(n);
    yield d.take();
    crcs.push(crc);
    offset += e.header.byteLength + n + DESCRIPTOR_BYTES;
  }
  yield centralDirectory(plan.entries, crcs, offset, plan.zip64Threshold);
}

/** The whole file in memory (tests, browser downloads of small models). */
export async function writePt(root: PyValue, opts: PtWriteOptions = {}): Promise<Uint8Array> {
  const plan = planPt(root, opts);
  const out = allocBytes(plan.totalBytes, 'checkpoint file', WRITER);
  let o = 0;
  for await (const c of ptChunks(plan)) {
    out.set(c, o);
    o += c.byteLength;
  }
  if (o !== plan.totalBytes) throw new HlipError('io', `internal: wrote ${o} bytes, planned ${plan.totalBytes}`, { source: WRITER });
  return out;
}
