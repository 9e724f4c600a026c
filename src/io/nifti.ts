// NIfTI-1 / NIfTI-2 reading (.nii, .nii.gz; browser-safe) and NIfTI-1 writing.
//
// Header fields are decoded by nifti-reader-js; on top of it this file validates everything a lying
// header could use against us (dims, datatype/bitpix, vox_offset, byte counts with overflow checks,
// a decompression cap derived from the dims), reads the 64-bit NIfTI-2 fields itself (the library
// combines the two 32-bit halves of big-endian int64s in the wrong order), converts every common
// datatype to float32 with scl_slope/scl_inter, and picks the affine with the usual precedence:
// sform when sform_code > 0, else qform when qform_code > 0, else pixdim (nibabel's rule; NIfTI
// itself leaves the choice to the reader).
import { NIFTI1, NIFTI2 } from 'nifti-reader-js';
import { FormatError, HlipError } from '../errors.js';
import { Inflater, isGzip, MAX_DEFLATE_RATIO } from './gunzip.js';
import { MAX_BUFFER_BYTES, noteAllocation } from './limits.js';
import { affineSpacing, axcodes, checkVolume, det3, isUsableAffine, orientVolume, type Vec3, type Volume } from './volume.js';

export interface NiftiHeader {
  version: 1 | 2;
  littleEndian: boolean;
  /** dim[0..7] as stored (dim[0] = number of dimensions). */
  dim: number[];
  datatype: number;
  bitpix: number;
  pixdim: number[];
  /** Byte offset of the voxel data (already corrected for the vox_offset = 0 convention). */
  voxOffset: number;
  sclSlope: number;
  sclInter: number;
  qformCode: number;
  sformCode: number;
  quatern: Vec3;
  qoffset: Vec3;
  /** srow_x, srow_y, srow_z (12 values). */
  srow: number[];
  xyztUnits: number;
  description: string;
}

export interface NiftiReadOptions {
  /** Name used in error messages (default: the File's name, or '<nifti>'). */
  name?: string;
  /** 'native' keeps the storage order; otherwise a target orientation code (default 'RPI'). */
  orientation?: string;
  /** Which 3-D volume of a 4-D (or higher) file to return (default 0). */
  frame?: number;
  /** NaN/±Inf voxels: 'error' (default) refuses the file, 'zero' replaces them with 0. */
  nonFinite?: 'error' | 'zero';
  /** Largest accepted voxel payload in bytes (default and maximum: 2 GiB − 1). */
  maxBytes?: number;
}

interface DType {
  name: string;
  bytes: number;
  view: (buf: ArrayBuffer, n: number) => ArrayLike<number> | BigInt64Array | BigUint64Array;
}

const DTYPES: Record<number, DType> = {
  2: { name: 'uint8', bytes: 1, view: (b, n) => new Uint8Array(b, 0, n) },
  4: { name: 'int16', bytes: 2, view: (b, n) => new Int16Array(b, 0, n) },
  8: { name: 'int32', bytes: 4, view: (b, n) => new Int32Array(b, 0, n) },
  16: { name: 'float32', bytes: 4, view: (b, n) => new Float32Array(b, 0, n) },
  64: { name: 'float64', bytes: 8, view: (b, n) => new Float64Array(b, 0, n) },
  256: { name: 'int8', bytes: 1, view: (b, n) => new Int8Array(b, 0, n) },
  512: { name: 'uint16', bytes: 2, view: (b, n) => new Uint16Array(b, 0, n) },
  768: { name: 'uint32', bytes: 4, view: (b, n) => new Uint32Array(b, 0, n) },
  1024: { name: 'int64', bytes: 8, view: (b, n) => new BigInt64Array(b, 0, n) },
  1280: { name: 'uint64', bytes: 8, view: (b, n) => new BigUint64Array(b, 0, n) },
};

const UNSUPPORTED: Record<number, string> = {
  0: 'unknown (0)', 1: 'binary (1 bit)', 32: 'complex64', 128: 'rgb24', 1536: 'float128', 1792: 'complex128', 2048: 'complex256', 2304: 'rgba32',
};

