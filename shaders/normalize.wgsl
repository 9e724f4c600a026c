// L2 normalisation over the last axis of a contiguous [rows, n] tensor (torch.nn.functional.normalize):
// y = x / max(‖x‖, eps). One workgroup per row, or one invocation per row (the serial family, see
// src/kernels/rows.ts); the sum of squares is accumulated in f32, so half
// precision storage neither overflows nor underflows it. The backward recomputes ‖x‖ (one extra read
// of x). (No half type names in comments: the pipeline cache scans the source to add `enable`s.)
alias T = f32;

struct Params { rows: u32, n: u32, eps: f32, pad: u32, off0: u32, off1: u32, off2: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> P: Params;

override WG: u32 = 256u;
var<workgroup> red_a: array<f32, WG>;
var<workgroup> red_b: array<f32, WG>;

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.y * nwg.x + wid.x; }

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

@group(0) @binding(1) var<storage, read> X: array<T>;
@group(0) @binding(2) var<storage, read_write> Y: array<T>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= P.rows) { return; }
  let xb = P.off0 + row * P.n;
  let yb = P.off1 + row * P.n;
  var q = 0.0;
  for (var j = lid; j < P.n; j += WG) {
    let v = f32(X[xb + j]);
    q += v * v;
  }
  let inv = 1.0 / max(sqrt(reduce_sum2(lid, vec2<f32>(q, 0.0)).x), P.eps);
  for (var j = lid; j < P.n; j += WG) { Y[yb + j] = T(f32(X[xb + j]) * inv); }
}

// dx = g/d − x·(Σ g·x)/d³ with d = ‖x‖ when ‖x‖ ≥ eps; dx = g/eps below (the clamp is flat there).
@group(0) @binding(1) var<storage, read> BX: array<T>;
@group(0) @binding(2) var<storage, read> BG: array<T>;
@group(0) @binding(3) var<storage, read_write> DX: array<T>;

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= P.rows) { return; }
  let xb = P.off0 + row * P.n;
  let gb = P.off1 + row * P.n;
  let db = P.off2 + row * P.n;
  var acc = vec2<f32>(0.0, 0.0);
  for (var j = lid; j < P.n; j += WG) {
    let v = f32(BX[xb + j]);
    acc += vec2<f32>(v * v, v * f32(BG[gb + j]));
  }
  let r = reduce_sum2(lid, acc);
  let norm = sqrt(r.x);
  let d = max(norm, P.eps);
  let inv = 1.0 / d;
  let k = select(0.0, r.y * inv * inv * inv, norm >= P.eps);
  for (var j = lid; j < P.n; j += WG) {
    DX[db + j] = T(f32(BG[gb + j]) * inv - f32(BX[xb + j]) * k);
  }
}

// ---- serial family: one invocation per row, WG rows per workgroup, no workgroup memory or barriers
// (CPU adapters, short rows). Sums run over blocks of SBLK elements so the f32 rounding error grows
// like SBLK + n/SBLK.
const SBLK = 32u;
fn serial_row(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.y * nwg.x + wid.x) * WG + lid; }

@compute @workgroup_size(WG)
fn forward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = serial_row(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let xb = P.off0 + row * P.n;
  let yb = P.off1 + row * P.n;
  var q = 0.0;
  for (var j0 = 0u; j0 < P.n; j0 += SBLK) {
    var p = 0.0;
    for (var j = j0; j < min(P.n, j0 + SBLK); j++) {
      let v = f32(X[xb + j]);
      p += v * v;
    }
    q += p;
  }
  let inv = 1.0 / max(sqrt(q), P.eps);
  for (var j = 0u; j < P.n; j++) { Y[yb + j] = T(f32(X[xb + j]) * inv); }
}

@compute @workgroup_size(WG)
fn backward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = serial_row(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let xb = P.off0 + row * P.n;
  let gb = P.off1 + row * P.n;
  let db = P.off2 + row * P.n;
  var r = vec2<f32>(0.0, 0.0);
  for (var j0 = 0u; j0 < P.n; j0 += SBLK) {
    var p = vec2<f32>(0.0, 0.0);
    for (var j = j0; j < min(P.n, j0 + SBLK); j++) {
      let v = f32(BX[xb + j]);
      p += vec2<f32>(v * v, v * f32(BG[gb + j]));
    }
    r += p;
  }
  let norm = sqrt(r.x);
  let d = max(norm, P.eps);
  let inv = 1.0 / d;
  let k = select(0.0, r.y * inv * inv * inv, norm >= P.eps);
  for (var j = 0u; j < P.n; j++) {
    DX[db + j] = T(f32(BG[gb + j]) * inv - f32(BX[xb + j]) * k);
  }
}
