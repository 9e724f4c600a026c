import { FormatError } from '../errors.js';
import { UnsafePickleError } from './errors.js';

/**
 * Restricted unpickler: a stack machine over the opcodes torch.save emits. It never executes
 * anything: GLOBAL/STACK_GLOBAL names are checked against an allow-list when read (anything else is
 * an UnsafePickleError), and REDUCE/NEWOBJ/BUILD on allowed names are interpreted by JS hooks.
 * Every length is checked against the bytes that remain, so a lying pickle cannot make it allocate
 * more than the input holds; there is no recursion, so deep nesting cannot overflow the JS stack.
 */

/** A Python `dict` / `OrderedDict`. `attrs` holds state set by BUILD (e.g. a state_dict's `_metadata`). */
export class PyDict extends Map<PyValue, PyValue> {
  ordered = false;
  attrs: Map<string, PyValue> | null = null;
}

/** A global (class or function) the pickle referenced; only allow-listed ones are ever created. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** Objects built by hooks (tensors, storages...). */
export abstract class PyOpaque {
  abstract readonly pyType: string;
}

/** Tuples are frozen arrays; lists are ordinary arrays. */
export type PyTuple = readonly PyValue[];
export type PyValue = null | boolean | number | bigint | string | Uint8Array | PyValue[] | PyTuple | PyDict | PyGlobal | PyOpaque;

export const isTuple = (v: PyValue): v is PyTuple => Array.isArray(v) && Object.isFrozen(v);
export const isList = (v: PyValue): v is PyValue[] => Array.isArray(v) && !Object.isFrozen(v);

/** The globals torch.save writes for tensors and state dicts; nothing else is accepted by default. */
export const TORCH_STORAGE_TYPES: Readonly<Record<string, string>> = {
  FloatStorage: 'F32', DoubleStorage: 'F64', HalfStorage: 'F16', BFloat16Storage: 'BF16', LongStorage: 'I64',
  IntStorage: 'I32', ShortStorage: 'I16', CharStorage: 'I8', ByteStorage: 'U8', BoolStorage: 'BOOL',
};

export const TORCH_ALLOWED_GLOBALS: ReadonlySet<string> = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  'torch.device',
  ...Object.keys(TORCH_STORAGE_TYPES).map((s) => `torch.${s}`),
]);

export interface UnpickleOptions {
  /** Name for error messages. */
  source?: string;
  /** Offset of the pickle's first byte in `bytes` (for consecutive pickles). */
  start?: number;
  allowedGlobals?: ReadonlySet<string>;
  persistentLoad?: (pid: PyValue, offset: number) => PyValue;
  /** Called for REDUCE / NEWOBJ / INST / OBJ on an allowed global; default handles OrderedDict only. */
  call?: (fn: PyGlobal, args: readonly PyValue[], offset: number) => PyValue;
  /** Called for BUILD; default sets attributes on dicts. */
  build?: (obj: PyValue, state: PyValue, offset: number) => void;
  /** Observer of every opcode about to be executed (tests use it to show what ran). */
  onOpcode?: (opcode: number, offset: number) => void;
}

/** The pickle ended before STOP: callers reading a stream may retry with more bytes. */
export class TruncatedPickleError extends FormatError {
  constructor(source: string, offset: number) {
    super(source, `pickle truncated at byte ${offset}`);
    this.name = 'TruncatedPickleError';
  }
}

const MAX_LONG_BYTES = 1024;
const MAX_LINE = 4096;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function defaultCall(fn: PyGlobal, args: readonly PyValue[], offset: number, source: string): PyValue {
  if (fn.qualified === 'collections.OrderedDict') {
    const d = new PyDict();
    d.ordered = true;
    if (args.length === 0) return d;
    const items = args[0];
    if (args.length === 1 && Array.isArray(items)) {
      for (const kv of items) {
        if (!Array.isArray(kv) || kv.length !== 2) throw new FormatError(source, `OrderedDict item at byte ${offset} is not a pair`);
        d.set(kv[0] as PyValue, kv[1] as PyValue);
      }
      return d;
    }
  }
  throw new FormatError(source, `no interpretation for calling ${fn.qualified} with ${args.length} argument(s) at byte ${offset}`);
}