export const NIFTI_DATATYPES: Readonly<Record<string, number>> = Object.fromEntries(Object.entries(DTYPES).map(([code, d]) => [d.name, Number(code)]));

const HOST_LE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function int64At(dv: DataView, at: number, le: boolean, what: string, source: string): number {
  const v = dv.getBigInt64(at, le);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError(source, `NIfTI-2 ${what} = ${v} is out of range`);
  return Number(v);
}

function headerVersion(dv: DataView): { version: 1 | 2; le: boolean } | null {
  for (const le of [true, false]) {
    const n = dv.getInt32(0, le);
    if (n === 348) return { version: 1, le };
    if (n === 540 && dv.byteLength >= 540) return { version: 2, le };
  }
  return null;
}

/** Decode and validate a NIfTI-1/-2 header from the first bytes of an (uncompressed) file. */
export function parseNiftiHeader(bytes: Uint8Array, source = '<nifti>'): NiftiHeader {
  if (bytes.byteLength < 348) throw new FormatError(source, `${bytes.byteLength} bytes is too short for a NIfTI header (348 bytes)`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const v = headerVersion(dv);
  if (!v) {
    const n = dv.getInt32(0, true);
    if (n === 540 || dv.getInt32(0, false) === 540) throw new FormatError(source, `${bytes.byteLength} bytes is too short for a NIfTI-2 header (540 bytes)`);
    throw new FormatError(source, `not a NIfTI file: sizeof_hdr is ${n} (expected 348 for NIfTI-1 or 540 for NIfTI-2)`);
  }
  const hsize = v.version === 1 ? 348 : 540;
  const magicAt = v.version === 1 ? 344 : 4;
  const magic = String.fromCharCode(...bytes.subarray(magicAt, magicAt + 4));
  const single = v.version === 1 ? 'n+1\0' : 'n+2\0';
  const pair = v.version === 1 ? 'ni1\0' : 'ni2\0';
  if (magic === pair) throw new FormatError(source, `is the header of a .hdr/.img pair (magic '${pair.slice(0, 3)}'); only single-file .nii/.nii.gz is supported`);
  if (magic !== single) throw new FormatError(source, `bad NIfTI-${v.version} magic ${JSON.stringify(magic)} (expected '${single.slice(0, 3)}')`);

  // nifti-reader-js on a copy of just the header: it then cannot wander into extensions.
  const copy = new Uint8Array(bytes.subarray(0, hsize)).buffer; // private copy (a Buffer.slice would share a pool)
  let h: NIFTI1 | NIFTI2;
  try {
    h = v.version === 1 ? new NIFTI1() : new NIFTI2();
    h.readHeader(copy);
  } catch (e) {
    throw new FormatError(source, `unreadable NIfTI-${v.version} header: ${(e as Error)?.message ?? String(e)}`, e);
  }
  const le = v.le;
  let dim = h.dims.slice(0, 8).map(Number);
  let voxOffset = Number(h.vox_offset);
  const srow: number[] = [];
  if (v.version === 2) {
    dim = Array.from({ length: 8 }, (_, i) => int64At(dv, 16 + 8 * i, le, `dim[${i}]`, source));
    voxOffset = int64At(dv, 168, le, 'vox_offset', source);
    for (let i = 0; i < 12; i++) srow.push(dv.getFloat64(400 + 8 * i, le));
  } else {
    for (let i = 0; i < 12; i++) srow.push(dv.getFloat32(280 + 4 * i, le));
  }
  const hdr: NiftiHeader = {
    version: v.version,
    littleEndian: le,
    dim,
    datatype: h.datatypeCode,
    bitpix: h.numBitsPerVoxel,
    pixdim: h.pixDims.slice(0, 8).map(Number),
    voxOffset,
    sclSlope: h.scl_slope,
    sclInter: h.scl_inter,
    qformCode: h.qform_code,
    sformCode: h.sform_code,
    quatern: [h.quatern_b, h.quatern_c, h.quatern_d],
    qoffset: [h.qoffset_x, h.qoffset_y, h.qoffset_z],
    srow,
    xyztUnits: h.xyzt_units,
    description: h.description ?? '',
  };
  validateHeader(hdr, source);
  return hdr;
}

function validateHeader(h: NiftiHeader, source: string): void {
  const nd = h.dim[0] as number;
  if (!Number.isInteger(nd) || nd < 1 || nd > 7) throw new FormatError(source, `dim[0] = ${nd} is not a number of dimensions (1..7)`);
  for (let i = 1; i <= nd; i++) {
    const d = h.dim[i] as number;
    if (!Number.isSafeInteger(d) || d < 1) throw new FormatError(source, `dim[${i}] = ${d} is not a positive size`);
  }
  const dt = DTYPES[h.datatype];
  if (!dt) {
    const known = UNSUPPORTED[h.datatype];
    throw new FormatError(source, known ? `datatype ${known} is not supported (grayscale integer or float volumes only)` : `unknown NIfTI datatype code ${h.datatype}`);
  }
  if (h.bitpix !== dt.bytes * 8) throw new FormatError(source, `bitpix ${h.bitpix} does not match datatype ${dt.name} (${dt.bytes * 8} bits)`);
  const minOffset = h.version === 1 ? 352 : 544;
  if (!Number.isFinite(h.voxOffset) || !Number.isInteger(h.voxOffset) || h.voxOffset < 0) throw new FormatError(source, `vox_offset = ${h.voxOffset} is not a byte offset`);
  // vox_offset 0 (old writers) or inside the header: the data follow the 4 extension bytes, as nibabel assumes.
  if (h.voxOffset < minOffset) h.voxOffset = minOffset;
}

/** Voxel counts: [nx, ny, nz], frames (product of dims 4..7) and total bytes, overflow-checked. */
function layout(h: NiftiHeader, source: string, maxBytes: number): { dims: Vec3; frames: number; frameBytes: number; totalBytes: number } {
  const d = (i: number) => (i <= (h.dim[0] as number) ? (h.dim[i] as number) : 1);
  const dims: Vec3 = [d(1), d(2), d(3)];
  let frames = 1;
  for (let i = 4; i <= 7; i++) frames *= d(i);
  const bytes = (DTYPES[h.datatype] as DType).bytes;
  const voxels = dims[0] * dims[1] * dims[2];
  const frameBytes = voxels * bytes;
  const totalBytes = frameBytes * frames;
  const shape = h.dim.slice(1, (h.dim[0] as number) + 1).join('×');
  if (!Number.isSafeInteger(totalBytes) || totalBytes > maxBytes || voxels * 4 > maxBytes) {
    throw new HlipError('limit', `dims ${shape} of ${(DTYPES[h.datatype] as DType).name} describe ${totalBytes} bytes, more than the ${maxBytes}-byte limit`, { source });
  }
  if (!Number.isSafeInteger(h.voxOffset + totalBytes)) throw new FormatError(source, `vox_offset ${h.voxOffset} + data size overflows`);
  return { dims, frames, frameBytes, totalBytes };
}

function sourceName(input: Uint8Array | ArrayBuffer | Blob, name?: string): string {
  if (name) return name;
  if (typeof Blob !== 'undefined' && input instanceof Blob) return (input as Partial<File>).name || '<blob>';
  return '<nifti>';
}

async function toBytes(input: Uint8Array | ArrayBuffer | Blob, source: string): Promise<Uint8Array> {
  // A plain view: a Node Buffer's slice() would share memory (and its .buffer is a shared pool).
  if (input instanceof Uint8Array) return new Uint8Array(input.buffer, input.byteOffset, input.byteLength);
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (typeof Blob !== 'undefined' && input instanceof Blob) {
    try {
      return new Uint8Array(await input.arrayBuffer());
    } catch (e) {
      throw new HlipError('io', `cannot read: ${(e as Error).message}`, { source, cause: e });
    }
  }
  throw new HlipError('io', 'expected a Uint8Array, ArrayBuffer or Blob/File', { source });
}

/** Header plus the raw bytes of the requested frame (decompressing only as far as needed). */
async function headerAndFrame(bytes: Uint8Array, source: string, frame: number, maxBytes: number) {
  if (!isGzip(bytes)) {
    const h = parseNiftiHeader(bytes, source);
    const L = layout(h, source, maxBytes);
    checkFrame(frame, L.frames, source);
    const need = h.voxOffset + L.totalBytes;
    if (bytes.byteLength < need) {
      throw new FormatError(source, `dims ${h.dim.slice(1, h.dim[0]! + 1).join('×')} need ${L.totalBytes} data bytes at offset ${h.voxOffset}, but the file has only ${Math.max(0, bytes.byteLength - h.voxOffset)} (truncated, or dims do not match the data)`);
    }
    const start = h.voxOffset + frame * L.frameBytes;
    return { h, L, raw: bytes.subarray(start, start + L.frameBytes) };
  }
  const inf = new Inflater(bytes, 'gzip', source);
  try {
    const head = await inf.readPrefix(540);
    if (head.byteLength < 348) throw new FormatError(source, `gzip stream holds only ${head.byteLength} bytes, too short for a NIfTI header`);
    const h = parseNiftiHeader(head, source);
    const L = layout(h, source, maxBytes);
    checkFrame(frame, L.frames, source);
    const need = h.voxOffset + L.totalBytes;
    // A gzip member cannot expand more than ~1032:1: reject impossible claims before inflating anything.
    if (need > bytes.byteLength * MAX_DEFLATE_RATIO + 4096) {
      throw new FormatError(source, `header claims ${need} bytes but a ${bytes.byteLength}-byte gzip file cannot hold that much (dims do not match the data)`);
    }
    const all = await inf.readPrefix(need);
    if (all.byteLength < need) {
      throw new FormatError(source, `dims ${h.dim.slice(1, h.dim[0]! + 1).join('×')} need ${L.totalBytes} data bytes at offset ${h.voxOffset}, but the decompressed file has only ${Math.max(0, all.byteLength - h.voxOffset)} (truncated, or dims do not match the data)`);
    }
    const start = h.voxOffset + frame * L.frameBytes;
    return { h, L, raw: all.subarray(start, start + L.frameBytes) };
  } finally {
    await inf.close();
  }
}

function checkFrame(frame: number, frames: number, source: string): void {
  if (!Number.isInteger(frame) || frame < 0 || frame >= frames) throw new FormatError(source, `frame ${frame} requested but the file holds ${frames} volume(s)`);
}

/** Raw frame bytes → float32 with scl_slope/scl_inter applied. */
function decodeVoxels(h: NiftiHeader, raw: Uint8Array, voxels: number): Float32Array {
  const dt = DTYPES[h.datatype] as DType;
  noteAllocation(raw.byteLength, 'nifti frame copy');
  const buf = new Uint8Array(raw).buffer; // aligned private copy we may byte-swap in place
  if (dt.bytes > 1 && h.littleEndian !== HOST_LE) {
    const b = new Uint8Array(buf);
    const w = dt.bytes;
    for (let i = 0; i < b.length; i += w) {
      for (let a = i, z = i + w - 1; a < z; a++, z--) {
        const t = b[a] as number;
        b[a] = b[z] as number;
        b[z] = t;
      }
    }
  }
  noteAllocation(voxels * 4, 'nifti float32 voxels');
  const out = new Float32Array(voxels);
  const src = dt.view(buf, voxels);
  // NIfTI: scaling applies when scl_slope is finite and non-zero (nibabel/ITK treat 0 and NaN as "none").
  const scale = Number.isFinite(h.sclSlope) && h.sclSlope !== 0;
  const slope = scale ? h.sclSlope : 1;
  const inter = scale && Number.isFinite(h.sclInter) ? h.sclInter : 0;
  if (src instanceof BigInt64Array || src instanceof BigUint64Array) {
    for (let i = 0; i < voxels; i++) out[i] = Number(src[i] as bigint) * slope + inter;
  } else if (slope === 1 && inter === 0) {
    out.set(src as ArrayLike<number>);
  } else {
    const s = src as ArrayLike<number>;
    for (let i = 0; i < voxels; i++) out[i] = (s[i] as number) * slope + inter;
  }
  return out;
}

/** Quaternion + offsets + pixdim → affine (nifti1.h method 2). */
export function qformAffine(quatern: Vec3, qoffset: Vec3, pixdim: number[]): number[] {
  let [b, c, d] = quatern;
  let a = 1 - (b * b + c * c + d * d);
  if (a < 1e-7) {
    // b,c,d describe (nearly) a 180° rotation: renormalise them and take a = 0, as nifti1_io does.
    const n = 1 / Math.sqrt(b * b + c * c + d * d);
    b *= n; c *= n; d *= n;
    a = 0;
  } else {
    a = Math.sqrt(a);
  }
  const px = (v: number | undefined) => (v !== undefined && v > 0 ? v : 1);
  const dx = px(pixdim[1]), dy = px(pixdim[2]);
  const qfac = (pixdim[0] ?? 0) < 0 ? -1 : 1;
  const dz = px(pixdim[3]) * qfac;
  const R = [
    a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c),
    2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b),
    2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b,
  ];
  return [
    R[0]! * dx, R[1]! * dy, R[2]! * dz, qoffset[0],
    R[3]! * dx, R[4]! * dy, R[5]! * dz, qoffset[1],
    R[6]! * dx, R[7]! * dy, R[8]! * dz, qoffset[2],
    0, 0, 0, 1,
  ];
}

