// LayerNorm over the last axis of a contiguous [rows, n] tensor, one workgroup per row or one invocation
// per row (the serial family; see src/kernels/rows.ts) for forward and dx,
// plus a two-stage column reduction for dweight/dbias. Statistics are two-pass on data shifted by the
// row's first element, so rows with a large mean keep their small variance. The mean is kept as
// shift + delta and x − mean is evaluated as (x − shift) − delta: x − shift is exact for x near the
// shift, so xhat keeps f32 accuracy even when |mean| ≫ std. T is the storage type; all arithmetic and
// the saved statistics (shift, delta, rstd per row) are f32.
alias T = f32;

struct Params {
  rows: u32, n: u32, flags: u32, eps: f32, // flags: bit 0 weight present, bit 1 bias present
  x_off: u32, w_off: u32, b_off: u32, g_off: u32,
  y_off: u32, rpc: u32, chunks: u32, pad: u32, // rpc: rows per chunk of the column reduction
}
@group(0) @binding(0) var<uniform> P: Params;

override WG: u32 = 256u;
var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.y * nwg.x + wid.x; }

fn reduce_sum(lid: u32, v: f32) -> f32 {
  red_a[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red_a[lid] += red_a[lid + s]; }
    workgroupBarrier();
  }
  let r = red_a[0];
  workgroupBarrier(); // everyone has read the result before red_a is reused
  return r;
}

fn reduce_sum2(lid: u32, v: vec2<f32>) -> vec2<f32> {
  red_a[lid] = v.x;
  red_b[lid] = v.y;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red_a[lid] += red_a[lid + s];
      red_b[lid] += red_b[lid + s];
    }
    workgroupBarrier();
  }
  return vec2<f32>(red_a[0], red_b[0]);
}

// x − mean, with mean = shift + delta.
fn centered(x: f32, shift: f32, delta: f32) -> f32 { return (x - shift) - delta; }

// ---- forward: (X, W, B) → Y and STATS[3·row ..] = (shift, delta, rstd)
@group(0) @binding(1) var<storage, read> X: array<T>;
@group(0) @binding(2) var<storage, read> W: array<T>;
@group(0) @binding(3) var<storage, read> B: array<T>;
@group(0) @binding(4) var<storage, read_write> Y: array<T>;
@group(0) @binding(5) var<storage, read_write> STATS: array<f32>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= P.rows) { return; }
  let xb = P.x_off + row * P.n;
  let yb = P.y_off + row * P.n;
  let nf = f32(P.n);
  let shift = f32(X[xb]);
  var d = 0.0;
  for (var j = lid; j < P.n; j += WG) { d += f32(X[xb + j]) - shift; }
  let delta = reduce_sum(lid, d) / nf;
  var q = 0.0;
  for (var j = lid; j < P.n; j += WG) {
    let c = centered(f32(X[xb + j]), shift, delta);
    q += c * c;
  }
  let rstd = inverseSqrt(reduce_sum(lid, q) / nf + P.eps);
  let hw = (P.flags & 1u) != 0u;
  let hb = (P.flags & 2u) != 0u;
  for (var j = lid; j < P.n; j += WG) {
    var v = centered(f32(X[xb + j]), shift, delta) * rstd;
    if (hw) { v *= f32(W[P.w_off + j]); }
    if (hb) { v += f32(B[P.b_off + j]); }
    Y[yb + j] = T(v);
  }
  if (lid == 0u) {
    STATS[3u * row] = shift;
    STATS[3u * row + 1u] = delta;
    STATS[3u * row + 2u] = rstd;
  }
}

// ---- backward dx: xhat = (x − mean)·rstd, gy = g·w; dx = rstd·(gy − mean(gy) − xhat·mean(gy·xhat))
@group(0) @binding(1) var<storage, read> BX: array<T>;
@group(0) @binding(2) var<storage, read> BW: array<T>;
@group(0) @binding(3) var<storage, read> BG: array<T>;
@group(0) @binding(4) var<storage, read> BS: array<f32>;
@group(0) @binding(5) var<storage, read_write> DX: array<T>;

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= P.rows) { return; }
  let xb = P.x_off + row * P.n;
  let gb = P.g_off + row * P.n;
  let db = P.y_off + row * P.n;
  let shift = BS[3u * row];
  let delta = BS[3u * row + 1u];
  let rstd = BS[3u * row + 2u];
  let hw = (P.flags & 1u) != 0u;
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = lid; j < P.n; j += WG) {
    var gy = f32(BG[gb + j]);
    if (hw) { gy *= f32(BW[P.w_off + j]); }
    let xh = centered(f32(BX[xb + j]), shift, delta) * rstd;
    acc += vec2<f32>(gy, gy * xh);
  }
  let s = reduce_sum2(lid, acc) / f32(P.n);
  for (var j = lid; j < P.n; j += WG) {
    var gy = f32(BG[gb + j]);
    if (hw) { gy *= f32(BW[P.w_off + j]); }
    let xh = centered(f32(BX[xb + j]), shift, delta) * rstd;
    DX[db + j] = T(rstd * (gy - s.x - xh * s.y));
  }
}

