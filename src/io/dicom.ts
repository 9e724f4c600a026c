// DICOM series → Volume (browser-safe): files are parsed by dicom-parser, grouped by
// SeriesInstanceUID, sorted along the slice normal (ImageOrientationPatient row × column cosines,
// dotted with ImagePositionPatient), rescaled with RescaleSlope/Intercept (→ HU for CT) and stacked.
//
// Transfer syntaxes: implicit/explicit little endian, explicit big endian, deflated explicit little
// endian (inflated with DecompressionStream) and RLE Lossless (decoded in dicom-rle.ts). The JPEG
// family (baseline, extended, lossless, JPEG-LS, JPEG 2000, HTJ2K) and video syntaxes are refused
// with an UnsupportedTransferSyntaxError naming the syntax: the maintained decoders for them are
// WASM builds (OpenJPEG, CharLS) or only cover one process (jpeg-lossless-decoder-js), and the
// datasets HLIP uses (CT-RATE, Rad-ChestCT, Pub-Brain-5) ship as NIfTI or arrays, not DICOM.
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import { FormatError, HlipError } from '../errors.js';
import { decodeRleFrame } from './dicom-rle.js';
import { inflateAll } from './gunzip.js';
import { MAX_BUFFER_BYTES, noteAllocation } from './limits.js';
import { axcodes, checkVolume, orientVolume, type Vec3, type Volume } from './volume.js';

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const DEFLATED_LE = '1.2.840.10008.1.2.1.99';
const RLE = '1.2.840.10008.1.2.5';

/** Names of the compressed syntaxes we refuse, so the error can say what the file is. */
export const REFUSED_TRANSFER_SYNTAXES: Readonly<Record<string, string>> = {
  '1.2.840.10008.1.2.4.50': 'JPEG Baseline (Process 1)',
  '1.2.840.10008.1.2.4.51': 'JPEG Extended (Process 2 & 4)',
  '1.2.840.10008.1.2.4.57': 'JPEG Lossless, Non-Hierarchical (Process 14)',
  '1.2.840.10008.1.2.4.70': 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14, Selection Value 1)',
  '1.2.840.10008.1.2.4.80': 'JPEG-LS Lossless',
  '1.2.840.10008.1.2.4.81': 'JPEG-LS Near-Lossless',
  '1.2.840.10008.1.2.4.90': 'JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.91': 'JPEG 2000',
  '1.2.840.10008.1.2.4.92': 'JPEG 2000 Part 2 Multi-component Lossless',
  '1.2.840.10008.1.2.4.93': 'JPEG 2000 Part 2 Multi-component',
  '1.2.840.10008.1.2.4.94': 'JPIP Referenced',
  '1.2.840.10008.1.2.4.95': 'JPIP Referenced Deflate',
  '1.2.840.10008.1.2.4.100': 'MPEG2 Main Profile',
  '1.2.840.10008.1.2.4.101': 'MPEG2 High Profile',
  '1.2.840.10008.1.2.4.102': 'MPEG-4 AVC/H.264',
  '1.2.840.10008.1.2.4.103': 'MPEG-4 AVC/H.264 BD-compatible',
  '1.2.840.10008.1.2.4.104': 'MPEG-4 AVC/H.264 for 2D Video',
  '1.2.840.10008.1.2.4.105': 'MPEG-4 AVC/H.264 for 3D Video',
  '1.2.840.10008.1.2.4.106': 'MPEG-4 AVC/H.264 Stereo',
  '1.2.840.10008.1.2.4.107': 'HEVC/H.265 Main Profile',
  '1.2.840.10008.1.2.4.108': 'HEVC/H.265 Main 10 Profile',
  '1.2.840.10008.1.2.4.201': 'High-Throughput JPEG 2000 Lossless',
  '1.2.840.10008.1.2.4.202': 'High-Throughput JPEG 2000 with RPCL Lossless',
  '1.2.840.10008.1.2.4.203': 'High-Throughput JPEG 2000',
};

/** A file whose pixel data use a compressed transfer syntax this reader does not decode. */
export class UnsupportedTransferSyntaxError extends FormatError {
  readonly transferSyntax: string;
  readonly syntaxName: string;
  constructor(source: string, uid: string) {
    const name = REFUSED_TRANSFER_SYNTAXES[uid] ?? 'unknown transfer syntax';
    super(source, `pixel data use ${name} (${uid}), which this reader does not decode; convert the series to an uncompressed or RLE transfer syntax (e.g. gdcmconv --raw, dcmdjpeg) or to NIfTI (dcm2niix)`);
    this.name = 'UnsupportedTransferSyntaxError';
    this.transferSyntax = uid;
    this.syntaxName = name;
  }
}

