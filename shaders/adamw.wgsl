// One fused AdamW step for one parameter tensor (torch.optim.AdamW semantics): decoupled weight
// decay, moment updates, bias-corrected step, all in one pass over param, grad, m and v. The param is
// updated in place (parameters are persistent; the optimizer owns their storage during step()).
// T is the parameter/gradient storage type; moments and arithmetic are f32.
alias T = f32;

struct Params {
  n: u32,
  p_off: u32,          // element offsets of param and grad
  g_off: u32,
  pad0: u32,
  decay: f32,          // 1 − lr·weight_decay
  beta1: f32,
  beta2: f32,
  eps: f32,
  step_size: f32,      // lr / (1 − beta1^t)
  inv_sqrt_bc2: f32,   // 1 / sqrt(1 − beta2^t)
  // 1 − beta computed in float64 on the host, as torch does: f32(1) − f32(0.999) is off by 1.3e-5.
  c1: f32,
  c2: f32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> W: array<T>;
@group(0) @binding(2) var<storage, read> G: array<T>;
@group(0) @binding(3) var<storage, read_write> M: array<f32>;
@group(0) @binding(4) var<storage, read_write> V: array<f32>;

override WG: u32 = 256u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * WG + lid;
  if (i >= P.n) { return; }
  let g = f32(G[P.g_off + i]);
  let m = P.beta1 * M[i] + P.c1 * g;
  let v = P.beta2 * V[i] + P.c2 * g * g;
  M[i] = m;
  V[i] = v;
  let p = f32(W[P.p_off + i]) * P.decay;
  W[P.p_off + i] = T(p - P.step_size * m / (sqrt(v) * P.inv_sqrt_bc2 + P.eps));
}