/** The affine a reader should use, and where it came from (sform > qform > pixdim). */
export function niftiAffine(h: NiftiHeader): { affine: number[]; from: 'sform' | 'qform' | 'pixdim' } {
  const candidates: { affine: number[]; from: 'sform' | 'qform' }[] = [];
  if (h.sformCode > 0) candidates.push({ affine: [...h.srow, 0, 0, 0, 1], from: 'sform' });
  if (h.qformCode > 0) candidates.push({ affine: qformAffine(h.quatern, h.qoffset, h.pixdim), from: 'qform' });
  // A form whose matrix is non-finite or singular cannot place voxels; fall through to the next one.
  for (const c of candidates) if (isUsableAffine(c.affine)) return c;
  const p = (i: number) => {
    const v = Math.abs(h.pixdim[i] ?? 0);
    return Number.isFinite(v) && v > 0 ? v : 1;
  };
  return { affine: [p(1), 0, 0, 0, 0, p(2), 0, 0, 0, 0, p(3), 0, 0, 0, 0, 1], from: 'pixdim' };
}

/** Spatial unit factor to millimetres from xyzt_units (ITK converts metres and microns; unknown = mm). */
function unitToMm(xyztUnits: number): number {
  const u = xyztUnits & 0x07;
  return u === 1 ? 1000 : u === 3 ? 0.001 : 1;
}