/** One decoded grayscale DICOM image (a slice). */
export interface DicomImage {
  source: string;
  transferSyntax: string;
  seriesInstanceUID: string;
  studyInstanceUID?: string;
  modality?: string;
  seriesDescription?: string;
  seriesNumber?: number;
  instanceNumber?: number;
  rows: number;
  columns: number;
  /** ImagePositionPatient (LPS mm) of the first transmitted pixel. */
  position?: Vec3;
  /** ImageOrientationPatient: row cosines then column cosines (LPS). */
  orientation?: number[];
  /** PixelSpacing: [between rows, between columns] in mm. */
  pixelSpacing?: [number, number];
  sliceThickness?: number;
  /** rows × columns values after RescaleSlope/Intercept, row-major. */
  pixels: Float32Array;
}

export interface DicomReadOptions {
  /** Which series to read when the files hold several. */
  seriesInstanceUID?: string;
  /** 'native' keeps (column, row, sorted slice) order; otherwise a target code (default 'RPI'). */
  orientation?: string;
  /** Largest relative deviation of a slice gap from the median gap (default 0.05). */
  spacingTolerance?: number;
  /** Name for the series in errors (default: the first file's name). */
  name?: string;
}

export type DicomInput = { name: string; data: Uint8Array | ArrayBuffer | Blob } | File;

function describe(e: unknown): string {
  if (typeof e === 'string') return e;
  if (e && typeof e === 'object') {
    const o = e as { exception?: unknown; message?: unknown };
    if (o.exception !== undefined) return describe(o.exception);
    if (typeof o.message === 'string') return o.message;
  }
  return String(e);
}

/** True when the bytes carry the DICOM Part 10 preamble ('DICM' at byte 128). */
export function hasDicomPreamble(b: Uint8Array): boolean {
  return b.length >= 132 && b[128] === 0x44 && b[129] === 0x49 && b[130] === 0x43 && b[131] === 0x4d;
}

/** Transfer syntax to assume for a raw data set without a Part 10 header. */
function guessRawSyntax(b: Uint8Array): string {
  if (b.length < 6) return IMPLICIT_LE;
  const isVr = (x: number, y: number) => x >= 0x41 && x <= 0x5a && y >= 0x41 && y <= 0x5a;
  const leGroup = b[0]! | (b[1]! << 8);
  const beGroup = (b[0]! << 8) | b[1]!;
  if (beGroup < 0x100 && leGroup >= 0x100 && isVr(b[4]!, b[5]!)) return EXPLICIT_BE;
  return isVr(b[4]!, b[5]!) ? EXPLICIT_LE : IMPLICIT_LE;
}

async function parseDataSet(bytes: Uint8Array, source: string): Promise<{ ds: DataSet; ts: string }> {
  try {
    if (!hasDicomPreamble(bytes)) {
      const ts = guessRawSyntax(bytes);
      return { ds: dicomParser.parseDicom(bytes, { TransferSyntaxUID: ts }), ts };
    }
    const meta = dicomParser.readPart10Header(bytes) as DataSet & { position?: number };
    const ts = (meta.string('x00020010') ?? '').replace(/\0/g, '').trim();
    if (!ts) throw new FormatError(source, 'the file meta information has no TransferSyntaxUID (0002,0010)');
    if (ts === DEFLATED_LE) {
      const at = meta.position ?? 0;
      const inflated = await inflateAll(bytes.subarray(at), 'deflate-raw', source, MAX_BUFFER_BYTES);
      return { ds: dicomParser.parseDicom(inflated, { TransferSyntaxUID: EXPLICIT_LE }), ts };
    }
    return { ds: dicomParser.parseDicom(bytes), ts };
  } catch (e) {
    if (e instanceof HlipError) throw e;
    const why = describe(e);
    const hint = /overrun|beyond|end of/i.test(why) ? 'truncated or corrupt DICOM file (an element runs past the end of the data)' : 'not a readable DICOM file';
    throw new FormatError(source, `${hint}: ${why}`, e);
  }
}

function str(ds: DataSet, tag: string): string | undefined {
  try {
    const s = ds.string(tag);
    return s === undefined || s === '' ? undefined : s.replace(/\0/g, '').trim() || undefined;
  } catch {
    return undefined;
  }
}

