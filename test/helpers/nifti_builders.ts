// In-memory NIfTI-1/-2 files for tests: any datatype, either byte order, explicit header fields.

export type NiftiDType = 'uint8' | 'int8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64' | 'int64' | 'uint64';

export const DTYPE_CODE: Record<NiftiDType, number> = {
  uint8: 2, int16: 4, int32: 8, float32: 16, float64: 64, int8: 256, uint16: 512, uint32: 768, int64: 1024, uint64: 1280,
};
export const DTYPE_BYTES: Record<NiftiDType, number> = {
  uint8: 1, int8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4, float64: 8, int64: 8, uint64: 8,
};

export interface NiftiSpec {
  version?: 1 | 2;
  littleEndian?: boolean;
  dtype?: NiftiDType;
  /** Overrides the datatype code / bitpix written (for invalid-header tests). */
  datatypeCode?: number;
  bitpix?: number;
  dims: number[];
  values: ArrayLike<number>;
  pixdim?: number[];
  sclSlope?: number;
  sclInter?: number;
  qformCode?: number;
  quatern?: [number, number, number];
  qoffset?: [number, number, number];
  sformCode?: number;
  srow?: number[];
  xyztUnits?: number;
  voxOffset?: number;
  magic?: string;
  /** Extra bytes between the header and the data (e.g. an extension); voxOffset follows it. */
  extension?: Uint8Array;
}

/** Build a single-file NIfTI (.nii) byte array. */
export function buildNifti(s: NiftiSpec): Uint8Array {
  const v2 = s.version === 2;
  const le = s.littleEndian ?? true;
  const dtype = s.dtype ?? 'float32';
  const bpv = DTYPE_BYTES[dtype];
  const hsize = v2 ? 540 : 348;
  const ext = s.extension ?? new Uint8Array(4);
  const voxOffset = s.voxOffset ?? hsize + ext.length;
  const n = s.values.length;
  const out = new Uint8Array(Math.max(voxOffset, hsize + ext.length) + n * bpv);
  const dv = new DataView(out.buffer);
  out.set(ext, hsize);
  const dim = [s.dims.length, ...s.dims];
  while (dim.length < 8) dim.push(1);
  const pix = s.pixdim ?? [1, 1, 1, 1, 1, 1, 1, 1];
  const magic = s.magic ?? (v2 ? 'n+2\0\r\n\x1a\n' : 'n+1\0');
  const code = s.datatypeCode ?? DTYPE_CODE[dtype];
  const bitpix = s.bitpix ?? bpv * 8;
  const q = s.quatern ?? [0, 0, 0];
  const qo = s.qoffset ?? [0, 0, 0];
  const srow = s.srow ?? [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0];
  if (!v2) {
    dv.setInt32(0, 348, le);
    dim.forEach((d, i) => dv.setInt16(40 + 2 * i, d, le));
    dv.setInt16(70, code, le);
    dv.setInt16(72, bitpix, le);
    pix.forEach((p, i) => dv.setFloat32(76 + 4 * i, p, le));
    dv.setFloat32(108, voxOffset, le);
    dv.setFloat32(112, s.sclSlope ?? 0, le);
    dv.setFloat32(116, s.sclInter ?? 0, le);
    out[123] = s.xyztUnits ?? 2;
    dv.setInt16(252, s.qformCode ?? 0, le);
    dv.setInt16(254, s.sformCode ?? 0, le);
    q.forEach((x, i) => dv.setFloat32(256 + 4 * i, x, le));
    qo.forEach((x, i) => dv.setFloat32(268 + 4 * i, x, le));
    srow.forEach((x, i) => dv.setFloat32(280 + 4 * i, x, le));
    for (let i = 0; i < 4; i++) out[344 + i] = magic.charCodeAt(i);
  } else {
    dv.setInt32(0, 540, le);
    for (let i = 0; i < 8; i++) out[4 + i] = magic.charCodeAt(i);
    dv.setInt16(12, code, le);
    dv.setInt16(14, bitpix, le);
    dim.forEach((d, i) => dv.setBigInt64(16 + 8 * i, BigInt(d), le));
    pix.forEach((p, i) => dv.setFloat64(104 + 8 * i, p, le));
    dv.setBigInt64(168, BigInt(voxOffset), le);
    dv.setFloat64(176, s.sclSlope ?? 0, le);
    dv.setFloat64(184, s.sclInter ?? 0, le);
    dv.setInt32(344, s.qformCode ?? 0, le);
    dv.setInt32(348, s.sformCode ?? 0, le);
    q.forEach((x, i) => dv.setFloat64(352 + 8 * i, x, le));
    qo.forEach((x, i) => dv.setFloat64(376 + 8 * i, x, le));
    srow.forEach((x, i) => dv.setFloat64(400 + 8 * i, x, le));
    dv.setInt32(500, s.xyztUnits ?? 2, le);
  }
  for (let i = 0; i < n; i++) {
    const at = voxOffset + i * bpv;
    const x = s.values[i] as number;
    switch (dtype) {
      case 'uint8': dv.setUint8(at, x); break;
      case 'int8': dv.setInt8(at, x); break;
      case 'int16': dv.setInt16(at, x, le); break;
      case 'uint16': dv.setUint16(at, x, le); break;
      case 'int32': dv.setInt32(at, x, le); break;
      case 'uint32': dv.setUint32(at, x, le); break;
      case 'float32': dv.setFloat32(at, x, le); break;
      case 'float64': dv.setFloat64(at, x, le); break;
      case 'int64': dv.setBigInt64(at, BigInt(x), le); break;
      case 'uint64': dv.setBigUint64(at, BigInt(x), le); break;
    }
  }
  return out;
}

export async function gzip(data: Uint8Array): Promise<Uint8Array> {
  const cs = new CompressionStream('gzip');
  const w = cs.writable.getWriter();
  void w.write(data as Uint8Array<ArrayBuffer>).then(() => w.close());
  return new Uint8Array(await new Response(cs.readable).arrayBuffer());
}

/** Values that fit a datatype, including its extremes and negatives where allowed. */
export function sampleValues(dtype: NiftiDType, n: number): number[] {
  const range: Record<NiftiDType, [number, number]> = {
    uint8: [0, 255], int8: [-128, 127], int16: [-32768, 32767], uint16: [0, 65535], int32: [-(2 ** 31), 2 ** 31 - 1],
    uint32: [0, 2 ** 32 - 1], float32: [-3.5e4, 3.5e4], float64: [-1e6, 1e6], int64: [-(2 ** 40), 2 ** 40], uint64: [0, 2 ** 40],
  };
  const [lo, hi] = range[dtype];
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    if (i === 0) out.push(lo);
    else if (i === 1) out.push(hi);
    else {
      const t = ((i * 7919) % 1000) / 999;
      const v = lo + (hi - lo) * t;
      out.push(dtype.startsWith('float') ? Math.fround(v / 7) : Math.round(v));
    }
  }
  return out;
}
