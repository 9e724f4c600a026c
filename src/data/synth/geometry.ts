// Small geometric primitives in millimetres: approximate signed distances and partial-volume edges.

export type Vec3 = [number, number, number];

/**
 * Approximate signed distance (mm, negative inside) from (x, y, z) to an axis-aligned ellipsoid centred
 * at the origin: (ρ − 1) / |∇ρ| with ρ the ellipsoidal radius. Exact on the axes, close near the surface.
 */
export function ellDist(x: number, y: number, z: number, ax: number, ay: number, az: number): number {
  const qx = x / ax, qy = y / ay, qz = z / az;
  const rho = Math.sqrt(qx * qx + qy * qy + qz * qz);
  if (rho < 1e-9) return -Math.min(ax, ay, az);
  const gx = qx / ax, gy = qy / ay, gz = qz / az;
  const g = Math.sqrt(gx * gx + gy * gy + gz * gz) / rho;
  return (rho - 1) / g;
}

/** Same for an ellipse in the xy plane (an infinite elliptic cylinder along z). */
export function ell2Dist(x: number, y: number, ax: number, ay: number): number {
  const qx = x / ax, qy = y / ay;
  const rho = Math.sqrt(qx * qx + qy * qy);
  if (rho < 1e-9) return -Math.min(ax, ay);
  const gx = qx / ax, gy = qy / ay;
  return ((rho - 1) * rho) / Math.sqrt(gx * gx + gy * gy);
}

/** Euclidean length (Math.hypot is variadic and several times slower in the voxel loops). */
export function len(x: number, y: number, z = 0): number {
  return Math.sqrt(x * x + y * y + z * z);
}

/** Partial-volume weight of the inside of a surface at signed distance d, over an edge `h` mm wide. */
export function soft(d: number, h: number): number {
  const t = 0.5 - d / h;
  return t <= 0 ? 0 : t >= 1 ? 1 : t;
}

/** Distance from p to the segment a–b. */
export function segDist(px: number, py: number, pz: number, a: Vec3, b: Vec3): number {
  const ux = b[0] - a[0], uy = b[1] - a[1], uz = b[2] - a[2];
  const wx = px - a[0], wy = py - a[1], wz = pz - a[2];
  const uu = ux * ux + uy * uy + uz * uz;
  let t = uu > 0 ? (wx * ux + wy * uy + wz * uz) / uu : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  const dx = wx - t * ux, dy = wy - t * uy, dz = wz - t * uz;
  return Math.sqrt(dx * dx + dy * dy + dz * dz);
}

/** Rotation as a row-major 3×3 matrix from angles (radians) about z, then x. */
export function rotZX(az: number, ax: number): number[] {
  const cz = Math.cos(az), sz = Math.sin(az), cx = Math.cos(ax), sx = Math.sin(ax);
  // R = Rx · Rz
  return [cz, -sz, 0, cx * sz, cx * cz, -sx, sx * sz, sx * cz, cx];
}

/** An oriented ellipsoid: centre, semi-axes and a rotation taking world offsets into its frame (Rᵀ). */
export class Ellipsoid {
  readonly lo: Vec3;
  readonly hi: Vec3;
  constructor(readonly c: Vec3, readonly a: Vec3, readonly r: number[] = [1, 0, 0, 0, 1, 0, 0, 0, 1]) {
    const m = Math.max(a[0], a[1], a[2]);
    this.lo = [c[0] - m, c[1] - m, c[2] - m];
    this.hi = [c[0] + m, c[1] + m, c[2] + m];
  }

  dist(x: number, y: number, z: number): number {
    const dx = x - this.c[0], dy = y - this.c[1], dz = z - this.c[2];
    const r = this.r;
    // Rᵀ·d: local coordinates
    const lx = r[0]! * dx + r[3]! * dy + r[6]! * dz;
    const ly = r[1]! * dx + r[4]! * dy + r[7]! * dz;
    const lz = r[2]! * dx + r[5]! * dy + r[8]! * dz;
    return ellDist(lx, ly, lz, this.a[0], this.a[1], this.a[2]);
  }

  /** Normalised radius (1 on the surface). */
  rho(x: number, y: number, z: number): number {
    const dx = x - this.c[0], dy = y - this.c[1], dz = z - this.c[2];
    const r = this.r;
    const lx = (r[0]! * dx + r[3]! * dy + r[6]! * dz) / this.a[0];
    const ly = (r[1]! * dx + r[4]! * dy + r[7]! * dz) / this.a[1];
    const lz = (r[2]! * dx + r[5]! * dy + r[8]! * dz) / this.a[2];
    return Math.sqrt(lx * lx + ly * ly + lz * lz);
  }
}
