// Loss-scaled gradients (torch.amp.GradScaler) in one workgroup, from the grad_sumsq partials: the
// global norm of the unscaled gradients, the inf/NaN check (a non-finite sum of squares means some
// gradient is inf or NaN), the coefficient AdamW multiplies every gradient by (1/scale, times the clip
// coefficient; 0 on overflow) and the scale update (_amp_update_scale_). No readback anywhere.
//   Out[o] = norm, Out[o + 1] = coefficient, Out[o + 2] = 1 when the step must be skipped, Out[o + 3] = scale used.
//   S = [scale, growth tracker, last step's skip flag] (updated in place for the next step).
struct Params { count: u32, clip: u32, max_norm: f32, p_off: u32, o_off: u32, interval: u32, growth: f32, backoff: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> Out: array<f32>;
@group(0) @binding(3) var<storage, read_write> S: array<f32>;

override WG: u32 = 256u;
var<workgroup> acc: array<f32, WG>;

// Exponent all ones: inf or NaN (bit test, immune to fast-math assumptions about NaN compares).
fn finite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }

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
    let total = acc[0];
    let scale = S[0];
    let found = !finite(total);
    let inv = 1.0 / scale;
    let norm = sqrt(total) * inv;
    var coef = inv;
    if (P.clip != 0u) { coef = inv * min(P.max_norm / (norm + 1e-6), 1.0); }
    if (found) { coef = 0.0; }
    Out[P.o_off] = norm;
    Out[P.o_off + 1u] = coef;
    Out[P.o_off + 2u] = select(0.0, 1.0, found);
    Out[P.o_off + 3u] = scale;
    if (found) {
      S[0] = scale * P.backoff;
      S[1] = 0.0;
    } else {
      let tracker = S[1] + 1.0;
      if (tracker >= f32(P.interval)) {
        let grown = scale * P.growth;
        if (finite(grown)) { S[0] = grown; }
        S[1] = 0.0;
      } else {
        S[1] = tracker;
      }
    }
    S[2] = select(0.0, 1.0, found);
  }
}
