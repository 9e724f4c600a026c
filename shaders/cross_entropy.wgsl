// Cross-entropy of logits X [rows, C] against i32 class targets, fused: per row loss = logsumexp(x) −
// x[target], and dx = (softmax(x) − onehot(target))·scale. One workgroup per row, or one invocation per
// row (the serial family, see src/kernels/rows.ts); T is the storage type,
// arithmetic and the saved statistics are f32.
// Targets equal to `ignore` contribute nothing. Other targets outside [0, C) are never used as an
// index (the read is clamped); they make that row's loss and gradient NaN.
// STATS (f32): [0, rows) per-row logsumexp; for reduced losses also [rows, 2·rows) per-row losses and
// [2·rows] the number of counted rows.
alias T = f32;

struct Params {
  rows: u32, c: u32, mode: u32, ignore: i32, // mode: 0 none, 1 sum, 2 mean
  x_off: u32, t_off: u32, g_off: u32, o_off: u32,
}
@group(0) @binding(0) var<uniform> P: Params;

override WG: u32 = 256u;
var<workgroup> red_m: array<f32, WG>;
var<workgroup> red_s: array<f32, WG>;

fn neg_inf() -> f32 { var b = 0xff800000u; return bitcast<f32>(b); }
fn nan_() -> f32 { var b = 0x7fc00000u; return bitcast<f32>(b); }

fn row_of(wid: vec3<u32>, nwg: vec3<u32>) -> u32 { return wid.y * nwg.x + wid.x; }

fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
  let m = max(a.x, b.x);
  let sa = select(a.y * exp(a.x - m), 0.0, a.y == 0.0);
  let sb = select(b.y * exp(b.x - m), 0.0, b.y == 0.0);
  return vec2<f32>(m, sa + sb);
}

fn reduce_lse(lid: u32, v: vec2<f32>) -> f32 {
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
  return red_m[0] + log(red_s[0]);
}

fn reduce_sum2(lid: u32, v: vec2<f32>) -> vec2<f32> {
  red_m[lid] = v.x;
  red_s[lid] = v.y;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      red_m[lid] += red_m[lid + s];
      red_s[lid] += red_s[lid + s];
    }
    workgroupBarrier();
  }
  return vec2<f32>(red_m[0], red_s[0]);
}

// 0: ignored row, 1: valid target, 2: out of range.
fn target_kind(t: i32) -> u32 {
  if (t == P.ignore) { return 0u; }
  if (t < 0 || t >= i32(P.c)) { return 2u; }
  return 1u;
}

// ---- forward, per row: (X, TGT) → OUT (per-row loss when mode is none) and STATS
@group(0) @binding(1) var<storage, read> X: array<T>;
@group(0) @binding(2) var<storage, read> TGT: array<i32>;
@group(0) @binding(3) var<storage, read_write> OUT: array<T>;
@group(0) @binding(4) var<storage, read_write> STATS: array<f32>;

@compute @workgroup_size(WG)
fn forward_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= P.rows) { return; }
  let xb = P.x_off + row * P.c;
  let ninf = neg_inf();
  var m = ninf;
  var s = 0.0;
  for (var j = lid; j < P.c; j += WG) {
    let v = f32(X[xb + j]);
    if (v > m) {
      s = s * exp(m - v) + 1.0;
      m = v;
    } else if (v != ninf) {
      s += exp(v - m);
    }
  }
  let lse = reduce_lse(lid, vec2<f32>(m, s));
  if (lid == 0u) { store_row_loss(row, xb, lse); }
}

// Writes a row's logsumexp and loss (per-row output, or into STATS for the reduction).
fn store_row_loss(row: u32, xb: u32, lse: f32) {
  let t = TGT[P.t_off + row];
  let kind = target_kind(t);
  let xt = f32(X[xb + u32(clamp(t, 0, i32(P.c) - 1))]);
  var loss = 0.0;
  if (kind == 1u) { loss = lse - xt; }
  if (kind == 2u) { loss = nan_(); }
  STATS[row] = lse;
  if (P.mode == 0u) { OUT[P.o_off + row] = T(loss); } else { STATS[P.rows + row] = loss; }
}

