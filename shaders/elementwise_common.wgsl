// Shared by the unary, binary and cast kernels: the uniform block of their strided addressing and
// the math helpers their expressions use. T is the storage type; all arithmetic is f32.
alias T = f32;

struct Params {
  n: u32, rank: u32, alpha: f32, beta: f32, // n: elements (tiles for tiled launches)
  offs: vec4<u32>,            // element offsets of out, a, b
  seed: vec4<u32>,            // RNG key (x, y) and counter base (z)
  shape: array<vec4<u32>, 2>,
  so: array<vec4<u32>, 2>,    // strides of out, a, b (0 where broadcast)
  sa: array<vec4<u32>, 2>,
  sb: array<vec4<u32>, 2>,
}
@group(0) @binding(0) var<uniform> P: Params;

// WG: invocations per workgroup; K: elements per invocation. TR × QC: tile shape (rows, column
// chunks) of the tiled transposes. The addressing itself is generated per layout (src/kernels/strided.ts).
override WG: u32 = 256u;
override K: u32 = 8u;
override TR: u32 = 16u;
override QC: u32 = 16u;

// erf / erfc: fdlibm's rational fit below 0.84375 (relative error ~1e-8), Numerical Recipes'
// Chebyshev erfc above (relative error < 1.2e-7). GELU uses erfc so that 1 + erf(x) does not cancel
// for negative x.
fn erf_small(x: f32) -> f32 {
  let s = x * x;
  let r = 1.28379167095512558561e-01 + s * (-3.25042107247001499370e-01 + s * (-2.84817495755985104766e-02 +
    s * (-5.77027029648944159157e-03 + s * -2.37630166566501626084e-05)));
  let q = 1.0 + s * (3.97917223959155352819e-01 + s * (6.50222499887672944485e-02 + s * (5.08130628187576562776e-03 +
    s * (1.32494738004321644526e-04 + s * -3.96022827877536812320e-06))));
  return x + x * (r / q);
}
fn erfc_pos(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  return t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
}
fn erf_(x: f32) -> f32 {
  if (abs(x) < 0.84375) { return erf_small(x); }
  let r = erfc_pos(abs(x));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}
