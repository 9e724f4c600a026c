// NumPy .npy / .npz volumes (browser-safe), as Rad-ChestCT publishes its CT volumes: `np.load(f)["ct"]`,
// a [D, H, W] array of HU values (the reference's process.py takes it as 0.8 mm isotropic). savez and
// savez_compressed archives (stored or deflated entries) are read through src/io/zip.ts.
import { FormatError } from '../../errors.js';
import { bytesSource } from '../../io/source.js';
import { axcodes, checkVolume, orientVolume, type Vec3, type Volume } from '../../io/volume.js';
import { crc32, ZipArchive } from '../../io/zip.js';

export interface NpyArray {
  /** Values as float32, C order. */
  data: Float32Array;
  shape: number[];
  /** numpy descr, e.g. '<i2'. */
  dtype: string;
}

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

type Reader = (dv: DataView, byte: number, le: boolean) => number;
const READERS: Record<string, { bytes: number; get: Reader }> = {
  b1: { bytes: 1, get: (dv, o) => dv.getUint8(o) },
  u1: { bytes: 1, get: (dv, o) => dv.getUint8(o) },
  i1: { bytes: 1, get: (dv, o) => dv.getInt8(o) },
  u2: { bytes: 2, get: (dv, o, le) => dv.getUint16(o, le) },
  i2: { bytes: 2, get: (dv, o, le) => dv.getInt16(o, le) },
  u4: { bytes: 4, get: (dv, o, le) => dv.getUint32(o, le) },
  i4: { bytes: 4, get: (dv, o, le) => dv.getInt32(o, le) },
  u8: { bytes: 8, get: (dv, o, le) => Number(dv.getBigUint64(o, le)) },
  i8: { bytes: 8, get: (dv, o, le) => Number(dv.getBigInt64(o, le)) },
  f2: { bytes: 2, get: (dv, o, le) => half(dv.getUint16(o, le)) },
  f4: { bytes: 4, get: (dv, o, le) => dv.getFloat32(o, le) },
  f8: { bytes: 8, get: (dv, o, le) => dv.getFloat64(o, le) },
};