/**
 * Read a .nii or .nii.gz file (bytes or Blob/File) into a float32 volume, reoriented to `RPI` unless
 * `orientation` says otherwise. Every failure is a typed HlipError naming the file.
 */
export async function readNifti(input: Uint8Array | ArrayBuffer | Blob, opts: NiftiReadOptions = {}): Promise<Volume> {
  const source = sourceName(input, opts.name);
  const maxBytes = Math.min(opts.maxBytes ?? MAX_BUFFER_BYTES, MAX_BUFFER_BYTES);
  const bytes = await toBytes(input, source);
  const frame = opts.frame ?? 0;
  const { h, L, raw } = await headerAndFrame(bytes, source, frame, maxBytes);
  const voxels = L.dims[0] * L.dims[1] * L.dims[2];
  const data = decodeVoxels(h, raw, voxels);
  let bad = 0;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i] as number)) {
      bad++;
      data[i] = 0;
    }
  }
  if (bad > 0 && (opts.nonFinite ?? 'error') === 'error') {
    throw new FormatError(source, `${bad} voxel(s) are NaN or infinite (after scl_slope/scl_inter); pass nonFinite: 'zero' to read them as 0`);
  }
  const { affine: a0, from } = niftiAffine(h);
  const unit = unitToMm(h.xyztUnits);
  const affine = a0.map((v, i) => (i < 12 ? v * unit : v));
  const spacing = affineSpacing(affine);
  if (!spacing.every((s) => Number.isFinite(s) && s > 0) || !Number.isFinite(det3(affine))) throw new FormatError(source, `voxel spacing ${spacing.join(', ')} is not usable`);
  const vol: Volume = { data, dims: L.dims, spacing, affine, orientation: axcodes(affine), source, frames: L.frames, frame, affineSource: from };
  checkVolume(vol);
  return orientVolume(vol, opts.orientation);
}

