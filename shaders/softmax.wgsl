// Softmax and log-softmax over the last axis of a contiguous [rows, n] tensor: one workgroup per row,
// or one invocation per row (the serial family, see src/kernels/rows.ts).
// Each thread keeps a running (max, Σ exp(x − max)) over its strided share of the row; a tree in
// workgroup memory merges them, so the row is read once for the statistics and once for the output.
// T is the storage type; all arithmetic is f32.
alias T = f32;

struct Params {
  rows: u32, n: u32, log_: u32, pad: u32,
  off0: u32, off1: u32, off2: u32, pad2: u32, // element offsets of the bound tensors, in binding order
}
@group(0) @binding(0) var<uniform> P: Params;

override WG: u32 = 256u;
var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;

// Not a const-expression: WGSL rejects non-finite constants.
fn neg_inf() -> f32 { var b = 0xff800000u; return bitcast<f32>(b); }

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.y * nwg.x + wid.x; }

// Merges two (max, Σ exp(x − max)) pairs of disjoint sets. Empty sets are (-inf, 0) and contribute 0
// without evaluating exp(-inf − -inf).
fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  let sa = select(a.y * exp(a.x - m), 0.0, a.y == 0.0);
  let sb = select(b.y * exp(b.x - m), 0.0, b.y == 0.0);
  return vec2<f32>(m, sa + sb);
}

fn reduce_lse(lid: u32, v: vec2<f32>) -> vec2<f32> {
  red_m[lid] = v.x;
  red_s[lid] = v.y;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let r = merge(vec2<f32>(red_m[lid], red_s[lid]), vec2<f32>(red_m[lid + s], red_s[lid + s]));
      red_m[lid] = r.x;
      red_s[lid] = r.y;
    }
    workgroupBarrier();
  }
  return vec2<f32>(red_m[0], red_s[0]);
}

fn reduce_sum(lid: u32, v: f32) -> f32 {
  red_s[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red_s[lid] += red_s[lid + s]; }
    workgroupBarrier();
  }
  return red_s[0];
}

// ---- forward: X → Y
@group(0) @binding(1) var<storage, read> X: array<T>;
@group(0) @binding(2) var<storage, read_write> Y: array<T>;

@compute @workgroup_size(WG)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= P.rows) { return; }
  let xb = P.off0 + row * P.n;
  let yb = P.off1 + row * P.n;
  let ninf = neg_inf();
  var m = ninf;
  var s = 0.0;
  for (var j = lid; j < P.n; j += WG) {
    let v = f32(X[xb + j]);
    // One exp per element: rescale the running sum only when the max grows.
    if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
    } else if (v != ninf) {
      s += exp(v - m);
    }
  }
  let r = reduce_lse(lid, vec2<f32>(m, s));
  if (P.log_ != 0u) {
    let ls = log(r.y);
    for (var j = lid; j < P.n; j += WG) { Y[yb + j] = T((f32(X[xb + j]) - r.x) - ls); }
  } else {
    let inv = 1.0 / r.y;
    for (var j = lid; j < P.n; j += WG) { Y[yb + j] = T(exp(f32(X[xb + j]) - r.x) * inv); }
  }
}

// ---- backward: (Y, G) → DX. softmax: dx = y·(g − Σ g·y); log-softmax: dx = g − exp(y)·Σ g.
@group(0) @binding(1) var<storage, read> BY: array<T>;
@group(0) @binding(2) var<storage, read> BG: array<T>;
@group(0) @binding(3) var<storage, read_write> DX: array<T>;

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= P.rows) { return; }
  let yb = P.off0 + row * P.n;
  let gb = P.off1 + row * P.n;
  let db = P.off2 + row * P.n;
  let lg = P.log_ != 0u;
  var acc = 0.0;
  for (var j = lid; j < P.n; j += WG) {
    let g = f32(BG[gb + j]);
    acc += select(g * f32(BY[yb + j]), g, lg);
  }
  let t = reduce_sum(lid, acc);
  for (var j = lid; j < P.n; j += WG) {
    let g = f32(BG[gb + j]);
    let y = f32(BY[yb + j]);
    DX[db + j] = T(select(y * (g - t), g - exp(y) * t, lg));
  }
}

// ---- serial family: one invocation per row, WG rows per workgroup, no workgroup memory or barriers
// (CPU adapters, short rows). The max takes its own pass (a running rescale would branch per element),
// and sums run over blocks of SBLK elements so the f32 rounding error grows like SBLK + n/SBLK.
const SBLK = 32u;
fn serial_row(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.y * nwg.x + wid.x) * WG + lid; }

@compute @workgroup_size(WG)
fn forward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = serial_row(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let xb = P.off0 + row * P.n;
  let yb = P.off1 + row * P.n;
  var m = neg_inf();
  for (var j = 0u; j < P.n; j++) { m = max(m, f32(X[xb + j])); }
  // exp(-inf − m) = 0 for masked entries once any entry is finite.
  var s = 0.0;
  for (var j0 = 0u; j0 < P.n; j0 += SBLK) {
    var p = 0.0;
    for (var j = j0; j < min(P.n, j0 + SBLK); j++) { p += exp(f32(X[xb + j]) - m); }
    s += p;
  }
  if (P.log_ != 0u) {
    let ls = log(s);
    for (var j = 0u; j < P.n; j++) { Y[yb + j] = T((f32(X[xb + j]) - m) - ls); }
  } else {
    let inv = 1.0 / s;
    for (var j = 0u; j < P.n; j++) { Y[yb + j] = T(exp(f32(X[xb + j]) - m) * inv); }
  }
}

@compute @workgroup_size(WG)
fn backward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = serial_row(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let yb = P.off0 + row * P.n;
  let gb = P.off1 + row * P.n;
  let db = P.off2 + row * P.n;
  let lg = P.log_ != 0u;
  var t = 0.0;
  for (var j0 = 0u; j0 < P.n; j0 += SBLK) {
    var p = 0.0;
    for (var j = j0; j < min(P.n, j0 + SBLK); j++) {
      let g = f32(BG[gb + j]);
      p += select(g * f32(BY[yb + j]), g, lg);
    }
    t += p;
  }
  for (var j = 0u; j < P.n; j++) {
    let g = f32(BG[gb + j]);
    let y = f32(BY[yb + j]);
    DX[db + j] = T(select(y * (g - t), g - exp(y) * t, lg));
  }
}