export function defaultBuild(obj: PyValue, state: PyValue, offset: number, source: string): void {
  if (!(obj instanceof PyDict)) throw new FormatError(source, `BUILD at byte ${offset} on an unsupported object`);
  const parts = isTuple(state) && state.length === 2 ? state : [state];
  for (const part of parts) {
    if (part === null) continue;
    if (!(part instanceof PyDict)) throw new FormatError(source, `BUILD state at byte ${offset} is not a dict`);
    for (const [k, v] of part) {
      if (typeof k !== 'string') throw new FormatError(source, `BUILD attribute name at byte ${offset} is not a string`);
      (obj.attrs ??= new Map()).set(k, v);
    }
  }
}

export interface UnpickleResult {
  value: PyValue;
  /** Offset just after STOP. */
  end: number;
  protocol: number;
}

export function unpickle(bytes: Uint8Array, opts: UnpickleOptions = {}): UnpickleResult {
  const source = opts.source ?? '<pickle>';
  const allowed = opts.allowedGlobals ?? TORCH_ALLOWED_GLOBALS;
  const len = bytes.byteLength;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = opts.start ?? 0;
  let op0 = pos;
  let protocol = 0;
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();

  const fail = (msg: string): never => {
    throw new FormatError(source, `${msg} (opcode at byte ${op0})`);
  };
  const need = (n: number) => {
    if (n < 0 || !Number.isSafeInteger(n)) fail(`invalid length ${n}`);
    if (pos + n > len) throw new TruncatedPickleError(source, pos);
  };
  const u8 = () => (need(1), bytes[pos++] as number);
  const u16 = () => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), dv.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const lo = dv.getUint32(pos, true);
    const hi = dv.getUint32(pos + 4, true);
    pos += 8;
    if (hi >= 0x200000) fail('64-bit length beyond 2^53');
    return hi * 4294967296 + lo;
  };
  const take = (n: number) => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const str = (n: number) => {
    const b = take(n);
    try {
      return utf8.decode(b);
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  const line = () => {
    const limit = Math.min(len, pos + MAX_LINE);
    let i = pos;
    while (i < limit && bytes[i] !== 0x0a) i++;
    if (i >= len) throw new TruncatedPickleError(source, pos);
    if (i >= limit) fail('text line too long');
    const s = str(i - pos);
    pos = i + 1;
    return s;
  };
  const top = () => (stack.length > (marks[marks.length - 1] ?? 0) ? (stack[stack.length - 1] as PyValue) : fail('stack underflow'));
  const pop = (): PyValue => (stack.length > (marks[marks.length - 1] ?? 0) ? (stack.pop() as PyValue) : fail('stack underflow'));
  const popMark = (): PyValue[] => {
    const m = marks.pop();
    if (m === undefined) return fail('no MARK on the stack');
    return stack.splice(m);
  };
  const tuple = (items: PyValue[]): PyTuple => Object.freeze(items);
  const signedLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number);
    if ((b[b.length - 1] as number) & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const global = (module: string, name: string): PyGlobal => {
    const q = `${module}.${name}`;
    if (!allowed.has(q)) throw new UnsafePickleError(source, q, op0);
    return new PyGlobal(module, name);
  };
  const call = (fn: PyValue, args: PyValue): PyValue => {
    if (!(fn instanceof PyGlobal)) return fail('call of a non-callable');
    if (!Array.isArray(args)) return fail('call arguments are not a tuple');
    return opts.call ? opts.call(fn, args, op0) : defaultCall(fn, args, op0, source);
  };
  const mutableList = (v: PyValue): PyValue[] => (isList(v) ? v : fail('APPEND to something that is not a list'));
  const dict = (v: PyValue): PyDict => (v instanceof PyDict ? v : fail('SETITEM on something that is not a dict'));
  const setPairs = (d: PyDict, items: PyValue[]) => {
    if (items.length % 2) fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) d.set(items[i] as PyValue, items[i + 1] as PyValue);
  };
  const decimal = (s: string): number | bigint => {
    const t = s.endsWith('L') ? s.slice(0, -1) : s;
    if (!/^[+-]?\d{1,400}$/.test(t)) return fail(`bad integer literal ${JSON.stringify(s.slice(0, 40))}`);
    const b = BigInt(t);
    return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
  };

  for (;;) {
    op0 = pos;
    const op = u8();
    opts.onOpcode?.(op, op0);
    switch (op) {
      case 0x80: // PROTO
        protocol = u8();
        if (protocol > 5) fail(`unsupported pickle protocol ${protocol}`);
        break;
      case 0x95: { // FRAME: only a hint for buffered readers
        const n = u64();
        if (pos + n > len) throw new TruncatedPickleError(source, pos);
        break;
      }
      case 0x2e: { // STOP
        const value = pop();
        return { value, end: pos, protocol };
      }
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x30: if (stack.length > (marks[marks.length - 1] ?? 0)) stack.pop(); else popMark(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(tuple([])); break; // EMPTY_TUPLE
      case 0x64: { const d = new PyDict(); setPairs(d, popMark()); stack.push(d); break; } // DICT
      case 0x6c: stack.push(popMark()); break; // LIST
      case 0x74: stack.push(tuple(popMark())); break; // TUPLE
      case 0x85: { const a = pop(); stack.push(tuple([a])); break; } // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(tuple([a, b, c])); break; } // TUPLE3
      case 0x61: { const v = pop(); mutableList(top()).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); const l = mutableList(top()); for (const v of items) l.push(v); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); dict(top()).set(k, v); break; } // SETITEM
      case 0x75: { const items = popMark(); setPairs(dict(top()), items); break; } // SETITEMS
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(signedLE(take(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0 || n > MAX_LONG_BYTES) fail(`LONG4 of ${n} bytes`);
        stack.push(signedLE(take(n)));
        break;
      }
      case 0x47: need(8); stack.push(dv.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4e: stack.push(null); break; // NONE
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(u64())); break; // BINUNICODE8
      case 0x54: { const n = i32(); if (n < 0) fail('negative BINSTRING length'); stack.push(str(n)); break; } // BINSTRING
      case 0x55: stack.push(str(u8())); break; // SHORT_BINSTRING
      case 0x42: stack.push(take(u32())); break; // BINBYTES
      case 0x43: stack.push(take(u8())); break; // SHORT_BINBYTES
      case 0x8e: stack.push(take(u64())); break; // BINBYTES8
      case 0x96: stack.push(take(u64()).slice()); break; // BYTEARRAY8
      case 0x49: { // INT (text)
        const s = line();
        stack.push(s === '01' ? true : s === '00' ? false : decimal(s));
        break;
      }
      case 0x4c: stack.push(decimal(line())); break; // LONG (text)
      case 0x46: { // FLOAT (text)
        const s = line();
        const v = Number(s);
        if (s.trim() === '' || (Number.isNaN(v) && !/^[+-]?nan$/i.test(s))) fail('bad float literal');
        stack.push(v);
        break;
      }
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x70: { const k = decimal(line()); if (typeof k !== 'number' || k < 0) fail('bad PUT index'); memo.set(k as number, top()); break; } // PUT
      case 0x68: case 0x6a: case 0x67: { // BINGET, LONG_BINGET, GET
        const k = op === 0x68 ? u8() : op === 0x6a ? u32() : decimal(line());
        if (typeof k !== 'number' || !memo.has(k)) fail(`memo key ${String(k)} is not defined`);
        stack.push(memo.get(k as number) as PyValue);
        break;
      }
      case 0x63: { const m = line(); const n = line(); stack.push(global(m, n)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const n = pop();
        const m = pop();
        if (typeof m !== 'string' || typeof n !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(global(m as string, n as string));
        break;
      }
      case 0x69: { const m = line(); const n = line(); const g = global(m, n); stack.push(call(g, popMark())); break; } // INST
      case 0x6f: { const items = popMark(); if (!items.length) fail('OBJ without a class'); stack.push(call(items[0] as PyValue, items.slice(1))); break; } // OBJ
      case 0x52: { const args = pop(); const fn = pop(); stack.push(call(fn, args)); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); stack.push(call(cls, args)); break; } // NEWOBJ
      case 0x92: { // NEWOBJ_EX
        const kw = pop();
        const args = pop();
        const cls = pop();
        if (!(kw instanceof PyDict) || kw.size) fail('NEWOBJ_EX with keyword arguments');
        stack.push(call(cls, args));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (opts.build) opts.build(obj, state, op0);
        else defaultBuild(obj, state, op0, source);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) fail('persistent id without a loader');
        stack.push(opts.persistentLoad!(pid, op0));
        break;
      }
      case 0x50: { // PERSID
        const pid = line();
        if (!opts.persistentLoad) fail('persistent id without a loader');
        stack.push(opts.persistentLoad!(pid, op0));
        break;
      }
      case 0x82: case 0x83: case 0x84: { // EXT1/2/4: the copyreg extension registry names arbitrary globals
        const code = op === 0x82 ? u8() : op === 0x83 ? u16() : i32();
        throw new UnsafePickleError(source, `copyreg extension #${code}`, op0);
      }
      default:
        fail(`unsupported or invalid opcode 0x${op.toString(16).padStart(2, '0')}`);
    }
  }
}
