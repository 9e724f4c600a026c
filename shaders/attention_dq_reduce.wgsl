// dQ = scale · Σ_g partial_g after the fused backward (attention_bwd_fused*.wgsl): one invocation per
// (output row, head, d) of the heads h0 … h0+nh−1, written where the query gradients live (patch rows,
// then the prefix rows).
alias T = f32;
const D: u32 = {{D}}u;
const NV: u32 = {{NV}}u;
const WG: u32 = 64u;

struct Params {
  n: u32, nh: u32, h0: u32, groups: u32,
  outRows: u32, T: u32, pad: u32, scale: f32,
  gq: vec4<u32>, gpq: vec4<u32>,
}
@group(0) @binding(0) var<uniform> U: Params;
@group(0) @binding(1) var<storage, read> SP: array<f32>;
@group(0) @binding(2) var<storage, read_write> G: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * WG + lid;
  if (idx >= U.n) { return; }
  let rh = idx / D;
  let d = idx - rh * D;
  let r = rh / U.nh;
  let hl = rh - r * U.nh;
  // Partial layout: [groups, nh, output rows, 4·NV] f32.
  let stride = U.nh * U.outRows * 4u * NV;
  var a = (hl * U.outRows + r) * 4u * NV + d;
  var acc = 0.0;
  for (var g = 0u; g < U.groups; g++) {
    acc += SP[a];
    a += stride;
  }
  let h = U.h0 + hl;
  var dst: u32;
  if (r < U.T) { dst = U.gq.x + r * U.gq.y + h * U.gq.z + d; } else { dst = U.gpq.x + (r - U.T) * U.gpq.y + h * U.gpq.z + d; }
  G[dst] = T(acc * U.scale);
}
