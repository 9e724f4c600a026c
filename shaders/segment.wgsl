// Row segments of a contiguous [rows, F] tensor (HLIP prefix tokens when windows merge or split).
// expand: output row f copies input row TB[2f] (scaled by 1/TB[2f+1] with MEAN: the backward of a mean).
// reduce: output row s sums input rows TB[2s] … TB[2s] + TB[2s+1] − 1 (divided by the count with MEAN).
alias T = f32;

struct Params { n: u32, F: u32, mean: u32, xoff: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> TB: array<u32>;
@group(0) @binding(2) var<storage, read> X: array<T>;
@group(0) @binding(3) var<storage, read_write> Y: array<T>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn expand(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * WG + lid;
  if (idx >= P.n) { return; }
  let r = idx / P.F;
  let e = idx - r * P.F;
  var v = f32(X[P.xoff + TB[2u * r] * P.F + e]);
  if (P.mean != 0u) { v = v / f32(TB[2u * r + 1u]); }
  Y[idx] = T(v);
}

@compute @workgroup_size(WG)
fn reduce(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * WG + lid;
  if (idx >= P.n) { return; }
  let r = idx / P.F;
  let e = idx - r * P.F;
  let start = TB[2u * r];
  let count = TB[2u * r + 1u];
  var acc = 0.0;
  for (var k = 0u; k < count; k++) { acc += f32(X[P.xoff + (start + k) * P.F + e]); }
  if (P.mean != 0u) { acc = acc / f32(max(count, 1u)); }
  Y[idx] = T(acc);
}
