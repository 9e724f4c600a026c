// Volumes read from medical files (NIfTI, DICOM series) and the orientation arithmetic on them.
//
// Canonical orientation: `RPI`, i.e. voxel index i (x, fastest) runs toward patient Right, j toward
// Posterior, k toward Inferior (letters name the direction of increasing index, as in nibabel's
// axcodes and ITK's DICOMOrientImageFilter). Read as a row-major array the data is then
// [D, H, W] = [k, j, i]: D = axial slices from the top of the head down, H = anterior→posterior
// rows, W = patient left→right columns. This is what HLIP's Pub-Brain-5 process.py produces
// (SimpleITK `DICOMOrient(img, 'RPI')` then `GetArrayFromImage`, which yields (z, y, x) = (d, h, w)).
// HLIP's CT-RATE process.py does not reorient at all (it keeps the file's storage order); use
// `orientation: 'native'` when exact parity with that on CT-RATE files matters.
import { FormatError, ShapeError } from '../errors.js';

export type Vec3 = [number, number, number];

export interface Volume {
  /** Voxel values (after scl_slope/inter or RescaleSlope/Intercept), i fastest, then j, then k. */
  data: Float32Array;
  /** Voxel counts along i, j, k. The row-major array shape is [dims[2], dims[1], dims[0]]. */
  dims: Vec3;
  /** Voxel size in mm along i, j, k: column norms of the affine (NIfTI); for DICOM PixelSpacing and the
   *  slice separation along the normal (equal to the column norm unless the gantry was tilted). */
  spacing: Vec3;
  /** 4×4 row-major matrix from voxel (i, j, k, 1) to RAS+ world millimetres. */
  affine: number[];
  /** Direction of increasing i, j, k, e.g. 'RPI' (see `axcodes`). */
  orientation: string;
  /** File (or series) the volume came from; used in error messages. */
  source: string;
  /** Number of 3-D volumes in the file (4-D NIfTI); the one returned is `frame`. */
  frames: number;
  frame: number;
  /** Where the affine came from. */
  affineSource: 'sform' | 'qform' | 'pixdim' | 'dicom' | 'derived';
  /** DICOM only: modality and series identity. */
  modality?: string;
  seriesInstanceUID?: string;
}

/** Row-major shape [D, H, W] of a volume's data. */
export function volumeShape(v: Pick<Volume, 'dims'>): Vec3 {
  return [v.dims[2], v.dims[1], v.dims[0]];
}

const LETTERS: [string, string][] = [['L', 'R'], ['P', 'A'], ['I', 'S']];

/** Column norms of the 3×3 part of a row-major 4×4 affine. */
export function affineSpacing(a: readonly number[]): Vec3 {
  const n = (c: number) => Math.hypot(a[c] as number, a[4 + c] as number, a[8 + c] as number);
  return [n(0), n(1), n(2)];
}

export function det3(a: readonly number[]): number {
  const [a0, a1, a2, , a4, a5, a6, , a8, a9, a10] = a as number[];
  return a0! * (a5! * a10! - a6! * a9!) - a1! * (a4! * a10! - a6! * a8!) + a2! * (a4! * a9! - a5! * a8!);
}

/** True when the affine is finite and its 3×3 part is invertible (every column carries a direction). */
export function isUsableAffine(a: readonly number[]): boolean {
  if (a.length !== 16 || !a.every(Number.isFinite)) return false;
  const s = affineSpacing(a);
  if (!(s[0] > 0 && s[1] > 0 && s[2] > 0)) return false;
  return Math.abs(det3(a)) > 1e-12 * s[0] * s[1] * s[2];
}

/**
 * Orientation code of an affine: for each voxel axis, the world direction it runs toward. Axes are
 * matched greedily on the largest |direction cosine| so each world axis is used once, even for
 * oblique (e.g. 45°) volumes.
 */
export function axcodes(affine: readonly number[]): string {
  const s = affineSpacing(affine);
  const cos = (r: number, c: number) => (affine[r * 4 + c] as number) / (s[c] || 1);
  const used = [false, false, false];
  const code = ['', '', ''];
  for (let step = 0; step < 3; step++) {
    let best = -1, br = 0, bc = 0;
    for (let c = 0; c < 3; c++) {
      if (code[c]) continue;
      for (let r = 0; r < 3; r++) {
        if (used[r]) continue;
        const v = Math.abs(cos(r, c));
        if (v > best) { best = v; br = r; bc = c; }
      }
    }
    used[br] = true;
    code[bc] = (LETTERS[br] as [string, string])[cos(br, bc) >= 0 ? 1 : 0];
  }
  return code.join('');
}

