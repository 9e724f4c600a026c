// Smooth random fields: Gaussian values on a coarse lattice over a box in millimetres, read back with
// smoothstep-weighted trilinear interpolation. They give tissue texture, gyral folding, irregular lesion
// borders and vessel networks at a cost of a few dozen operations per voxel.
import type { Rng } from './rng.js';

export class SmoothField {
  private readonly n: number;
  private readonly values: Float32Array;
  private readonly inv: number;
  private readonly lo: number;

  private readonly cx: number;
  private readonly cy: number;
  private readonly cz: number;

  /** A cubic lattice covering centre ± halfExtent mm (per axis) with nodes every `cell` mm. */
  constructor(rng: Rng, readonly cell: number, halfExtent: number, centre: readonly [number, number, number] = [0, 0, 0]) {
    this.n = Math.ceil((2 * halfExtent) / cell) + 2;
    this.lo = -halfExtent - cell / 2;
    [this.cx, this.cy, this.cz] = centre;
    this.inv = 1 / cell;
    const n3 = this.n * this.n * this.n;
    this.values = new Float32Array(n3);
    // Interpolation shrinks the variance between nodes; 1.35 brings the field's std back close to 1.
    // Lattices are large (10⁴–10⁵ nodes), so they are filled from a fast generator seeded by `rng`.
    const fast = rng.fast();
    for (let i = 0; i < n3; i++) this.values[i] = fast.normal() * 1.35;
  }

  /** Field value at (x, y, z) mm; points outside the box clamp to its border. */
  at(x: number, y: number, z: number): number {
    const n = this.n;
    const m = n - 1.001;
    let fx = (x - this.cx - this.lo) * this.inv;
    let fy = (y - this.cy - this.lo) * this.inv;
    let fz = (z - this.cz - this.lo) * this.inv;
    fx = fx < 0 ? 0 : fx > m ? m : fx;
    fy = fy < 0 ? 0 : fy > m ? m : fy;
    fz = fz < 0 ? 0 : fz > m ? m : fz;
    const ix = fx | 0, iy = fy | 0, iz = fz | 0;
    let tx = fx - ix, ty = fy - iy, tz = fz - iz;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    tz = tz * tz * (3 - 2 * tz);
    const v = this.values;
    const b = (iz * n + iy) * n + ix;
    const c00 = v[b]! + (v[b + 1]! - v[b]!) * tx;
    const c01 = v[b + n]! + (v[b + n + 1]! - v[b + n]!) * tx;
    const c10 = v[b + n * n]! + (v[b + n * n + 1]! - v[b + n * n]!) * tx;
    const c11 = v[b + n * n + n]! + (v[b + n * n + n + 1]! - v[b + n * n + n]!) * tx;
    const c0 = c00 + (c01 - c00) * ty;
    const c1 = c10 + (c11 - c10) * ty;
    return c0 + (c1 - c0) * tz;
  }
}
