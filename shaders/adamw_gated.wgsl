// AdamW (as adamw.wgsl) for a step decided on the GPU: every gradient is multiplied by C[c_off] (the
// GradScaler's 1/scale × clip coefficient) and the whole step is skipped when C[c_off + 1] ≠ 0 (an
// inf/NaN gradient). The step count lives on the GPU too (Steps[k], advanced by adamw_steps.wgsl), so
// a skipped step does not advance the bias corrections, as torch's skipped optimizer.step().
alias T = f32;

struct Params {
  n: u32,
  p_off: u32,
  g_off: u32,
  k: u32,              // this parameter's slot in Steps
  c_off: u32,
  pad0: u32,
  pad1: u32,
  pad2: u32,
  decay: f32,          // 1 − lr·weight_decay
  beta1: f32,
  beta2: f32,
  eps: f32,
  lr: f32,
  c1: f32,             // 1 − beta1, 1 − beta2 (float64 on the host)
  c2: f32,
  pad3: f32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> W: array<T>;
@group(0) @binding(2) var<storage, read> G: array<T>;
@group(0) @binding(3) var<storage, read_write> M: array<f32>;
@group(0) @binding(4) var<storage, read_write> V: array<f32>;
@group(0) @binding(5) var<storage, read> Steps: array<f32>;
@group(0) @binding(6) var<storage, read> C: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= P.n || C[P.c_off + 1u] != 0.0) { return; }
  let t = Steps[P.k] + 1.0;
  let step_size = P.lr / (1.0 - pow(P.beta1, t));
  let inv_sqrt_bc2 = 1.0 / sqrt(1.0 - pow(P.beta2, t));
  let g = f32(G[P.g_off + i]) * C[P.c_off];
  let m = P.beta1 * M[i] + P.c1 * g;
  let v = P.beta2 * V[i] + P.c2 * g * g;
  M[i] = m;
  V[i] = v;
  let p = f32(W[P.p_off + i]) * P.decay;
  W[P.p_off + i] = T(p - step_size * m / (sqrt(v) * inv_sqrt_bc2 + P.eps));
}
