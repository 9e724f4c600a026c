// Portable matmul O[b] = A[b]·B[b] (+ bias) (→ GELU) for every adapter (SwiftShader included).
// Operands are strided views: element (b, r, c) lives at off + b·bs + r·rs + c·cs, so a transposed
// operand is just swapped strides and a broadcast batch has bs = 0. Each invocation owns a 4×4 register
// tile whose rows and columns are 8 apart, so neighbouring invocations touch neighbouring addresses.
// No workgroup memory: on CPU adapters barriers cost more than they save. Accumulation is f32.
alias T = f32;

struct Params {
  M: u32, N: u32, K: u32, flags: u32,   // flags: 1 bias, 2 gelu, 4 also store the pre-activation
  a: vec4<u32>,                          // offset, row stride, col stride, batch stride (elements)
  b: vec4<u32>,
  o: vec4<u32>,
  pre_off: u32, bias_off: u32, bias_s: u32, pad: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<T>;
@group(0) @binding(2) var<storage, read> B: array<T>;
@group(0) @binding(3) var<storage, read_write> O: array<T>;
@group(0) @binding(4) var<storage, read> Bias: array<T>;   // a placeholder when flag 1 is off

@compute @workgroup_size(8, 8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let bt = wid.z;
  let m0 = wid.y * 32u + lid.y;
  let n0 = wid.x * 32u + lid.x;
  // Rows/columns past the edge load a clamped (valid) address and are masked at the store.
  var ar: array<u32, 4>;
  var bc: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    ar[i] = P.a.x + bt * P.a.w + min(m0 + 8u * i, P.M - 1u) * P.a.y;
    bc[i] = P.b.x + bt * P.b.w + min(n0 + 8u * i, P.N - 1u) * P.b.z;
  }
  var acc: array<vec4<f32>, 4>;
  for (var k = 0u; k < P.K; k++) {
    let ka = k * P.a.z;
    let kb = k * P.b.y;
    let bv = vec4<f32>(f32(B[bc[0] + kb]), f32(B[bc[1] + kb]), f32(B[bc[2] + kb]), f32(B[bc[3] + kb]));
    for (var i = 0u; i < 4u; i++) {
      acc[i] = fma(vec4<f32>(f32(A[ar[i] + ka])), bv, acc[i]);
    }
  }
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + 8u * i;
    if (m >= P.M) { break; }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + 8u * j;
      if (n >= P.N) { break; }
      var v = acc[i][j];
      if ((P.flags & 1u) != 0u) { v += f32(Bias[P.bias_off + n * P.bias_s]); }
      let o = bt * P.o.w + m * P.o.y + n * P.o.z;
      if ((P.flags & 4u) != 0u) { O[P.pre_off + o] = T(v); }
      if ((P.flags & 2u) != 0u) { v = mm_gelu(v); }
      O[P.o.x + o] = T(v);
    }
  }
}