function nums(ds: DataSet, tag: string, n: number, source: string, what: string): number[] | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(Number(ds.floatString(tag, i)));
  if (!out.every(Number.isFinite)) throw new FormatError(source, `${what} (${tag.slice(1, 5)},${tag.slice(5)}) does not hold ${n} numbers`);
  return out;
}

function num(ds: DataSet, tag: string): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length === 0) return undefined;
  const v = Number(ds.floatString(tag));
  return Number.isFinite(v) ? v : undefined;
}

function us(ds: DataSet, tag: string): number | undefined {
  const el = ds.elements[tag];
  if (!el || el.length < 2) return undefined;
  return ds.uint16(tag);
}

/**
 * Parse one DICOM file. Returns null for valid DICOM objects without pixel data (DICOMDIR,
 * structured reports, RT plans...); throws a typed error for anything unreadable or unsupported.
 */
export async function readDicomImage(input: Uint8Array | ArrayBuffer, name = '<dicom>'): Promise<DicomImage | null> {
  // A plain view, so copies below are real copies even for a Node Buffer.
  const bytes = input instanceof Uint8Array ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength) : new Uint8Array(input);
  const source = name;
  const { ds, ts } = await parseDataSet(bytes, source);
  const pixelEl = ds.elements.x7fe00010;
  if (!pixelEl) {
    if (ds.elements.x7fe00008 || ds.elements.x7fe00009) throw new FormatError(source, 'float / double-float pixel data are not supported');
    // Without the Part 10 preamble there is no telling a pixel-less object from arbitrary bytes.
    if (!hasDicomPreamble(bytes)) throw new FormatError(source, 'not a DICOM image: no DICM preamble and no pixel data');
    return null;
  }
  if (ts !== IMPLICIT_LE && ts !== EXPLICIT_LE && ts !== EXPLICIT_BE && ts !== DEFLATED_LE && ts !== RLE) throw new UnsupportedTransferSyntaxError(source, ts);
  const rows = us(ds, 'x00280010') ?? 0;
  const cols = us(ds, 'x00280011') ?? 0;
  if (!(rows > 0 && cols > 0)) throw new FormatError(source, `Rows × Columns = ${rows} × ${cols} is not an image size`);
  const spp = us(ds, 'x00280002') ?? 1;
  if (spp !== 1) throw new FormatError(source, `SamplesPerPixel = ${spp} (${str(ds, 'x00280004') ?? 'colour'}): only grayscale images can form a volume`);
  const frames = num(ds, 'x00280008') ?? 1;
  if (frames !== 1) throw new FormatError(source, `multi-frame image (${frames} frames) is not supported; export the series as one file per slice`);
  const bitsAllocated = us(ds, 'x00280100') ?? 16;
  if (bitsAllocated !== 8 && bitsAllocated !== 16 && bitsAllocated !== 32) throw new FormatError(source, `BitsAllocated = ${bitsAllocated} is not supported (8, 16 or 32)`);
  const bitsStored = us(ds, 'x00280101') ?? bitsAllocated;
  if (bitsStored < 1 || bitsStored > bitsAllocated) throw new FormatError(source, `BitsStored = ${bitsStored} does not fit BitsAllocated = ${bitsAllocated}`);
  const signed = (us(ds, 'x00280103') ?? 0) === 1;
  const bps = bitsAllocated / 8;
  const pixels = rows * cols;
  const nbytes = pixels * bps;

  let le: Uint8Array; // little-endian sample bytes
  if (ts === RLE) {
    le = decodeRleFrame(encapsulatedFrame(ds, pixelEl, source), pixels, bps, source);
  } else {
    if (pixelEl.encapsulatedPixelData) throw new FormatError(source, `pixel data are encapsulated although the transfer syntax ${ts} is native`);
    const bytesAll = ds.byteArray as Uint8Array;
    if (pixelEl.length < nbytes || pixelEl.dataOffset + nbytes > bytesAll.length) {
      throw new FormatError(source, `pixel data hold ${Math.min(pixelEl.length, Math.max(0, bytesAll.length - pixelEl.dataOffset))} bytes; ${rows}×${cols}×${bps} = ${nbytes} needed (truncated file?)`);
    }
    noteAllocation(nbytes, 'dicom pixel copy');
    le = new Uint8Array(bytesAll.subarray(pixelEl.dataOffset, pixelEl.dataOffset + nbytes));
    if (ts === EXPLICIT_BE && bps > 1) {
      for (let i = 0; i < le.length; i += bps) {
        for (let a = i, z = i + bps - 1; a < z; a++, z--) {
          const t = le[a]!;
          le[a] = le[z]!;
          le[z] = t;
        }
      }
    }
  }
  const slope = num(ds, 'x00281053') ?? 1;
  const intercept = num(ds, 'x00281052') ?? 0;
  noteAllocation(pixels * 4, 'dicom float32 pixels');
  const out = new Float32Array(pixels);
  const dv = new DataView(le.buffer, le.byteOffset, le.byteLength);
  const shift = 32 - bitsStored;
  for (let i = 0; i < pixels; i++) {
    let v: number;
    if (bps === 1) v = dv.getUint8(i);
    else if (bps === 2) v = dv.getUint16(2 * i, true);
    else v = dv.getUint32(4 * i, true);
    // Signed samples: sign-extend from BitsStored (e.g. 12-bit CT in 16-bit words).
    if (signed) v = bitsStored === 32 ? v | 0 : ((v << shift) >> shift);
    out[i] = v * slope + intercept;
  }
  const pos = nums(ds, 'x00200032', 3, source, 'ImagePositionPatient');
  const ori = nums(ds, 'x00200037', 6, source, 'ImageOrientationPatient');
  const ps = nums(ds, 'x00280030', 2, source, 'PixelSpacing');
  if (ps && !(ps[0]! > 0 && ps[1]! > 0)) throw new FormatError(source, `PixelSpacing ${ps.join('\\')} is not positive`);
  const img: DicomImage = {
    source,
    transferSyntax: ts,
    seriesInstanceUID: str(ds, 'x0020000e') ?? '(no SeriesInstanceUID)',
    rows,
    columns: cols,
    pixels: out,
  };
  const study = str(ds, 'x0020000d');
  if (study) img.studyInstanceUID = study;
  const modality = str(ds, 'x00080060');
  if (modality) img.modality = modality;
  const desc = str(ds, 'x0008103e');
  if (desc) img.seriesDescription = desc;
  const sn = num(ds, 'x00200011');
  if (sn !== undefined) img.seriesNumber = sn;
  const inst = num(ds, 'x00200013');
  if (inst !== undefined) img.instanceNumber = inst;
  if (pos) img.position = pos as Vec3;
  if (ori) img.orientation = ori;
  if (ps) img.pixelSpacing = ps as [number, number];
  const th = num(ds, 'x00180050');
  if (th !== undefined && th > 0) img.sliceThickness = th;
  return img;
}

