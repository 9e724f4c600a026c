// Advances the GPU-side AdamW step counts of the parameters that took part in a step, unless the step
// was skipped (C[c_off + 1] ≠ 0). Runs after every adamw_gated dispatch of the step.
struct Params { count: u32, c_off: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> Steps: array<f32>;
@group(0) @binding(2) var<storage, read> Idx: array<i32>;
@group(0) @binding(3) var<storage, read> C: array<f32>;

override WG: u32 = 64u;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let j = gid.x;
  if (j >= P.count || C[P.c_off + 1u] != 0.0) { return; }
  let k = u32(Idx[j]);
  Steps[k] = Steps[k] + 1.0;
}
