// Backward pre-pass: Di = rowsum(dO ∘ O) per (output row, head), stored next to the saved log-sum-exp
// as (lse, Di) pairs so the dq/dkdv kernels read both with one binding.
alias T = f32;
const D: u32 = {{D}}u;
const WG: u32 = 64u;

struct Params { n: u32, H: u32, pad0: u32, pad1: u32, go: vec4<u32> }
@group(0) @binding(0) var<uniform> U: Params;
@group(0) @binding(1) var<storage, read> O: array<T>;
@group(0) @binding(2) var<storage, read> LSE: array<f32>;
@group(0) @binding(3) var<storage, read> GO: array<T>;
@group(0) @binding(4) var<storage, read_write> ST: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * WG + lid;
  if (idx >= U.n) { return; }
  let r = idx / U.H;
  let h = idx - r * U.H;
  let gb = U.go.x + r * U.go.y + h * U.go.z;
  var acc = 0.0;
  for (var d = 0u; d < D; d++) { acc += f32(GO[gb + d]) * f32(O[idx * D + d]); }
  ST[2u * idx] = LSE[idx];
  ST[2u * idx + 1u] = acc;
}
