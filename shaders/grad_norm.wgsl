// Global gradient norm from the partial sums (one workgroup, fixed order) and torch's clip
// coefficient min(max_norm / (norm + 1e-6), 1): Out[o] = norm, Out[o + 1] = coefficient.
struct Params { count: u32, clip: u32, max_norm: f32, p_off: u32, o_off: u32, pad0: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> Out: array<f32>;

override WG: u32 = 256u;
var<workgroup> acc: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < P.count; i += WG) { s += Partial[P.p_off + i]; }
  acc[lid] = s;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (lid < k) { acc[lid] += acc[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let norm = sqrt(acc[0]);
    var coef = 1.0;
    if (P.clip != 0u) { coef = min(P.max_norm / (norm + 1e-6), 1.0); }
    Out[P.o_off] = norm;
    Out[P.o_off + 1u] = coef;
  }
}
