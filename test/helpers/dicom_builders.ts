// Minimal DICOM Part 10 writer for tests: explicit VR little or big endian, or RLE Lossless.

export const TS = {
  explicitLE: '1.2.840.10008.1.2.1',
  explicitBE: '1.2.840.10008.1.2.2',
  implicitLE: '1.2.840.10008.1.2',
  rle: '1.2.840.10008.1.2.5',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpeg2000: '1.2.840.10008.1.2.4.91',
} as const;

export interface SliceSpec {
  transferSyntax?: string;
  seriesUID?: string;
  modality?: string;
  rows: number;
  columns: number;
  /** Stored sample values (before rescale), row-major. */
  values: ArrayLike<number>;
  bitsAllocated?: 8 | 16;
  bitsStored?: number;
  signed?: boolean;
  position?: [number, number, number];
  orientation?: number[];
  pixelSpacing?: [number, number];
  slope?: number;
  intercept?: number;
  instanceNumber?: number;
  samplesPerPixel?: number;
  /** Drop this many bytes from the end of the pixel data (truncated file). */
  truncatePixels?: number;
  noPixelData?: boolean;
}

class Writer {
  bytes: number[] = [];
  constructor(readonly le: boolean) {}
  u16(v: number) { this.le ? this.bytes.push(v & 255, (v >> 8) & 255) : this.bytes.push((v >> 8) & 255, v & 255); }
  u32(v: number) {
    const b = [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255];
    this.bytes.push(...(this.le ? b : b.reverse()));
  }
  raw(b: ArrayLike<number>) { for (let i = 0; i < b.length; i++) this.bytes.push(b[i]!); }
  tag(g: number, e: number) { this.u16(g); this.u16(e); }
  element(g: number, e: number, vr: string, value: Uint8Array) {
    this.tag(g, e);
    this.raw([vr.charCodeAt(0), vr.charCodeAt(1)]);
    if (['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr)) { this.u16(0); this.u32(value.length); }
    else this.u16(value.length);
    this.raw(value);
  }
  str(g: number, e: number, vr: string, s: string) {
    const pad = vr === 'UI' ? '\0' : ' ';
    const t = s.length % 2 ? s + pad : s;
    this.element(g, e, vr, new TextEncoder().encode(t));
  }
  us(g: number, e: number, v: number) {
    const w = new Writer(this.le);
    w.u16(v);
    this.element(g, e, 'US', Uint8Array.from(w.bytes));
  }
}

/** PackBits-encode one byte lane (literal runs of up to 128 bytes, replicate runs for repeats). */
function packBits(lane: number[]): number[] {
  const out: number[] = [];
  let i = 0;
  while (i < lane.length) {
    let run = 1;
    while (i + run < lane.length && run < 128 && lane[i + run] === lane[i]) run++;
    if (run >= 3) {
      out.push((1 - run) & 255, lane[i]!);
      i += run;
      continue;
    }
    const start = i;
    while (i < lane.length && i - start < 128) {
      if (i + 2 < lane.length && lane[i] === lane[i + 1] && lane[i] === lane[i + 2]) break;
      i++;
    }
    out.push(i - start - 1, ...lane.slice(start, i));
  }
  return out;
}

export function rleFrame(values: ArrayLike<number>, bytesPerSample: number): Uint8Array {
  const lanes: number[][] = [];
  for (let s = 0; s < bytesPerSample; s++) {
    const shift = 8 * (bytesPerSample - 1 - s); // segment 0 = most significant byte
    lanes.push(Array.from(values, (v) => (v >>> shift) & 255));
  }
  const segs = lanes.map(packBits).map((s) => (s.length % 2 ? [...s, 0] : s));
  const header = new Uint8Array(64);
  const dv = new DataView(header.buffer);
  dv.setUint32(0, segs.length, true);
  let off = 64;
  segs.forEach((s, i) => { dv.setUint32(4 + 4 * i, off, true); off += s.length; });
  return Uint8Array.from([...header, ...segs.flat()]);
}

export function buildDicom(s: SliceSpec): Uint8Array {
  const ts = s.transferSyntax ?? TS.explicitLE;
  const bits = s.bitsAllocated ?? 16;
  const bps = bits / 8;
  const meta = new Writer(true);
  meta.element(0x0002, 0x0001, 'OB', Uint8Array.from([0, 1]));
  meta.str(0x0002, 0x0002, 'UI', '1.2.840.10008.5.1.4.1.1.2');
  meta.str(0x0002, 0x0003, 'UI', `1.2.3.${s.instanceNumber ?? 1}`);
  meta.str(0x0002, 0x0010, 'UI', ts);
  const head = new Writer(true);
  head.raw(new Uint8Array(128));
  head.raw([0x44, 0x49, 0x43, 0x4d]);
  const gl = new Writer(true);
  gl.u32(meta.bytes.length);
  head.element(0x0002, 0x0000, 'UL', Uint8Array.from(gl.bytes));
  head.raw(meta.bytes);

  const be = ts === TS.explicitBE;
  const w = new Writer(!be);
  w.str(0x0008, 0x0060, 'CS', s.modality ?? 'CT');
  w.str(0x0020, 0x000e, 'UI', s.seriesUID ?? '1.2.3.4');
  w.str(0x0020, 0x0013, 'IS', String(s.instanceNumber ?? 1));
  if (s.position) w.str(0x0020, 0x0032, 'DS', s.position.join('\\'));
  if (s.orientation) w.str(0x0020, 0x0037, 'DS', s.orientation.join('\\'));
  w.us(0x0028, 0x0002, s.samplesPerPixel ?? 1);
  w.str(0x0028, 0x0004, 'CS', 'MONOCHROME2');
  w.us(0x0028, 0x0010, s.rows);
  w.us(0x0028, 0x0011, s.columns);
  if (s.pixelSpacing) w.str(0x0028, 0x0030, 'DS', s.pixelSpacing.join('\\'));
  w.us(0x0028, 0x0100, bits);
  w.us(0x0028, 0x0101, s.bitsStored ?? bits);
  w.us(0x0028, 0x0102, (s.bitsStored ?? bits) - 1);
  w.us(0x0028, 0x0103, s.signed ? 1 : 0);
  if (s.intercept !== undefined) w.str(0x0028, 0x1052, 'DS', String(s.intercept));
  if (s.slope !== undefined) w.str(0x0028, 0x1053, 'DS', String(s.slope));
  if (!s.noPixelData) {
    const n = s.rows * s.columns;
    const mask = bits === 16 ? 0xffff : 0xff;
    if (ts === TS.rle || ts === TS.jpegBaseline || ts === TS.jpeg2000) {
      const frame = ts === TS.rle ? rleFrame(Array.from(s.values, (v) => v & mask), bps) : Uint8Array.from([0xff, 0xd8, 0xff, 0xd9]);
      w.tag(0x7fe0, 0x0010);
      w.raw([0x4f, 0x42, 0, 0]); // OB, reserved
      w.u32(0xffffffff);
      w.tag(0xfffe, 0xe000); w.u32(0); // empty basic offset table
      w.tag(0xfffe, 0xe000); w.u32(frame.length);
      w.raw(frame);
      w.tag(0xfffe, 0xe0dd); w.u32(0);
    } else {
      const px = new Writer(!be);
      for (let i = 0; i < n; i++) (bps === 2 ? px.u16(s.values[i]! & mask) : px.raw([s.values[i]! & mask]));
      let data = Uint8Array.from(px.bytes);
      if (s.truncatePixels) {
        w.tag(0x7fe0, 0x0010);
        w.raw([0x4f, bps === 2 ? 0x57 : 0x42, 0, 0]);
        w.u32(data.length);
        data = data.subarray(0, data.length - s.truncatePixels);
        w.raw(data);
        return Uint8Array.from([...head.bytes, ...w.bytes]);
      }
      w.element(0x7fe0, 0x0010, bps === 2 ? 'OW' : 'OB', data);
    }
  }
  return Uint8Array.from([...head.bytes, ...w.bytes]);
}

/** An axial series of `n` slices, z from z0 by dz, values = f(slice, row, column). */
export function axialSeries(n: number, opts: Partial<SliceSpec> & { z0?: number; dz?: number; f?: (k: number, j: number, i: number) => number } = {}): SliceSpec[] {
  const rows = opts.rows ?? 3, columns = opts.columns ?? 4;
  const f = opts.f ?? ((k, j, i) => 100 * k + 10 * j + i - 1024);
  return Array.from({ length: n }, (_, k) => ({
    rows, columns, signed: true, slope: 1, intercept: 0,
    ...opts,
    values: Array.from({ length: rows * columns }, (_, p) => f(k, Math.floor(p / columns), p % columns)),
    position: [-10, -20, (opts.z0 ?? 0) + k * (opts.dz ?? 2.5)] as [number, number, number],
    orientation: opts.orientation ?? [1, 0, 0, 0, 1, 0],
    pixelSpacing: opts.pixelSpacing ?? [0.5, 0.7],
    instanceNumber: k + 1,
  }));
}