fn erfc_(x: f32) -> f32 {
  if (abs(x) < 0.84375) { return 1.0 - erf_small(x); }
  let r = erfc_pos(abs(x));
  return select(2.0 - r, r, x >= 0.0);
}
// Exact GELU x·Φ(x), Φ(x) = erfc(−x/√2)/2.
fn gelu_(x: f32) -> f32 { return 0.5 * x * erfc_(-x * 0.70710678118654752); }
fn gelu_grad_(x: f32) -> f32 {
  return 0.5 * erfc_(-x * 0.70710678118654752) + x * 0.39894228040143268 * exp(-0.5 * x * x);
}
fn sigmoid_(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn log_sigmoid_(x: f32) -> f32 { return min(x, 0.0) - log(1.0 + exp(-abs(x))); }
fn tanh_(x: f32) -> f32 {
  // Built-in tanh overflows to NaN for large |x| on some drivers.
  let y = clamp(x, -15.0, 15.0);
  let e = exp(2.0 * y);
  return (e - 1.0) / (e + 1.0);
}

// Non-finite constants must not be const-expressions (WGSL rejects them), hence the var.
fn inf_() -> f32 { var b = 0x7f800000u; return bitcast<f32>(b); }
fn nan_() -> f32 { var b = 0x7fc00000u; return bitcast<f32>(b); }

// x^p for a scalar p; negative x is allowed for integer p (NaN otherwise), 0^p follows IEEE pow.
fn pow_s(x: f32, p: f32) -> f32 {
  if (p == 0.0) { return 1.0; }
  if (p == 1.0) { return x; }
  if (p == 2.0) { return x * x; }
  if (x == 0.0) { return select(inf_(), 0.0, p > 0.0); }
  let r = exp2(p * log2(abs(x)));
  if (x < 0.0) {
    if (fract(p) != 0.0) { return nan_(); }
    if (fract(p * 0.5) != 0.0) { return -r; }
  }
  return r;
}

// Philox4x32-10: counter-based RNG, bit-identical to src/tensor/rng.ts on every device.
fn mulhilo(a: u32, b: u32) -> vec2<u32> {
  let a0 = a & 0xffffu; let a1 = a >> 16u;
  let b0 = b & 0xffffu; let b1 = b >> 16u;
  let p00 = a0 * b0; let p01 = a0 * b1; let p10 = a1 * b0; let p11 = a1 * b1;
  let mid = (p00 >> 16u) + (p01 & 0xffffu) + (p10 & 0xffffu);
  let hi = p11 + (p01 >> 16u) + (p10 >> 16u) + (mid >> 16u);
  return vec2<u32>(hi, a * b);
}
fn philox(ctr_in: vec4<u32>, key_in: vec2<u32>) -> vec4<u32> {
  var c = ctr_in;
  var k = key_in;
  for (var r = 0; r < 10; r++) {
    let m0 = mulhilo(0xD2511F53u, c.x);
    let m1 = mulhilo(0xCD9E8D57u, c.z);
    c = vec4<u32>(m1.x ^ c.y ^ k.x, m1.y, m0.x ^ c.w ^ k.y, m0.y);
    k += vec2<u32>(0x9E3779B9u, 0xBB67AE85u);
  }
  return c;
}
// Uniform in [0, 1) with 24 bits, from element index i.
fn uniform_(i: u32) -> f32 {
  let r = philox(vec4<u32>(i, P.seed.z, 0u, 0u), P.seed.xy);
  return f32(r.x >> 8u) * (1.0 / 16777216.0);
}
// -log(u) for u in (0, 1] with small relative error: built-in log only promises 2^-21 absolute error
// on [0.5, 2], which sqrt(-2 log u) turns into large errors for u near 1, so that range uses
// -log(u) = 2 atanh(s), s = (1 - u) / (1 + u) <= 1/3 (series to s^15).
fn neg_log_(u: f32) -> f32 {
  if (u < 0.5) { return -log(u); }
  let s = (1.0 - u) / (1.0 + u);
  let q = s * s;
  return 2.0 * s * (1.0 + q * (1.0 / 3.0 + q * (0.2 + q * (1.0 / 7.0 + q * (1.0 / 9.0 + q * (1.0 / 11.0 + q * (1.0 / 13.0 + q * (1.0 / 15.0))))))));
}
// cos(2πt) for t in [0, 1] to a few ulp: built-in cos may be off by 2^-11 (SwiftShader: 2e-4), which
// would make randn differ between devices. t - k/4 is exact for 24-bit t, leaving |x| <= π/4.
fn cos_turns_(t: f32) -> f32 {
  let k = round(4.0 * t);
  let x = 6.283185307179586 * (t - 0.25 * k);
  let q = x * x;
  let c = 1.0 + q * (-0.5 + q * (1.0 / 24.0 + q * (-1.0 / 720.0 + q * (1.0 / 40320.0 + q * (-1.0 / 3628800.0)))));
  let s = x * (1.0 + q * (-1.0 / 6.0 + q * (1.0 / 120.0 + q * (-1.0 / 5040.0 + q * (1.0 / 362880.0)))));
  let m = u32(k) & 3u;
  if (m == 0u) { return c; }
  if (m == 1u) { return -s; }
  if (m == 2u) { return -c; }
  return s;
}
// Standard normal via Box-Muller on two 24-bit uniforms.
fn normal_(i: u32) -> f32 {
  let r = philox(vec4<u32>(i, P.seed.z, 0u, 0u), P.seed.xy);
  let u1 = (f32(r.x >> 8u) + 1.0) * (1.0 / 16777217.0);
  let u2 = f32(r.y >> 8u) * (1.0 / 16777216.0);
  return sqrt(2.0 * neg_log_(u1)) * cos_turns_(u2);
}