function encapsulatedFrame(ds: DataSet, el: Element, source: string): Uint8Array {
  if (!el.encapsulatedPixelData || !el.fragments || el.fragments.length === 0) throw new FormatError(source, 'RLE transfer syntax but the pixel data hold no fragments');
  try {
    return dicomParser.readEncapsulatedPixelDataFromFragments(ds, el, 0, el.fragments.length) as Uint8Array;
  } catch (e) {
    throw new FormatError(source, `unreadable encapsulated pixel data: ${describe(e)}`, e);
  }
}

export interface DicomSeriesSummary {
  seriesInstanceUID: string;
  modality?: string;
  description?: string;
  images: number;
}

/** Group images by SeriesInstanceUID (insertion order of first appearance). */
export function groupDicomSeries(images: DicomImage[]): Map<string, DicomImage[]> {
  const groups = new Map<string, DicomImage[]>();
  for (const im of images) {
    const g = groups.get(im.seriesInstanceUID);
    if (g) g.push(im);
    else groups.set(im.seriesInstanceUID, [im]);
  }
  return groups;
}

export function summarizeDicomSeries(images: DicomImage[]): DicomSeriesSummary[] {
  return [...groupDicomSeries(images)].map(([uid, ims]) => {
    const s: DicomSeriesSummary = { seriesInstanceUID: uid, images: ims.length };
    if (ims[0]!.modality) s.modality = ims[0]!.modality;
    if (ims[0]!.seriesDescription) s.description = ims[0]!.seriesDescription;
    return s;
  });
}

const cross = (a: number[], b: number[]): Vec3 => [a[1]! * b[2]! - a[2]! * b[1]!, a[2]! * b[0]! - a[0]! * b[2]!, a[0]! * b[1]! - a[1]! * b[0]!];
const dot = (a: number[], b: number[]) => a[0]! * b[0]! + a[1]! * b[1]! + a[2]! * b[2]!;