// ---- forward, reduction of the per-row losses: (STATS, TGT) → OUT[0] (sum, or mean over counted rows)
@group(0) @binding(1) var<storage, read_write> RS: array<f32>;
@group(0) @binding(2) var<storage, read> RT: array<i32>;
@group(0) @binding(3) var<storage, read_write> ROUT: array<T>;

@compute @workgroup_size(WG)
fn forward_reduce(@builtin(local_invocation_index) lid: u32) {
  var acc = vec2<f32>(0.0, 0.0);
  for (var i = lid; i < P.rows; i += WG) {
    acc += vec2<f32>(RS[P.rows + i], select(0.0, 1.0, target_kind(RT[P.t_off + i]) != 0u));
  }
  let r = reduce_sum2(lid, acc);
  if (lid == 0u) {
    RS[2u * P.rows] = r.y;
    // Mean over zero counted rows is 0/0 = NaN, as in PyTorch.
    ROUT[P.o_off] = T(select(r.x, r.x / r.y, P.mode == 2u));
  }
}

// ---- backward: (X, TGT, STATS, G) → DX
@group(0) @binding(1) var<storage, read> BX: array<T>;
@group(0) @binding(2) var<storage, read> BT: array<i32>;
@group(0) @binding(3) var<storage, read> BS: array<f32>;
@group(0) @binding(4) var<storage, read> BG: array<T>;
@group(0) @binding(5) var<storage, read_write> DX: array<T>;

@compute @workgroup_size(WG)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg);
  if (row >= P.rows) { return; }
  let xb = P.x_off + row * P.c;
  let db = P.o_off + row * P.c;
  let t = BT[P.t_off + row];
  let scale = row_scale(row, target_kind(t));
  let lse = BS[row];
  for (var j = lid; j < P.c; j += WG) {
    let p = exp(f32(BX[xb + j]) - lse);
    let onehot = select(0.0, 1.0, i32(j) == t);
    DX[db + j] = T((p - onehot) * scale);
  }
}

// dx's scale for a row: the loss gradient (per row or shared), / counted rows for 'mean'; 0 for an
// ignored row, NaN for an out-of-range target.
fn row_scale(row: u32, kind: u32) -> f32 {
  var scale = f32(BG[P.g_off]);
  if (P.mode == 0u) { scale = f32(BG[P.g_off + row]); }
  if (P.mode == 2u) { scale /= BS[2u * P.rows]; }
  if (kind == 0u) { scale = 0.0; }
  if (kind == 2u) { scale = nan_(); }
  return scale;
}

// ---- serial family: one invocation per row, WG rows per workgroup, no workgroup memory or barriers
// (CPU adapters, short rows). The max takes its own pass, and the sum runs over blocks of SBLK
// elements so the f32 rounding error grows like SBLK + c/SBLK.
const SBLK = 32u;
fn serial_row(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.y * nwg.x + wid.x) * WG + lid; }

@compute @workgroup_size(WG)
fn forward_rows_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = serial_row(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let xb = P.x_off + row * P.c;
  var m = neg_inf();
  for (var j = 0u; j < P.c; j++) { m = max(m, f32(X[xb + j])); }
  var s = 0.0;
  for (var j0 = 0u; j0 < P.c; j0 += SBLK) {
    var p = 0.0;
    for (var j = j0; j < min(P.c, j0 + SBLK); j++) { p += exp(f32(X[xb + j]) - m); }
    s += p;
  }
  store_row_loss(row, xb, m + log(s));
}

@compute @workgroup_size(WG)
fn backward_serial(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = serial_row(wid, nwg, lid);
  if (row >= P.rows) { return; }
  let xb = P.x_off + row * P.c;
  let db = P.o_off + row * P.c;
  let t = BT[P.t_off + row];
  let scale = row_scale(row, target_kind(t));
  let lse = BS[row];
  for (var j = 0u; j < P.c; j++) {
    let p = exp(f32(BX[xb + j]) - lse);
    let onehot = select(0.0, 1.0, i32(j) == t);
    DX[db + j] = T((p - onehot) * scale);
  }
}