// ---- serial family: one invocation per row, WG rows per workgroup, no workgroup memory or barriers
// (CPU adapters, short rows). Same statistics and formulas as above; sums run over blocks of SBLK
// elements whose partial sums are then added, so the f32 rounding error grows like SBLK + n/SBLK
// rather than n.
const SBLK = 32u;
fn serial_row(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.y * nwg.x + wid.x) * WG + lid; }

@compute @workgroup_size(WG)
fn forward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = serial_row(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let xb = P.x_off + row * P.n;
  let yb = P.y_off + row * P.n;
  let nf = f32(P.n);
  let shift = f32(X[xb]);
  var d = 0.0;
  for (var j0 = 0u; j0 < P.n; j0 += SBLK) {
    var p = 0.0;
    for (var j = j0; j < min(P.n, j0 + SBLK); j++) { p += f32(X[xb + j]) - shift; }
    d += p;
  }
  let delta = d / nf;
  var q = 0.0;
  for (var j0 = 0u; j0 < P.n; j0 += SBLK) {
    var p = 0.0;
    for (var j = j0; j < min(P.n, j0 + SBLK); j++) {
      let c = centered(f32(X[xb + j]), shift, delta);
      p += c * c;
    }
    q += p;
  }
  let rstd = inverseSqrt(q / nf + P.eps);
  let hw = (P.flags & 1u) != 0u;
  let hb = (P.flags & 2u) != 0u;
  for (var j = 0u; j < P.n; j++) {
    var v = centered(f32(X[xb + j]), shift, delta) * rstd;
    if (hw) { v *= f32(W[P.w_off + j]); }
    if (hb) { v += f32(B[P.b_off + j]); }
    Y[yb + j] = T(v);
  }
  STATS[3u * row] = shift;
  STATS[3u * row + 1u] = delta;
  STATS[3u * row + 2u] = rstd;
}

@compute @workgroup_size(WG)
fn backward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = serial_row(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let xb = P.x_off + row * P.n;
  let gb = P.g_off + row * P.n;
  let db = P.y_off + row * P.n;
  let shift = BS[3u * row];
  let delta = BS[3u * row + 1u];
  let rstd = BS[3u * row + 2u];
  let hw = (P.flags & 1u) != 0u;
  var acc = vec2<f32>(0.0, 0.0);
  for (var j0 = 0u; j0 < P.n; j0 += SBLK) {
    var p = vec2<f32>(0.0, 0.0);
    for (var j = j0; j < min(P.n, j0 + SBLK); j++) {
      var gy = f32(BG[gb + j]);
      if (hw) { gy *= f32(BW[P.w_off + j]); }
      let xh = centered(f32(BX[xb + j]), shift, delta) * rstd;
      p += vec2<f32>(gy, gy * xh);
    }
    acc += p;
  }
  let s = acc / f32(P.n);
  for (var j = 0u; j < P.n; j++) {
    var gy = f32(BG[gb + j]);
    if (hw) { gy *= f32(BW[P.w_off + j]); }
    let xh = centered(f32(BX[xb + j]), shift, delta) * rstd;
    DX[db + j] = T(rstd * (gy - s.x - xh * s.y));
  }
}

// ---- dweight/dbias, stage 1: PART[chunk·n + c] = Σ g·xhat, PART[(chunks + chunk)·n + c] = Σ g over
// the chunk's rows. One thread per column, so neighbouring threads read neighbouring elements.
@group(0) @binding(1) var<storage, read> PX: array<T>;
@group(0) @binding(2) var<storage, read> PG: array<T>;
@group(0) @binding(3) var<storage, read> PS: array<f32>;
@group(0) @binding(4) var<storage, read_write> PART: array<f32>;

@compute @workgroup_size(WG)
fn dparams_partial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x * WG + lid;
  if (c >= P.n) { return; }
  let chunk = wid.y;
  let r0 = chunk * P.rpc;
  let r1 = min(P.rows, r0 + P.rpc);
  var aw = 0.0;
  var ab = 0.0;
  for (var r = r0; r < r1; r++) {
    let g = f32(PG[P.g_off + r * P.n + c]);
    let xh = centered(f32(PX[P.x_off + r * P.n + c]), PS[3u * r], PS[3u * r + 1u]) * PS[3u * r + 2u];
    aw += g * xh;
    ab += g;
  }
  PART[chunk * P.n + c] = aw;
  PART[(P.chunks + chunk) * P.n + c] = ab;
}

// ---- dweight/dbias, stage 2: sums the chunks.
@group(0) @binding(1) var<storage, read> FP: array<f32>;
@group(0) @binding(2) var<storage, read_write> DW: array<T>;
@group(0) @binding(3) var<storage, read_write> DB: array<T>;

@compute @workgroup_size(WG)
fn dparams_final(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x * WG + lid;
  if (c >= P.n) { return; }
  var aw = 0.0;
  var ab = 0.0;
  for (var k = 0u; k < P.chunks; k++) {
    aw += FP[k * P.n + c];
    ab += FP[(P.chunks + k) * P.n + c];
  }
  DW[c] = T(aw);
  DB[c] = T(ab);
}
