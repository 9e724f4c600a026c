// In-memory builders for io tests: pickles (the opcodes torch.save emits), zip and legacy .pt files.
import { crc32 } from '../../src/io/zip.js';

/** Values a test pickle can hold. Plain JS numbers are ints; floats are { $float }. */
export type PSpec =
  | null | boolean | number | bigint | string | Uint8Array | PSpec[]
  | { $float: number }
  | { $tuple: PSpec[] }
  | { $dict: [PSpec, PSpec][]; $ordered?: boolean; $attrs?: [string, PSpec][] }
  | { $global: string; $args?: PSpec[]; $stack?: boolean }
  | { $tensor: TensorSpec; $param?: boolean };

export interface TensorSpec {
  key: string;
  /** torch storage class name, e.g. FloatStorage. */
  storage: string;
  numel: number;
  offset?: number;
  size: number[];
  stride?: number[];
  /** legacy only: the sixth persistent-id element. */
  view?: [string, number, number] | null;
}

export const contiguousStride = (size: number[]) => {
  const s: number[] = [];
  let acc = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= size[i] as number;
  }
  return s;
};

export class PickleWriter {
  private out: number[] = [];
  private memo = 0;
  constructor(readonly protocol = 2, readonly legacyPids = false) {
    this.op(0x80, protocol);
  }
  op(...b: number[]): this {
    for (const x of b) this.out.push(x & 0xff);
    return this;
  }
  u32(n: number): this {
    return this.op(n, n >>> 8, n >>> 16, n >>> 24);
  }
  put(): this {
    const m = this.memo++;
    return m < 256 ? this.op(0x71, m) : this.op(0x72).u32(m);
  }
  str(s: string): this {
    const b = new TextEncoder().encode(s);
    if (this.protocol >= 4 && b.length < 256) this.op(0x8c, b.length);
    else this.op(0x58).u32(b.length);
    for (const x of b) this.out.push(x);
    return this;
  }
  int(n: number | bigint): this {
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 256) return this.op(0x4b, n);
    if (typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < 65536) return this.op(0x4d, n, n >>> 8);
    if (typeof n === 'number' && Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31) return this.op(0x4a).u32(n >>> 0);
    let v = BigInt(n);
    const bytes: number[] = [];
    for (;;) {
      bytes.push(Number(v & 0xffn));
      v >>= 8n;
      const last = bytes[bytes.length - 1] as number;
      if ((v === 0n && !(last & 0x80)) || (v === -1n && last & 0x80)) break;
    }
    return this.op(0x8a, bytes.length, ...bytes);
  }
  float(x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    return this.op(0x47, ...b);
  }
  global(q: string, stack = false): this {
    const i = q.lastIndexOf('.');
    const [m, n] = [q.slice(0, i), q.slice(i + 1)];
    if (stack) return this.str(m).str(n).op(0x93).put();
    const b = new TextEncoder().encode(`${m}\n${n}\n`);
    return this.op(0x63, ...b).put();
  }
  value(v: PSpec): this {
    if (v === null) return this.op(0x4e);
    if (v === true) return this.op(0x88);
    if (v === false) return this.op(0x89);
    if (typeof v === 'number' || typeof v === 'bigint') return this.int(v);
    if (typeof v === 'string') return this.str(v).put();
    if (v instanceof Uint8Array) {
      this.op(0x42).u32(v.length);
      for (const x of v) this.out.push(x);
      return this;
    }
    if (Array.isArray(v)) {
      this.op(0x5d).put();
      if (v.length) {
        this.op(0x28);
        for (const x of v) this.value(x);
        this.op(0x65);
      }
      return this;
    }
    if ('$float' in v) return this.float(v.$float);
    if ('$tuple' in v) {
      const t = v.$tuple;
      if (t.length === 0) return this.op(0x29);
      if (t.length <= 3) {
        for (const x of t) this.value(x);
        return this.op(0x84 + t.length).put();
      }
      this.op(0x28);
      for (const x of t) this.value(x);
      return this.op(0x74).put();
    }
    if ('$dict' in v) {
      if (v.$ordered) this.global('collections.OrderedDict').op(0x29, 0x52).put();
      else this.op(0x7d).put();
      if (v.$dict.length) {
        this.op(0x28);
        for (const [k, x] of v.$dict) this.value(k).value(x);
        this.op(0x75);
      }
      if (v.$attrs) this.value({ $dict: v.$attrs }).op(0x62);
      return this;
    }
    if ('$global' in v) {
      this.global(v.$global, v.$stack);
      if (v.$args) this.value({ $tuple: v.$args }).op(0x52).put();
      return this;
    }
    const t = v.$tensor;
    if (v.$param) this.global('torch._utils._rebuild_parameter');
    this.global('torch._utils._rebuild_tensor_v2');
    this.op(0x28);
    const pid: PSpec[] = ['storage', { $global: `torch.${t.storage}` }, t.key, 'cpu', t.numel];
    if (this.legacyPids) pid.push(t.view ? { $tuple: [t.view[0], t.view[1], t.view[2]] } : null);
    this.value({ $tuple: pid }).op(0x51);
    this.int(t.offset ?? 0).value({ $tuple: t.size }).value({ $tuple: t.stride ?? contiguousStride(t.size) }).op(0x89);
    this.value({ $dict: [], $ordered: true });
    this.op(0x74, 0x52).put();
    if (v.$param) this.op(0x89).value({ $dict: [], $ordered: true }).op(0x87, 0x52).put();
    return this;
  }
  stop(): Uint8Array<ArrayBuffer> {
    return Uint8Array.from([...this.out, 0x2e]);
  }
}

