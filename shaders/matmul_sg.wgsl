// Matmul for CPU adapters (llvmpipe), where every invocation-varying memory load runs a per-lane scalar
// loop (exec-mask test, bounds check, insert) that costs ~40× an 8-wide FMA, and barriers turn the
// kernel into coroutines that spill everything. So: no workgroup memory, one 8-lane subgroup per
// workgroup, and every loaded value reused as often as registers allow:
//  * B comes from a uniform buffer (uniform loads gather without the per-lane loop, ~2.5× cheaper),
//    packed by matmul_pack.wgsl into windows of 512 K-rows × 32 columns (64 KiB, the binding limit);
//    lane l owns columns n0+4l … n0+4l+3 of the window's 32.
//  * each lane loads a vec4 of A per row per 32 K-steps (32 K-values per subgroup) and the K-steps
//    broadcast them with subgroupBroadcast, so one A load feeds 4·32·8 FMAs.
//  * TM rows per workgroup live in registers; the body is unrolled in TypeScript (the BODY template), since
//    WGSL has no unroll directive and a dynamically indexed accumulator array would go to memory.
// One dispatch handles one window (one 32-column strip × one K-chunk); partial sums of multi-chunk
// products go through an f32 scratch (Acc) and the last chunk applies bias/GELU and stores.
alias T = f32;

struct Params {
  M: u32, N: u32, klen: u32, flags: u32,    // klen: K-rows in this chunk (multiple of 32); flags below
  a_off: u32, a_rs: u32, a_bs: u32, k_off: u32, // A in vec4 units: offset, row stride, batch stride, chunk start
  o: vec4<u32>,                              // output offset, row stride, col stride, batch stride (elements)
  n0: u32, pre_off: u32, bias_off: u32, bias_s: u32,
  acc_rows: u32, tm: u32, pad1: u32, pad2: u32,   // tm = TM, as a uniform so row loops stay loops
}
const FIRST = 1u;
const LAST = 2u;
const BIAS = 4u;
const GELU = 8u;
const PRE = 16u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4<T>>;
@group(0) @binding(2) var<uniform> W: array<vec4<f32>, 4096>;
@group(0) @binding(3) var<storage, read_write> O: array<T>;
@group(0) @binding(4) var<storage, read_write> Acc: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read> Bias: array<T>;   // a placeholder when BIAS is off

fn load_partial(bt: u32, m: u32, lane: u32) -> vec4<f32> {
  if ((P.flags & FIRST) != 0u) { return vec4<f32>(0.0); }
  return Acc[(bt * P.acc_rows + m) * 8u + lane];
}

fn finish_row(bt: u32, m: u32, lane: u32, acc: vec4<f32>) {
  if ((P.flags & LAST) == 0u) {
    Acc[(bt * P.acc_rows + m) * 8u + lane] = acc;
    return;
  }
  if (m >= P.M) { return; }
  for (var j = 0u; j < 4u; j++) {
    let n = P.n0 + 4u * lane + j;
    if (n >= P.N) { return; }
    var v = acc[j];
    if ((P.flags & BIAS) != 0u) { v += f32(Bias[P.bias_off + n * P.bias_s]); }
    let o = bt * P.o.w + m * P.o.y + n * P.o.z;
    if ((P.flags & PRE) != 0u) { O[P.pre_off + o] = T(v); }
    if ((P.flags & GELU) != 0u) { v = mm_gelu(v); }
    O[P.o.x + o] = T(v);
  }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let bt = wid.y;
  let m0 = wid.x * {{TM}}u;
  let abase = P.a_off + bt * P.a_bs;
  // Prologue and epilogue run once per tile: kept as loops over a private array (the bound is a
  // uniform so the compiler cannot unroll them), because TM inlined copies of the per-lane stores
  // make LLVM's SSA construction take minutes.
  var tile: array<vec4<f32>, {{TM}}>;
  for (var i = 0u; i < min(P.tm, {{TM}}u); i++) { tile[i] = load_partial(bt, m0 + i, lane); }
{{DECL}}
  for (var kc = 0u; kc < P.klen; kc += 32u) {
    let ka = P.k_off + kc / 4u + lane;
    let wb = kc * 8u + lane;
{{BODY}}
  }
{{STASH}}
  for (var i = 0u; i < min(P.tm, {{TM}}u); i++) { finish_row(bt, m0 + i, lane, tile[i]); }
}
