// Reduction of a contiguous [outer, R, inner] tensor over R to [outer, inner].
// OP: 0 sum (times alpha, so mean = sum with alpha = 1/R), 1 max.
// Rows (inner == 1): one workgroup per row, strided partial sums then a tree in workgroup memory.
// Columns (inner > 1): one thread per (outer, inner) walks R; reads of neighbouring threads coalesce.
alias T = f32;

struct Params { outer: u32, r: u32, inner: u32, op: u32, alpha: f32, in_off: u32, out_off: u32, pad: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<T>;
@group(0) @binding(2) var<storage, read_write> Y: array<T>;

override WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

fn combine(a: f32, b: f32) -> f32 {
  if (P.op == 1u) { return max(a, b); }
  return a + b;
}
fn identity() -> f32 {
  var ninf = 0xff800000u; // not a const-expression: WGSL rejects non-finite constants
  if (P.op == 1u) { return bitcast<f32>(ninf); }
  return 0.0;
}
fn finish(v: f32) -> f32 {
  if (P.op == 0u) { return v * P.alpha; }
  return v;
}

@compute @workgroup_size(WG)
fn rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= P.outer) { return; }
  let base = P.in_off + row * P.r;
  var acc = identity();
  for (var j = lid; j < P.r; j += WG) { acc = combine(acc, f32(X[base + j])); }
  partial[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] = combine(partial[lid], partial[lid + s]); }
    workgroupBarrier();
  }
  if (lid == 0u) { Y[P.out_off + row] = T(finish(partial[0])); }
}

@compute @workgroup_size(WG)
fn cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= P.outer * P.inner) { return; }
  let o = i / P.inner;
  let c = i % P.inner;
  var idx = P.in_off + o * P.r * P.inner + c;
  var acc = identity();
  for (var j = 0u; j < P.r; j++) {
    acc = combine(acc, f32(X[idx]));
    idx += P.inner;
  }
  Y[P.out_off + i] = T(finish(acc));
}
