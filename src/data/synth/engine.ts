// The voxel loop shared by the CT and MRI generators: pose each scan, evaluate the kind's anatomy at
// every voxel, blend the present lesions in, record lesion masks and their true intensity change, then
// apply the scan's gain/offset/bias field and Gaussian noise.
import type { Vec3 } from './geometry.js';
import { Rng } from './rng.js';

/** Scratch output of an anatomy evaluation. */
export interface Sample {
  v: number;
  label: number;
  /** Kind-specific extra (CT: the voxel's lung fraction), so lesion weights need not recompute organs. */
  aux: number;
}

/** One rendered part of a lesion: a weight field and the intensity it pulls voxels towards, per scan. */
export interface LesionPart {
  weight(x: number, y: number, z: number, label: number, aux: number): number;
  /** Target intensity per scan (pre-gain units); null where the part is invisible in that scan's contrast. */
  targets: (number | null)[];
}

export interface LesionPlan {
  finding: string;
  present: boolean;
  sizeMm: number;
  words: Record<string, string>;
  /** Canonical-space bounding box of everything the lesion touches. */
  lo: Vec3;
  hi: Vec3;
  /** Blended parts; empty for findings drawn through the anatomy itself (organ size, fluid layers). */
  parts: LesionPart[];
  /** For anatomy-drawn findings: the region that changes, as a weight. */
  region?: (x: number, y: number, z: number) => number;
  /** For anatomy-drawn findings: the lesion-free value at a point, for the CNR measurement. */
  counterfactual?: (x: number, y: number, z: number, scan: number) => number;
}

export interface ScanPlan {
  contrast: string;
  series: string;
  /** Canonical = Rᵀ (world − t). R row-major 3×3. */
  rot: number[];
  shift: Vec3;
  gain: number;
  /** Intensity curve v → v^gamma before the gain (MRI contrast jitter); absent = 1. */
  gamma?: number;
  offset: number;
  sigma: number;
  /** Multiplicative bias field at a canonical point (MRI); absent = 1. */
  bias?: (x: number, y: number, z: number) => number;
  clip: [number, number];
  noiseStream: number;
}

export interface StudyPlan {
  scans: ScanPlan[];
  lesions: LesionPlan[];
  /** Lesion-free, noise-free anatomy value at a canonical point for scan s. */
  value(x: number, y: number, z: number, scan: number, out: Sample): void;
}

export interface RenderedScan {
  data: Float32Array;
  tissue: Uint8Array;
}

export interface LesionMeasure {
  masks: Uint32Array[];
  /** Mean intensity change over the mask per scan, in output units. */
  delta: number[];
}

/**
 * Render every scan of a plan. `contrast` multiplies blended lesion changes; `omitLesions` renders the
 * same study (same anatomy, same noise) without any lesion, which tests use as the counterfactual.
 */
export function renderPlan(
  plan: StudyPlan, shape: [number, number, number], spacing: [number, number, number], seed: number,
  contrast: number, omitLesions = false,
): { scans: RenderedScan[]; lesions: LesionMeasure[] } {
  const [D, H, W] = shape;
  const [sz, sy, sx] = spacing;
  const n = D * H * W;
  const nL = plan.lesions.length;
  const measures: LesionMeasure[] = plan.lesions.map(() => ({ masks: [], delta: [] }));
  const scans: RenderedScan[] = [];
  const s0: Sample = { v: 0, label: 0, aux: 0 };
  const idx: number[][] = plan.lesions.map(() => []);
  const sumD = new Float64Array(nL);
  const bestW = new Float64Array(nL);
  const bestI = new Int32Array(nL);
  const bestD = new Float64Array(nL);
  const wOf = new Float64Array(nL);
  const bOf = new Float64Array(nL); // value without the lesion
  const aOf = new Float64Array(nL); // value with it

  for (let s = 0; s < plan.scans.length; s++) {
    const sp = plan.scans[s]!;
    const R = sp.rot;
    const [tx, ty, tz] = sp.shift;
    const noise = new Rng(seed, sp.noiseStream).fast();
    const data = new Float32Array(n);
    const tissue = new Uint8Array(n);
    for (let l = 0; l < nL; l++) {
      idx[l]!.length = 0;
      sumD[l] = 0;
      bestW[l] = -1;
      bestI[l] = 0;
      bestD[l] = 0;
    }
    const [lo, hi] = sp.clip;
    const gamma = sp.gamma ?? 1;
    const curve = (u: number): number => (gamma === 1 ? u : u > 0 ? Math.pow(u, gamma) : 0);
    let i = 0;
    for (let k = 0; k < D; k++) {
      const wz = (D / 2 - k - 0.5) * sz - tz; // slice 0 is the most superior (RPI storage)
      for (let j = 0; j < H; j++) {
        const wy = (H / 2 - j - 0.5) * sy - ty; // row 0 is the most anterior
        for (let q = 0; q < W; q++, i++) {
          const wx = (q + 0.5 - W / 2) * sx - tx;
          const x = R[0]! * wx + R[3]! * wy + R[6]! * wz;
          const y = R[1]! * wx + R[4]! * wy + R[7]! * wz;
          const z = R[2]! * wx + R[5]! * wy + R[8]! * wz;
          plan.value(x, y, z, s, s0);
          let v = s0.v;
          const label = s0.label;
          tissue[i] = label;
          for (let l = 0; l < nL; l++) {
            wOf[l] = 0;
            const L = plan.lesions[l]!;
            if (x < L.lo[0] || x > L.hi[0] || y < L.lo[1] || y > L.hi[1] || z < L.lo[2] || z > L.hi[2]) continue;
            let wmax = 0;
            bOf[l] = v;
            aOf[l] = v;
            if (L.region) {
              wmax = L.region(x, y, z);
              if (L.present && wmax > 0 && L.counterfactual) bOf[l] = L.counterfactual(x, y, z, s);
            }
            for (let pi = 0; pi < L.parts.length; pi++) {
              const part = L.parts[pi]!;
              const w = part.weight(x, y, z, label, s0.aux);
              if (w > wmax) wmax = w;
              const t = part.targets[s];
              if (L.present && !omitLesions && w > 0 && t !== null && t !== undefined) v += w * contrast * (t - v);
            }
            if (L.parts.length > 0) aOf[l] = v;
            wOf[l] = wmax;
          }
          const b = sp.bias ? sp.bias(x, y, z) : 1;
          const g = sp.gain * b;
          let out = curve(v) * g + sp.offset + sp.sigma * noise.normal();
          out = out < lo ? lo : out > hi ? hi : out;
          data[i] = out;
          for (let l = 0; l < nL; l++) {
            const w = wOf[l]!;
            if (w <= 0) continue;
            const d = (curve(aOf[l]!) - curve(bOf[l]!)) * g;
            if (w >= 0.5) {
              idx[l]!.push(i);
              sumD[l] += d;
            }
            if (w > bestW[l]!) {
              bestW[l] = w;
              bestI[l] = i;
              bestD[l] = d;
            }
          }
        }
      }
    }
    for (let l = 0; l < nL; l++) {
      const m = idx[l]!;
      if (m.length > 0) {
        measures[l]!.masks.push(Uint32Array.from(m));
        measures[l]!.delta.push(sumD[l]! / m.length);
      } else if (bestW[l]! > 0) {
        measures[l]!.masks.push(Uint32Array.of(bestI[l]!));
        measures[l]!.delta.push(bestD[l]!);
      } else {
        measures[l]!.masks.push(new Uint32Array(0));
        measures[l]!.delta.push(0);
      }
    }
    scans.push({ data, tissue });
  }
  return { scans, lesions: measures };
}