/**
 * Stack the images of one series into a volume: consistent size/orientation/spacing, slices sorted
 * along the normal, uniform gaps (a gap > 1.5× the median means missing slices).
 */
export function assembleDicomSeries(images: DicomImage[], opts: DicomReadOptions = {}): Volume {
  if (images.length === 0) throw new FormatError(opts.name ?? '<dicom series>', 'no images');
  const first = images[0]!;
  const source = opts.name ?? (images.length === 1 ? first.source : `${first.source} (+${images.length - 1} more)`);
  const uids = new Set(images.map((i) => i.seriesInstanceUID));
  if (uids.size > 1) throw new FormatError(source, `images of ${uids.size} different series (${[...uids].join(', ')}); read one series at a time`);
  for (const im of images) {
    if (im.rows !== first.rows || im.columns !== first.columns) throw new FormatError(source, `inconsistent image size in series ${first.seriesInstanceUID}: '${first.source}' is ${first.rows}×${first.columns}, '${im.source}' is ${im.rows}×${im.columns}`);
  }
  const { rows, columns } = first;
  const tol = opts.spacingTolerance ?? 0.05;
  let ori = first.orientation ?? [1, 0, 0, 0, 1, 0];
  const ps = first.pixelSpacing ?? [1, 1];
  let order = images;
  let step: Vec3;
  let sliceGap: number;
  if (images.length === 1) {
    const n = cross(ori.slice(0, 3), ori.slice(3, 6));
    sliceGap = first.sliceThickness ?? 1;
    step = n.map((v) => v * sliceGap) as Vec3;
  } else {
    for (const im of images) {
      if (!im.position || !im.orientation) throw new FormatError(source, `'${im.source}' has no ImagePositionPatient/ImageOrientationPatient, so the slices cannot be ordered`);
      if (im.orientation.some((v, i) => Math.abs(v - ori[i]!) > 1e-4)) throw new FormatError(source, `inconsistent ImageOrientationPatient in series ${first.seriesInstanceUID}: '${first.source}' has ${ori.join('\\')}, '${im.source}' has ${im.orientation.join('\\')} (localizer or mixed series?)`);
      const p = im.pixelSpacing ?? [1, 1];
      if (Math.abs(p[0] - ps[0]) > 1e-4 * ps[0] || Math.abs(p[1] - ps[1]) > 1e-4 * ps[1]) throw new FormatError(source, `inconsistent PixelSpacing in series ${first.seriesInstanceUID}: '${first.source}' has ${ps.join('\\')}, '${im.source}' has ${p.join('\\')}`);
    }
    ori = first.orientation!;
    const r = ori.slice(0, 3), c = ori.slice(3, 6);
    if (Math.abs(Math.hypot(...r) - 1) > 1e-3 || Math.abs(Math.hypot(...c) - 1) > 1e-3 || Math.abs(dot(r, c)) > 1e-3) throw new FormatError(source, `ImageOrientationPatient ${ori.join('\\')} is not a pair of orthonormal directions`);
    const n = cross(r, c);
    const keyed = images.map((im) => ({ im, d: dot(n, im.position!) }));
    keyed.sort((a, b) => a.d - b.d);
    order = keyed.map((k) => k.im);
    const gaps = keyed.slice(1).map((k, i) => k.d - keyed[i]!.d);
    const sorted = [...gaps].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    const dupAt = gaps.findIndex((g) => g <= 1e-3 * Math.max(1, Math.abs(median)));
    if (dupAt >= 0) throw new FormatError(source, `'${keyed[dupAt]!.im.source}' and '${keyed[dupAt + 1]!.im.source}' lie at the same slice position (${keyed[dupAt]!.d.toFixed(3)} mm): several acquisitions, echoes or time points in one series`);
    for (let i = 0; i < gaps.length; i++) {
      const g = gaps[i]!;
      if (g > 1.5 * median) throw new FormatError(source, `missing slice(s) in series ${first.seriesInstanceUID}: ${g.toFixed(3)} mm between '${keyed[i]!.im.source}' and '${keyed[i + 1]!.im.source}', median spacing ${median.toFixed(3)} mm (incomplete series)`);
      if (Math.abs(g - median) > tol * median + 1e-3) throw new FormatError(source, `non-uniform slice spacing in series ${first.seriesInstanceUID}: ${g.toFixed(3)} mm between '${keyed[i]!.im.source}' and '${keyed[i + 1]!.im.source}', median ${median.toFixed(3)} mm`);
    }
    const last = order[order.length - 1]!.position!, p0 = order[0]!.position!;
    step = [0, 1, 2].map((i) => (last[i]! - p0[i]!) / (order.length - 1)) as Vec3;
    sliceGap = (keyed[keyed.length - 1]!.d - keyed[0]!.d) / (order.length - 1);
  }
  const p0 = order[0]!.position ?? [0, 0, 0];
  // LPS affine: i (column index) runs along the row cosines by the column spacing PixelSpacing[1],
  // j (row index) along the column cosines by PixelSpacing[0], k along the slice step. RAS = diag(-1,-1,1)·LPS.
  const lps = [
    ori[0]! * ps[1], ori[3]! * ps[0], step[0], p0[0]!,
    ori[1]! * ps[1], ori[4]! * ps[0], step[1], p0[1]!,
    ori[2]! * ps[1], ori[5]! * ps[0], step[2], p0[2]!,
  ];
  const affine = [...lps.slice(0, 8).map((v) => -v), ...lps.slice(8), 0, 0, 0, 1];
  const plane = rows * columns;
  const total = plane * order.length;
  if (total * 4 > MAX_BUFFER_BYTES) throw new HlipError('limit', `${columns}×${rows}×${order.length} voxels exceed the buffer limit`, { source });
  noteAllocation(total * 4, 'dicom volume');
  const data = new Float32Array(total);
  order.forEach((im, k) => data.set(im.pixels, k * plane));
  const vol: Volume = {
    data,
    dims: [columns, rows, order.length],
    spacing: [ps[1], ps[0], Math.abs(sliceGap)],
    affine,
    orientation: axcodes(affine),
    source,
    frames: 1,
    frame: 0,
    affineSource: 'dicom',
    seriesInstanceUID: first.seriesInstanceUID,
  };
  if (first.modality) vol.modality = first.modality;
  checkVolume(vol);
  return orientVolume(vol, opts.orientation);
}