// ------------------------------------------------------------------------------------------- writing

export interface NiftiWriteOptions {
  gzip?: boolean;
  /** Stored datatype (default float32). Integer types round and clamp, with no scaling. */
  datatype?: 'float32' | 'float64' | 'int16' | 'uint8' | 'int32';
  description?: string;
}

/** Rotation part of an affine → (quaternion b, c, d; qfac), orthonormalising it first. */
export function affineToQuaternion(affine: readonly number[]): { quatern: Vec3; qfac: 1 | -1 } {
  // Normalised columns; then a few polar-decomposition steps (Q ← (Q + Q⁻ᵀ)/2) for the closest rotation.
  const s = affineSpacing(affine);
  let Q = [0, 1, 2].flatMap((r) => [0, 1, 2].map((c) => (s[c]! > 0 ? (affine[r * 4 + c] as number) / s[c]! : r === c ? 1 : 0)));
  for (let it = 0; it < 20; it++) {
    const inv = inv3(Q);
    if (!inv) break;
    const next = Q.map((q, i) => 0.5 * (q + (inv[(i % 3) * 3 + Math.floor(i / 3)] as number)));
    const diff = next.reduce((m, v, i) => Math.max(m, Math.abs(v - (Q[i] as number))), 0);
    Q = next;
    if (diff < 1e-12) break;
  }
  let qfac: 1 | -1 = 1;
  if (det3x3(Q) < 0) {
    qfac = -1;
    Q[2] = -Q[2]!; Q[5] = -Q[5]!; Q[8] = -Q[8]!;
  }
  const [r11, r12, r13, r21, r22, r23, r31, r32, r33] = Q as [number, number, number, number, number, number, number, number, number];
  let a = r11 + r22 + r33 + 1, b: number, c: number, d: number;
  if (a > 0.5) {
    a = 0.5 * Math.sqrt(a);
    b = (0.25 * (r32 - r23)) / a; c = (0.25 * (r13 - r31)) / a; d = (0.25 * (r21 - r12)) / a;
  } else {
    const xd = 1 + r11 - (r22 + r33), yd = 1 + r22 - (r11 + r33), zd = 1 + r33 - (r11 + r22);
    if (xd > 1) {
      b = 0.5 * Math.sqrt(xd); c = (0.25 * (r12 + r21)) / b; d = (0.25 * (r13 + r31)) / b; a = (0.25 * (r32 - r23)) / b;
    } else if (yd > 1) {
      c = 0.5 * Math.sqrt(yd); b = (0.25 * (r12 + r21)) / c; d = (0.25 * (r23 + r32)) / c; a = (0.25 * (r13 - r31)) / c;
    } else {
      d = 0.5 * Math.sqrt(zd); b = (0.25 * (r13 + r31)) / d; c = (0.25 * (r23 + r32)) / d; a = (0.25 * (r21 - r12)) / d;
    }
    if (a < 0) { b = -b; c = -c; d = -d; }
  }
  return { quatern: [b, c, d], qfac };
}