function parseCode(code: string, source: string): { axis: number; positive: boolean }[] {
  const up = code.toUpperCase();
  const out = [...up].map((ch) => {
    const axis = LETTERS.findIndex((p) => p.includes(ch));
    return { axis, positive: axis >= 0 && (LETTERS[axis] as [string, string])[1] === ch };
  });
  if (out.length !== 3 || out.some((o) => o.axis < 0) || new Set(out.map((o) => o.axis)).size !== 3) {
    throw new FormatError(source, `'${code}' is not an orientation code (three letters, one of L/R, A/P, S/I each)`);
  }
  return out;
}

/**
 * Permute and flip the voxel axes (no interpolation) so the volume has orientation `target`
 * (default the canonical 'RPI'); the affine is updated so every voxel keeps its world position.
 * `reorient(r, original.orientation)` maps a result back onto the original grid exactly.
 */
export function reorient(vol: Volume, target = 'RPI'): Volume {
  const { src, flip } = orientationPlan(vol.orientation, target, vol.source);
  if (src.every((s, t) => s === t) && !flip.some(Boolean)) return { ...vol, orientation: target.toUpperCase() };
  const [nx, ny, nz] = vol.dims;
  const srcStride = [1, nx, nx * ny];
  const nd = src.map((s) => vol.dims[s as number]) as Vec3;
  let base = 0;
  const stride = [0, 1, 2].map((t) => {
    const st = srcStride[src[t] as number] as number;
    if (flip[t]) base += (nd[t] - 1) * st;
    return flip[t] ? -st : st;
  });
  const out = new Float32Array(vol.data.length);
  const [s0, s1, s2] = stride as Vec3;
  let o = 0;
  for (let c = 0; c < nd[2]; c++) {
    for (let b = 0; b < nd[1]; b++) {
      let p = base + c * s2 + b * s1;
      for (let a = 0; a < nd[0]; a++, p += s0) out[o++] = vol.data[p] as number;
    }
  }
  // new affine = old affine · P, where P maps new voxel indices to old ones.
  const P = new Array<number>(16).fill(0);
  P[15] = 1;
  for (let t = 0; t < 3; t++) {
    const s = src[t] as number;
    P[s * 4 + t] = flip[t] ? -1 : 1;
    if (flip[t]) P[s * 4 + 3] = nd[t] - 1;
  }
  const affine = matmul4(vol.affine, P);
  const spacing = src.map((s) => vol.spacing[s as number]) as Vec3;
  return { ...vol, data: out, dims: nd, spacing, affine, orientation: target.toUpperCase() };
}

/**
 * How reorient(·, `to`) rearranges a volume of orientation `from`: for each new voxel axis t (i, j, k),
 * the old voxel axis `src[t]` on the same world axis and whether it runs backwards (`flip[t]`: new
 * index = n − 1 − old index).
 */
export function orientationPlan(from: string, to: string, source = 'volume'): { src: number[]; flip: boolean[] } {
  const want = parseCode(to, source);
  const have = parseCode(from, source);
  const src = want.map((w) => have.findIndex((h) => h.axis === w.axis));
  const flip = want.map((w, t) => have[src[t] as number]!.positive !== w.positive);
  return { src, flip };
}

export function matmul4(a: readonly number[], b: readonly number[]): number[] {
  const out = new Array<number>(16).fill(0);
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += (a[r * 4 + k] as number) * (b[k * 4 + c] as number);
      out[r * 4 + c] = s;
    }
  }
  return out;
}

/** Apply an orientation option: 'native' keeps the storage order, anything else is a target code. */
export function orientVolume(vol: Volume, orientation: string | undefined): Volume {
  if (orientation === 'native') return vol;
  return reorient(vol, orientation ?? 'RPI');
}

/** Check a volume's invariants (data length, dims, spacing); readers and writers call it. */
export function checkVolume(v: Volume): void {
  const n = v.dims[0] * v.dims[1] * v.dims[2];
  if (!v.dims.every((d) => Number.isSafeInteger(d) && d > 0)) throw new ShapeError(`${v.source}: invalid dims ${v.dims.join('×')}`);
  if (v.data.length !== n) throw new ShapeError(`${v.source}: data has ${v.data.length} values, dims ${v.dims.join('×')} need ${n}`);
  if (!v.spacing.every((s) => Number.isFinite(s) && s > 0)) throw new ShapeError(`${v.source}: invalid spacing ${v.spacing.join(', ')}`);
}