async function inputBytes(f: DicomInput): Promise<{ name: string; bytes: Uint8Array }> {
  const name = (f as { name?: string }).name || '<dicom>';
  const data: unknown = (typeof File !== 'undefined' && f instanceof File) ? f : (f as { data: unknown }).data;
  if (data instanceof Uint8Array) return { name, bytes: data };
  if (data instanceof ArrayBuffer) return { name, bytes: new Uint8Array(data) };
  if (typeof Blob !== 'undefined' && data instanceof Blob) {
    try {
      return { name, bytes: new Uint8Array(await data.arrayBuffer()) };
    } catch (e) {
      throw new HlipError('io', `cannot read: ${(e as Error).message}`, { source: name, cause: e });
    }
  }
  throw new HlipError('io', 'expected bytes, an ArrayBuffer or a Blob/File', { source: name });
}

/**
 * Read a set of DICOM files (a series, e.g. the files of a dropped folder) into a volume. Objects
 * without pixel data are skipped; several series need `seriesInstanceUID` to pick one.
 */
export async function readDicomSeries(files: DicomInput[], opts: DicomReadOptions = {}): Promise<Volume> {
  const images: DicomImage[] = [];
  for (const f of files) {
    const { name, bytes } = await inputBytes(f);
    const im = await readDicomImage(bytes, name);
    if (im) images.push(im);
  }
  const label = opts.name ?? (files.length ? ((files[0] as { name?: string }).name ?? '<dicom>') : '<dicom series>');
  if (images.length === 0) throw new FormatError(label, `none of the ${files.length} DICOM file(s) holds an image`);
  return assembleDicomSeries(pickSeries(images, opts, label), opts);
}

/** The images of the requested (or only) series; a clear error when the choice is ambiguous. */
export function pickSeries(images: DicomImage[], opts: DicomReadOptions, label: string): DicomImage[] {
  const groups = groupDicomSeries(images);
  if (opts.seriesInstanceUID !== undefined) {
    const g = groups.get(opts.seriesInstanceUID);
    if (!g) throw new FormatError(label, `series ${opts.seriesInstanceUID} not found; present: ${[...groups.keys()].join(', ')}`);
    return g;
  }
  if (groups.size > 1) {
    const list = summarizeDicomSeries(images).map((s) => `${s.seriesInstanceUID} (${s.modality ?? '?'}${s.description ? `, ${s.description}` : ''}, ${s.images} image(s))`);
    throw new FormatError(label, `mixed series: ${groups.size} series found (${list.join('; ')}); pass seriesInstanceUID to choose one`);
  }
  return [...groups.values()][0]!;
}
