// Where the model grid lies in a volume: preprocessing (dataset.ts preprocessScan) only permutes,
// flips, pads, crops and resizes axes, so every model axis is an affine 1-D function of one voxel axis
// of the input volume. This gives that map, and resamples a model-grid map (a relevance map) back onto
// the volume's own grid so it overlays the input in any viewer with the input's affine.
import { ShapeError } from '../errors.js';
import { orientationPlan, type Volume } from '../io/volume.js';
import type { ScanPipeline } from './dataset.js';
import { resampleSize } from './preprocess.js';
import type { Shape3 } from './resample.js';

/**
 * Model axis → volume: the voxel-centre coordinate along volume grid axis `axis` (0 = k, 1 = j,
 * 2 = i, the row-major [D, H, W] order of the volume's data) is `scale · m + offset` for model index m.
 */
export interface AxisMap {
  axis: 0 | 1 | 2;
  scale: number;
  offset: number;
}

/** Output index o of an align_corners=False resize from n to size samples, as an input coordinate. */
const resized = (n: number, size: number) => ({ scale: n / size, offset: 0.5 * (n / size) - 0.5 });

/** centerPadCrop's shift: output index o is input index o − lo + start. */
function padCropShift(n: number, size: number): number {
  const pad = Math.max(size - n, 0);
  const lo = Math.floor(pad / 2);
  const start = Math.floor((n + pad - size) / 2);
  return start - lo;
}

/** The three axis maps of preprocessScan(vol, pipeline, shape), model axes D, H, W in order. */
export function modelGridMap(vol: Volume, pipeline: ScanPipeline, shape: Shape3): [AxisMap, AxisMap, AxisMap] {
  const n: Shape3 = [vol.dims[2], vol.dims[1], vol.dims[0]];
  const sp: Shape3 = [vol.spacing[2], vol.spacing[1], vol.spacing[0]];
  const id = (a: 0 | 1 | 2): AxisMap => ({ axis: a, scale: 1, offset: 0 });
  let maps: AxisMap[];
  if (pipeline.kind === 'prepared') {
    maps = ([0, 1, 2] as const).map((a) => ({ ...id(a), offset: padCropShift(n[a], shape[a]) }));
  } else if (pipeline.kind === 'ct') {
    const target = pipeline.targetSpacing === undefined ? ([3, 1, 1] as Shape3) : pipeline.targetSpacing;
    const rs = target === null ? n : resampleSize(n, sp, target);
    maps = ([0, 1, 2] as const).map((a) => {
      const r = target === null ? { scale: 1, offset: 0 } : resized(n[a], rs[a]);
      // then crop (shift) or resize from rs[a] to shape[a]
      const c = (pipeline.mode ?? 'crop') === 'crop' ? { scale: 1, offset: padCropShift(rs[a], shape[a]) } : resized(rs[a], shape[a]);
      return { axis: a, scale: r.scale * c.scale, offset: r.scale * c.offset + r.offset };
    });
  } else {
    return mriMap(vol, pipeline, shape);
  }
  return maps as [AxisMap, AxisMap, AxisMap];
}

/** MRI: RPI reorientation, depth-first transpose, square pad, bilinear resize, nearest-exact depth, centre crop. */
function mriMap(vol: Volume, p: Extract<ScanPipeline, { kind: 'mri' }>, shape: Shape3): [AxisMap, AxisMap, AxisMap] {
  const [numSlices, crop, crop2] = shape;
  if (crop !== crop2) throw new ShapeError(`MRI input grid must be square in-plane, got ${shape.join('×')}`);
  const resize = p.resize ?? Math.round((crop * 256) / 224);
  // The RPI grid: voxel axis t of the reoriented volume comes from voxel axis src[t] (flipped or not).
  const { src, flip } = orientationPlan(vol.orientation, 'RPI', vol.source);
  const vdims = vol.dims;
  const rpiDims = src.map((s) => vdims[s as number] as number);
  const rpiSp = src.map((s) => vol.spacing[s as number] as number);
  // Grid order [D, H, W] = voxel axes [k, j, i].
  const g0n: Shape3 = [rpiDims[2]!, rpiDims[1]!, rpiDims[0]!];
  const g0sp: Shape3 = [rpiSp[2]!, rpiSp[1]!, rpiSp[0]!];
  let perm: Shape3 = [0, 1, 2];
  if ((p.depthAxis ?? 'largest-spacing') === 'largest-spacing') {
    let arg = 0;
    for (let a = 1; a < 3; a++) if (g0sp[a]! > g0sp[arg]!) arg = a;
    perm = arg === 1 ? [1, 0, 2] : arg === 2 ? [2, 0, 1] : [0, 1, 2];
  }
  const g1n = perm.map((a) => g0n[a]!) as Shape3;
  const side = Math.max(g1n[1], g1n[2]);
  const c0 = Math.floor((resize - crop) / 2);
  const inG1: { scale: number; offset: number }[] = [
    resized(g1n[0], numSlices),
    ...[1, 2].map((a) => {
      const before = Math.floor((side - g1n[a]!) / 2);
      const r = resized(side, resize);
      return { scale: r.scale, offset: r.scale * c0 + r.offset - before };
    }),
  ];
  return inG1.map((m, a) => {
    // G1 axis a is RPI grid axis perm[a], i.e. RPI voxel axis 2 − perm[a], from voxel axis src[·].
    const t = 2 - perm[a]!;
    const vAxis = src[t] as number;
    const nv = vdims[vAxis] as number;
    const out = flip[t] ? { scale: -m.scale, offset: nv - 1 - m.offset } : m;
    return { axis: (2 - vAxis) as 0 | 1 | 2, ...out };
  }) as [AxisMap, AxisMap, AxisMap];
}

