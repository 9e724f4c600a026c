// Matmul for adapters whose subgroups are 4 CPU SIMD lanes (SwiftShader): O[b] = A[b]·B[b] (+ bias)
// (→ GELU), strided operands as in matmul.wgsl (same uniform block). There every memory load with a
// computed address is a per-lane gather costing tens of instructions, so each loaded value must feed
// many FMAs, while registers are few (spilled accumulators cost little next to a gather):
//  * one workgroup = one 4-lane subgroup computing a 4·TM-row × 4·TN-column tile;
//  * lane l owns rows m0+4i+l and loads their A values itself (each gather brings 4 useful values);
//  * lane l loads B[k, n0+4j+l] and subgroupBroadcast hands each column to every lane, so no lane
//    loads a value another lane also loads;
//  * K advances 4 steps per iteration, unrolled in TypeScript (the BODY template; WGSL has no unroll
//    directive and indexed accumulator arrays would live in memory); past K, A reads as zero.
// Rows and columns past the edge load clamped (valid) addresses and are masked at the store.
alias T = f32;

struct Params {
  M: u32, N: u32, K: u32, flags: u32,   // flags unused: the epilogue is compiled in
  a: vec4<u32>,                          // offset, row stride, col stride, batch stride (elements)
  b: vec4<u32>,
  o: vec4<u32>,
  pre_off: u32, bias_off: u32, bias_s: u32, pad: u32,   // pre-activation offset; bias offset, stride
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<T>;
@group(0) @binding(2) var<storage, read> B: array<T>;
@group(0) @binding(3) var<storage, read_write> O: array<T>;
@group(0) @binding(4) var<storage, read> Bias: array<T>;   // a placeholder without a bias

// put(bt, m, n, acc) stores one output: generated per epilogue (EPILOGUE), since SwiftShader runs
// both sides of every branch, so flags tested at run time would cost the GELU on every store.
{{EPILOGUE}}

@compute @workgroup_size(4)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let bt = wid.z;
  let m0 = wid.x * {{ROWS}}u;
  let n0 = wid.y * {{COLS}}u;
  let ab = P.a.x + bt * P.a.w;
  let bb = P.b.x + bt * P.b.w;
{{DECL}}
  for (var k = 0u; k < P.K; k += 4u) {
{{BODY}}
  }
{{STORE}}
}