export function pickle(v: PSpec, protocol = 2, legacyPids = false): Uint8Array<ArrayBuffer> {
  return new PickleWriter(protocol, legacyPids).value(v).stop();
}

export interface ZipFileSpec {
  name: string;
  data: Uint8Array;
  /** Pre-deflated bytes (method 8) — data is then the uncompressed content for the CRC. */
  deflated?: Uint8Array;
}

/** A zip archive (stored entries unless `deflated` is given), optionally with ZIP64 records. */
export function buildZip(files: ZipFileSpec[], zip64 = false): Uint8Array<ArrayBuffer> {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let off = 0;
  const enc = new TextEncoder();
  for (const f of files) {
    const name = enc.encode(f.name);
    const body = f.deflated ?? f.data;
    const crc = crc32(f.data);
    const loc = new Uint8Array(30 + name.length);
    const lv = new DataView(loc.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, zip64 ? 45 : 20, true);
    lv.setUint16(8, f.deflated ? 8 : 0, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.length, true);
    lv.setUint32(22, f.data.length, true);
    lv.setUint16(26, name.length, true);
    loc.set(name, 30);
    const extra = zip64 ? 4 + 24 : 0;
    const cen = new Uint8Array(46 + name.length + extra);
    const cv = new DataView(cen.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 45, true);
    cv.setUint16(6, zip64 ? 45 : 20, true);
    cv.setUint16(10, f.deflated ? 8 : 0, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, zip64 ? 0xffffffff : body.length, true);
    cv.setUint32(24, zip64 ? 0xffffffff : f.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, extra, true);
    cv.setUint32(42, zip64 ? 0xffffffff : off, true);
    cen.set(name, 46);
    if (zip64) {
      const x = 46 + name.length;
      cv.setUint16(x, 1, true);
      cv.setUint16(x + 2, 24, true);
      cv.setBigUint64(x + 4, BigInt(f.data.length), true);
      cv.setBigUint64(x + 12, BigInt(body.length), true);
      cv.setBigUint64(x + 20, BigInt(off), true);
    }
    parts.push(loc, body);
    central.push(cen);
    off += loc.length + body.length;
  }
  const cdOff = off;
  const cdSize = central.reduce((a, c) => a + c.length, 0);
  const tail: Uint8Array[] = [];
  if (zip64) {
    const rec = new Uint8Array(56);
    const rv = new DataView(rec.buffer);
    rv.setUint32(0, 0x06064b50, true);
    rv.setBigUint64(4, 44n, true);
    rv.setUint16(12, 45, true);
    rv.setBigUint64(24, BigInt(files.length), true);
    rv.setBigUint64(32, BigInt(files.length), true);
    rv.setBigUint64(40, BigInt(cdSize), true);
    rv.setBigUint64(48, BigInt(cdOff), true);
    const loc = new Uint8Array(20);
    const lv = new DataView(loc.buffer);
    lv.setUint32(0, 0x07064b50, true);
    lv.setBigUint64(8, BigInt(cdOff + cdSize), true);
    lv.setUint32(16, 1, true);
    tail.push(rec, loc);
  }
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, zip64 ? 0xffff : files.length, true);
  ev.setUint16(10, zip64 ? 0xffff : files.length, true);
  ev.setUint32(12, zip64 ? 0xffffffff : cdSize, true);
  ev.setUint32(16, zip64 ? 0xffffffff : cdOff, true);
  tail.push(eocd);
  return concat([...parts, ...central, ...tail]);
}

export function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export interface StorageBytes {
  key: string;
  bytes: Uint8Array;
}

export function buildZipPt(root: PSpec, storages: StorageBytes[], opts: { rootName?: string; zip64?: boolean; protocol?: number; byteorder?: string } = {}): Uint8Array<ArrayBuffer> {
  const r = opts.rootName ?? 'archive';
  const files: ZipFileSpec[] = [{ name: `${r}/data.pkl`, data: pickle(root, opts.protocol ?? 2) }];
  if (opts.byteorder) files.push({ name: `${r}/byteorder`, data: new TextEncoder().encode(opts.byteorder) });
  for (const s of storages) files.push({ name: `${r}/data/${s.key}`, data: s.bytes });
  files.push({ name: `${r}/version`, data: new TextEncoder().encode('3\n') });
  return buildZip(files, opts.zip64);
}

/** Legacy torch.save layout: magic, protocol, sys_info, object, sorted keys, then (int64 numel, bytes) per key. */
export function buildLegacyPt(root: PSpec, storages: (StorageBytes & { elemSize: number })[], objectPickle?: Uint8Array): Uint8Array<ArrayBuffer> {
  const magic = pickle(0x1950a86a20f9469cfc6cn);
  const proto = pickle(1001);
  const sys = pickle({ $dict: [['protocol_version', 1001], ['little_endian', true], ['type_sizes', { $dict: [['short', 2], ['int', 4], ['long', 4]] }]] });
  const obj = objectPickle ?? pickle(root, 2, true);
  const keys = pickle(storages.map((s) => s.key));
  const recs = storages.map((s) => {
    const h = new Uint8Array(8);
    new DataView(h.buffer).setBigUint64(0, BigInt(s.bytes.length / s.elemSize), true);
    return concat([h, s.bytes]);
  });
  return concat([magic, proto, sys, obj, keys, ...recs]);
}

/** Seeded PRNG (mulberry32) for reproducible test data and fuzzing. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