function det3x3(m: number[]): number {
  return m[0]! * (m[4]! * m[8]! - m[5]! * m[7]!) - m[1]! * (m[3]! * m[8]! - m[5]! * m[6]!) + m[2]! * (m[3]! * m[7]! - m[4]! * m[6]!);
}

function inv3(m: number[]): number[] | null {
  const det = det3x3(m);
  if (!Number.isFinite(det) || Math.abs(det) < 1e-300) return null;
  const [a, b, c, d, e, f, g, h, i] = m as [number, number, number, number, number, number, number, number, number];
  return [e * i - f * h, c * h - b * i, b * f - c * e, f * g - d * i, a * i - c * g, c * d - a * f, d * h - e * g, b * g - a * h, a * e - b * d].map((v) => v / det);
}

const WRITE_TYPES = { float32: 16, float64: 64, int16: 4, uint8: 2, int32: 8 } as const;

/**
 * Encode a volume as a single-file NIfTI-1 (.nii, or .nii.gz with `gzip`), little-endian, with both
 * sform and qform (code 1, scanner) set from the volume's affine and pixdim from its spacing.
 */
export async function writeNifti(vol: Volume, opts: NiftiWriteOptions = {}): Promise<Uint8Array> {
  checkVolume(vol);
  if (!isUsableAffine(vol.affine)) throw new FormatError(vol.source, 'cannot write a NIfTI file: the affine is not finite and invertible');
  const dtName = opts.datatype ?? 'float32';
  const code = WRITE_TYPES[dtName];
  const dt = DTYPES[code] as DType;
  const n = vol.data.length;
  const total = 352 + n * dt.bytes;
  if (total > MAX_BUFFER_BYTES) throw new HlipError('limit', `${total} bytes exceed the ${MAX_BUFFER_BYTES}-byte buffer limit`, { source: vol.source });
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, 348, true);
  out[38] = 0x72; // 'r' (regular), as writers conventionally set
  const dim = [3, vol.dims[0], vol.dims[1], vol.dims[2], 1, 1, 1, 1];
  dim.forEach((v, i) => dv.setInt16(40 + 2 * i, v, true));
  dv.setInt16(70, code, true);
  dv.setInt16(72, dt.bytes * 8, true);
  const { quatern, qfac } = affineToQuaternion(vol.affine);
  const sp = affineSpacing(vol.affine);
  [qfac, sp[0], sp[1], sp[2], 1, 1, 1, 1].forEach((v, i) => dv.setFloat32(76 + 4 * i, v, true));
  dv.setFloat32(108, 352, true); // vox_offset
  dv.setFloat32(112, 1, true); // scl_slope
  dv.setFloat32(116, 0, true); // scl_inter
  out[123] = 2; // xyzt_units: mm
  const desc = new TextEncoder().encode((opts.description ?? 'hlip-webgpu').slice(0, 79));
  out.set(desc.subarray(0, 79), 148);
  dv.setInt16(252, 1, true); // qform_code: scanner
  dv.setInt16(254, 1, true); // sform_code: scanner
  quatern.forEach((v, i) => dv.setFloat32(256 + 4 * i, v, true));
  [vol.affine[3]!, vol.affine[7]!, vol.affine[11]!].forEach((v, i) => dv.setFloat32(268 + 4 * i, v, true));
  for (let i = 0; i < 12; i++) dv.setFloat32(280 + 4 * i, vol.affine[i] as number, true);
  out.set([0x6e, 0x2b, 0x31, 0], 344); // "n+1\0"
  const body = new DataView(out.buffer, 352);
  const src = vol.data;
  switch (dtName) {
    case 'float32': for (let i = 0; i < n; i++) body.setFloat32(4 * i, src[i] as number, true); break;
    case 'float64': for (let i = 0; i < n; i++) body.setFloat64(8 * i, src[i] as number, true); break;
    case 'int32': for (let i = 0; i < n; i++) body.setInt32(4 * i, clampRound(src[i] as number, -(2 ** 31), 2 ** 31 - 1), true); break;
    case 'int16': for (let i = 0; i < n; i++) body.setInt16(2 * i, clampRound(src[i] as number, -32768, 32767), true); break;
    case 'uint8': for (let i = 0; i < n; i++) body.setUint8(i, clampRound(src[i] as number, 0, 255)); break;
  }
  if (!opts.gzip) return out;
  return gzipBytes(out, vol.source);
}

function clampRound(v: number, lo: number, hi: number): number {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 0 : v > 0 ? hi : lo;
  return Math.min(hi, Math.max(lo, Math.round(v)));
}

async function gzipBytes(data: Uint8Array, source: string): Promise<Uint8Array> {
  if (typeof CompressionStream === 'undefined') throw new HlipError('io', 'this runtime has no CompressionStream for gzip output', { source });
  const cs = new CompressionStream('gzip');
  const writer = cs.writable.getWriter();
  const done = writer.write(data as Uint8Array<ArrayBuffer>).then(() => writer.close());
  done.catch(() => undefined);
  const buf = await new Response(cs.readable).arrayBuffer();
  await done;
  return new Uint8Array(buf);
}
