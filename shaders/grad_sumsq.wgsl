// Partial sums of squares of one gradient tensor for the global gradient norm: each workgroup
// strides over the tensor and writes one f32 partial into its slot (no atomics, so the final sum
// is taken in a fixed order and the norm is deterministic).
alias T = f32;

struct Params { n: u32, off: u32, slot: u32, pad: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<T>;
@group(0) @binding(2) var<storage, read_write> Partial: array<f32>;

override WG: u32 = 256u;
var<workgroup> acc: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let stride = nwg.x * WG;
  var s = 0.0;
  for (var i = wid.x * WG + lid; i < P.n; i += stride) {
    let v = f32(X[P.off + i]);
    s += v * v;
  }
  acc[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { acc[lid] += acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { Partial[P.slot + wid.x] = acc[0]; }
}