/**
 * Samples a model-grid map [D, H, W] at every voxel of `vol` (trilinear in model coordinates; 0 outside
 * the model's field of view, edge values within half a voxel of it). Returns data in the volume's
 * layout (i fastest), to be written with the volume's affine.
 */
export function modelToVolume(values: Float32Array, shape: Shape3, vol: Volume, maps: readonly AxisMap[]): Float32Array {
  if (values.length !== shape[0] * shape[1] * shape[2]) throw new ShapeError(`modelToVolume: ${values.length} values for shape ${shape.join('×')}`);
  const gn: Shape3 = [vol.dims[2], vol.dims[1], vol.dims[0]];
  // For each volume grid axis: which model axis it carries and, per volume index, the taps.
  const taps: { i0: Int32Array; i1: Int32Array; w1: Float64Array; inside: Uint8Array }[] = new Array(3);
  const modelAxisOf: number[] = [-1, -1, -1];
  maps.forEach((m, a) => {
    if (modelAxisOf[m.axis] !== -1) throw new ShapeError('modelToVolume: two model axes map to one volume axis');
    modelAxisOf[m.axis] = a;
    const n = gn[m.axis];
    const size = shape[a]!;
    const t = { i0: new Int32Array(n), i1: new Int32Array(n), w1: new Float64Array(n), inside: new Uint8Array(n) };
    for (let u = 0; u < n; u++) {
      const x = (u - m.offset) / m.scale;
      if (!(x >= -0.5 && x <= size - 0.5)) continue;
      const c = Math.min(Math.max(x, 0), size - 1);
      const i0 = Math.min(Math.floor(c), size - 1);
      t.i0[u] = i0;
      t.i1[u] = Math.min(i0 + 1, size - 1);
      t.w1[u] = c - i0;
      t.inside[u] = 1;
    }
    taps[m.axis] = t;
  });
  const out = new Float32Array(gn[0] * gn[1] * gn[2]);
  const stride = [shape[1] * shape[2], shape[2], 1];
  const [tk, tj, ti] = taps as [typeof taps[0], typeof taps[0], typeof taps[0]];
  const [ak, aj, ai] = modelAxisOf.map((a) => stride[a]!) as [number, number, number];
  let o = 0;
  for (let k = 0; k < gn[0]; k++) {
    for (let j = 0; j < gn[1]; j++) {
      for (let i = 0; i < gn[2]; i++, o++) {
        if (!(tk.inside[k] && tj.inside[j] && ti.inside[i])) continue;
        let s = 0;
        for (let bk = 0; bk < 2; bk++) {
          const wk = bk ? tk.w1[k]! : 1 - tk.w1[k]!;
          if (wk === 0) continue;
          const pk = (bk ? tk.i1[k]! : tk.i0[k]!) * ak;
          for (let bj = 0; bj < 2; bj++) {
            const wj = bj ? tj.w1[j]! : 1 - tj.w1[j]!;
            if (wj === 0) continue;
            const pj = pk + (bj ? tj.i1[j]! : tj.i0[j]!) * aj;
            const wi = ti.w1[i]!;
            s += wk * wj * ((1 - wi) * values[pj + ti.i0[i]! * ai]! + (wi ? wi * values[pj + ti.i1[i]! * ai]! : 0));
          }
        }
        out[o] = s;
      }
    }
  }
  return out;
}