function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Parse one .npy file (format versions 1–3) into float32 values in C order. */
export function readNpy(bytes: Uint8Array, source = '<npy>'): NpyArray {
  if (bytes.length < 10 || !NPY_MAGIC.every((b, i) => bytes[i] === b)) throw new FormatError(source, 'not a .npy file (no \\x93NUMPY magic)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  const hlen = major === 1 ? dv.getUint16(8, true) : dv.getUint32(8, true);
  const start = (major === 1 ? 10 : 12) + hlen;
  if (start > bytes.length) throw new FormatError(source, `.npy header of ${hlen} bytes runs past the file`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(major === 1 ? 10 : 12, start));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new FormatError(source, `.npy header is not a numpy array header: ${header.trim()}`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (!shape.every((n) => Number.isSafeInteger(n) && n >= 0)) throw new FormatError(source, `.npy shape (${shapeText}) is not a list of sizes`);
  const order = descr[0]!;
  const kind = descr.slice(1);
  const rd = READERS[kind];
  if (!rd || !'<>|='.includes(order)) throw new FormatError(source, `.npy dtype '${descr}' is not supported (integers, bool, float16/32/64)`);
  const le = order !== '>';
  const n = shape.reduce((a, b) => a * b, 1);
  if (start + n * rd.bytes > bytes.length) throw new FormatError(source, `.npy data of ${n} × ${rd.bytes} bytes runs past the ${bytes.length}-byte file`);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rd.get(dv, start + i * rd.bytes, le);
  return { data: fortran === 'True' ? fortranToC(data, shape) : data, shape, dtype: descr };
}

/** Reorders a Fortran-order (first index fastest) array to C order. */
function fortranToC(src: Float32Array, shape: number[]): Float32Array {
  const nd = shape.length;
  if (nd < 2) return src;
  const out = new Float32Array(src.length);
  const fStride = shape.map((_, a) => shape.slice(0, a).reduce((x, y) => x * y, 1));
  const idx = new Array<number>(nd).fill(0);
  for (let c = 0; c < out.length; c++) {
    let f = 0;
    for (let a = 0; a < nd; a++) f += idx[a]! * fStride[a]!;
    out[c] = src[f]!;
    for (let a = nd - 1; a >= 0; a--) {
      if (++idx[a]! < shape[a]!) break;
      idx[a] = 0;
    }
  }
  return out;
}

/** The arrays of an .npz archive by name (without '.npy'); `only` limits which are decoded. */
export async function readNpz(bytes: Uint8Array, source = '<npz>', only?: readonly string[]): Promise<Map<string, NpyArray>> {
  const zip = await ZipArchive.open(bytesSource(bytes, source));
  const out = new Map<string, NpyArray>();
  for (const [name, entry] of zip.entries) {
    const key = name.replace(/\.npy$/, '');
    if (only && !only.includes(key)) continue;
    out.set(key, readNpy(await zip.read(entry), `${source}:${name}`));
  }
  return out;
}

/**
 * A [D, H, W] array from an .npz as a Volume: i = W (fastest), j = H, k = D, `spacing` (d, h, w) mm,
 * a diagonal affine (the file carries no orientation; read it with orientation 'native').
 */
export async function readNpzVolume(bytes: Uint8Array, opts: { key?: string; spacing?: Vec3; orientation?: string; name?: string } = {}): Promise<Volume> {
  const source = opts.name ?? '<npz>';
  const key = opts.key ?? 'ct';
  const arrays = await readNpz(bytes, source);
  const arr = arrays.get(key) ?? (arrays.size === 1 ? [...arrays.values()][0] : undefined);
  if (!arr) throw new FormatError(source, `no array '${key}' in this .npz (arrays: ${[...arrays.keys()].join(', ') || 'none'})`);
  let shape = arr.shape;
  if (shape.length === 4 && shape[0] === 1) shape = shape.slice(1);
  if (shape.length !== 3) throw new FormatError(source, `array '${key}' has shape (${arr.shape.join(', ')}), expected a 3-D volume [D, H, W]`);
  let bad = 0;
  for (let i = 0; i < arr.data.length; i++) if (!Number.isFinite(arr.data[i]!)) bad++;
  if (bad) throw new FormatError(source, `${bad} voxel(s) are NaN or infinite`);
  const [sd, sh, sw] = opts.spacing ?? [0.8, 0.8, 0.8];
  const affine = [sw, 0, 0, 0, 0, sh, 0, 0, 0, 0, sd, 0, 0, 0, 0, 1];
  const vol: Volume = {
    data: arr.data, dims: [shape[2]!, shape[1]!, shape[0]!], spacing: [sw, sh, sd], affine, orientation: axcodes(affine),
    source, frames: 1, frame: 0, affineSource: 'derived',
  };
  checkVolume(vol);
  return orientVolume(vol, opts.orientation ?? 'native');
}

// ------------------------------------------------------------------------------------------- writing

/** A version-1 .npy file of float32 ('<f4'), int16 ('<i2') or uint8 ('|u1') values in C order. */
export function writeNpy(data: ArrayLike<number>, shape: readonly number[], dtype: '<f4' | '<i2' | '|u1' = '<f4'): Uint8Array {
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${tuple}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const bytes = dtype === '|u1' ? 1 : dtype === '<i2' ? 2 : 4;
  const out = new Uint8Array(10 + header.length + data.length * bytes);
  out.set(NPY_MAGIC);
  out[6] = 1;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  dv.setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const o = 10 + header.length;
  for (let i = 0; i < data.length; i++) {
    if (dtype === '<f4') dv.setFloat32(o + 4 * i, data[i]!, true);
    else if (dtype === '<i2') dv.setInt16(o + 2 * i, data[i]!, true);
    else dv.setUint8(o + i, data[i]!);
  }
  return out;
}

/** An uncompressed .npz (np.savez layout: one stored zip entry '<name>.npy' per array). */
export function writeNpz(arrays: Record<string, Uint8Array>): Uint8Array {
  const enc = new TextEncoder();
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const [key, npy] of Object.entries(arrays)) {
    const name = enc.encode(`${key}.npy`);
    const crc = crc32(npy);
    const loc = new Uint8Array(30 + name.length);
    const lv = new DataView(loc.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, npy.length, true);
    lv.setUint32(22, npy.length, true);
    lv.setUint16(26, name.length, true);
    loc.set(name, 30);
    const cen = new Uint8Array(46 + name.length);
    const cv = new DataView(cen.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, npy.length, true);
    cv.setUint32(24, npy.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    cen.set(name, 46);
    locals.push(loc, npy);
    centrals.push(cen);
    offset += loc.length + npy.length;
  }
  const cdSize = centrals.reduce((a, c) => a + c.length, 0);
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, centrals.length, true);
  ev.setUint16(10, centrals.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  const parts = [...locals, ...centrals, end];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
