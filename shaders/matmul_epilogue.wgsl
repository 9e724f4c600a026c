// Exact GELU for the matmul epilogue, x·Φ(x) with Φ(x) = erfc(−x/√2)/2: the same erfc as
// elementwise_common.wgsl (fdlibm rational fit below 0.84375, Numerical Recipes' Chebyshev erfc above),
// copied here because that file also declares the elementwise kernels' uniform block.
fn mm_erf_small(x: f32) -> f32 {
  let s = x * x;
  let r = 1.28379167095512558561e-01 + s * (-3.25042107247001499370e-01 + s * (-2.84817495755985104766e-02 +
    s * (-5.77027029648944159157e-03 + s * -2.37630166566501626084e-05)));
  let q = 1.0 + s * (3.97917223959155352819e-01 + s * (6.50222499887672944485e-02 + s * (5.08130628187576562776e-03 +
    s * (1.32494738004321644526e-04 + s * -3.96022827877536812320e-06))));
  return x + x * (r / q);
}
fn mm_erfc_pos(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  return t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
    t * (-0.82215223 + t * 0.17087277)))))))));
}
fn mm_erfc(x: f32) -> f32 {
  if (abs(x) < 0.84375) { return 1.0 - mm_erf_small(x); }
  let r = mm_erfc_pos(abs(x));
  return select(2.0 - r, r, x >= 0.0);
}
fn mm_gelu(x: f32) -> f32 { return 0.5 * x * mm_erfc(-x * 0.70710678118654752); }
