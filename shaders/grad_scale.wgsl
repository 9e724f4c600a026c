// In-place scaling of one gradient tensor by a coefficient that stays on the GPU (the clip
// coefficient written by grad_norm.wgsl), so clipping needs no readback.
alias T = f32;

struct Params { n: u32, off: u32, coef: u32, pad: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> G: array<T>;
@group(0) @binding(2) var<storage, read> C: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= P.n) { return; }
  G[P.off + i] = T(f32(G[P.off + i]) * C[P.coef]);
}
