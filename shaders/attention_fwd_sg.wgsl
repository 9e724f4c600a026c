// Flash-attention forward, subgroup variant (CPU adapters with a fixed subgroup size SG; see
// docs/attention.md). One workgroup is one subgroup; each invocation owns R query rows (NV vec4
// variables each). Per key block every lane loads one key/value row and subgroupBroadcast hands the
// rows to the other lanes (a constant lane: on SwiftShader a shuffle costs several times more), so
// each load feeds SG·R rows. The block's SG keys are scored four per sub-step
// (`//#steps`, unrolled: scalar dot accumulators), then one online-softmax update (running max m,
// running sum l) rescales the output rows once per block; llvmpipe stores loop-carried values under
// the exec mask (load, blend, store), so one update per block halves that traffic. No workgroup memory
// and no barriers: on llvmpipe a lane-varying load inside a loop runs lane by lane and costs tens of
// FMAs, and barriers become coroutine switches. `//#rows` blocks repeat per row ($r). Writes the
// normalised output and lse = m + log(l).
//#if vec
@group(0) @binding(7) var<storage, read_write> O: array<vec4<T>>;
fn st4(b: u32, c: u32, v: vec4<f32>) { O[(b >> 2u) + c] = vec4<T>(v); }
//#else
@group(0) @binding(7) var<storage, read_write> O: array<T>;
fn st4(b: u32, c: u32, v: vec4<f32>) {
  let a = b + 4u * c;
  if (4u * c < D) { O[a] = T(v.x); }
  if (4u * c + 1u < D) { O[a + 1u] = T(v.y); }
  if (4u * c + 2u < D) { O[a + 2u] = T(v.z); }
  if (4u * c + 3u < D) { O[a + 3u] = T(v.w); }
}
//#endif
@group(0) @binding(8) var<storage, read_write> LSE: array<f32>;

@compute @workgroup_size(SG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {
  let win = block_of(wid.x);
  let h = U.h0 + wid.y;
  let nq = U.NP + win.len;
  let nk = U.NP + win.klen;
  // Rows go through these arrays in loops over c (one load or store site each): unrolled per-lane
  // loads and stores make llvmpipe's LLVM spend minutes compiling.
  var xa: array<vec4<f32>, NV>;
  var xb: array<vec4<f32>, NV>;
  //#rows
  let i$r = win.i0 + $ru * SG + sid;
  let iq$r = min(i$r, nq - 1u); // lanes past the window compute a real row and discard it
  var m$r = NEG;
  var l$r = 0.0;
  for (var c = 0u; c < U.nv; c++) { xa[c] = ld4_q(win, iq$r, h, c); }
  //#unroll
  let q$r_$c = xa[$cu] * U.scale;
  var o$r_$c = vec4<f32>(0.0);
  //#end
  //#endrows
  var kend = nk;
  if (CAUSAL) { kend = min(nk, win.i0 + R * SG); }
  for (var j0 = 0u; j0 < kend; j0 += SG) {
    // This lane's key row; keys past the window are masked.
    let jl = j0 + sid;
    let jc = min(jl, nk - 1u);
    let kv_ok = select(0.0, 1.0, jl < nk && mask_ok(win, jl));
    //#if unroll
    // SwiftShader: straight-line loads (an indexed private array is per-lane scratch memory there).
    //#unroll
    let kk$c = ld4_k(win, jc, h, $cu);
    let vv$c = ld4_v(win, jc, h, $cu);
    //#end
    //#else
    for (var c = 0u; c < U.nv; c++) {
      xa[c] = ld4_k(win, jc, h, c);
      xb[c] = ld4_v(win, jc, h, c);
    }
    //#unroll
    let kk$c = xa[$cu];
    let vv$c = xb[$cu];
    //#end
    //#endif
    // Scores of the block's SG keys, four per sub-step ($s), then one online-softmax update.
    //#steps
    let ok$s_0 = subgroupBroadcast(kv_ok, $su * 4u) > 0.5;
    let ok$s_1 = subgroupBroadcast(kv_ok, $su * 4u + 1u) > 0.5;
    let ok$s_2 = subgroupBroadcast(kv_ok, $su * 4u + 2u) > 0.5;
    let ok$s_3 = subgroupBroadcast(kv_ok, $su * 4u + 3u) > 0.5;
    //#rows
    var a$r_$s_0 = 0.0;
    var a$r_$s_1 = 0.0;
    var a$r_$s_2 = 0.0;
    var a$r_$s_3 = 0.0;
    //#endrows
    //#unroll
    let k$s_0_$c = subgroupBroadcast(kk$c, $su * 4u);
    let k$s_1_$c = subgroupBroadcast(kk$c, $su * 4u + 1u);
    let k$s_2_$c = subgroupBroadcast(kk$c, $su * 4u + 2u);
    let k$s_3_$c = subgroupBroadcast(kk$c, $su * 4u + 3u);
    //#rows
    a$r_$s_0 += dot(q$r_$c, k$s_0_$c);
    a$r_$s_1 += dot(q$r_$c, k$s_1_$c);
    a$r_$s_2 += dot(q$r_$c, k$s_2_$c);
    a$r_$s_3 += dot(q$r_$c, k$s_3_$c);
    //#endrows
    //#end
    //#rows
    let s$r_$s_0 = select(NEG, a$r_$s_0, ok$s_0 & causal_ok(i$r, j0 + $su * 4u));
    let s$r_$s_1 = select(NEG, a$r_$s_1, ok$s_1 & causal_ok(i$r, j0 + $su * 4u + 1u));
    let s$r_$s_2 = select(NEG, a$r_$s_2, ok$s_2 & causal_ok(i$r, j0 + $su * 4u + 2u));
    let s$r_$s_3 = select(NEG, a$r_$s_3, ok$s_3 & causal_ok(i$r, j0 + $su * 4u + 3u));
    //#endrows
    //#endsteps
    //#rows
    var mt$r = m$r;
    //#steps
    mt$r = max(mt$r, max(max(s$r_$s_0, s$r_$s_1), max(s$r_$s_2, s$r_$s_3)));
    //#endsteps
    let al$r = exp(m$r - mt$r);
    var ps$r = l$r * al$r;
    //#steps
    let p$r_$s_0 = select(0.0, exp(s$r_$s_0 - mt$r), s$r_$s_0 > NEG_HALF);
    let p$r_$s_1 = select(0.0, exp(s$r_$s_1 - mt$r), s$r_$s_1 > NEG_HALF);
    let p$r_$s_2 = select(0.0, exp(s$r_$s_2 - mt$r), s$r_$s_2 > NEG_HALF);
    let p$r_$s_3 = select(0.0, exp(s$r_$s_3 - mt$r), s$r_$s_3 > NEG_HALF);
    ps$r += (p$r_$s_0 + p$r_$s_1) + (p$r_$s_2 + p$r_$s_3);
    //#endsteps
    l$r = ps$r;
    m$r = mt$r;
    //#endrows
    //#unroll
    //#steps
    let w$s_0_$c = subgroupBroadcast(vv$c, $su * 4u);
    let w$s_1_$c = subgroupBroadcast(vv$c, $su * 4u + 1u);
    let w$s_2_$c = subgroupBroadcast(vv$c, $su * 4u + 2u);
    let w$s_3_$c = subgroupBroadcast(vv$c, $su * 4u + 3u);
    //#endsteps
    //#rows
    var oa$r_$c = o$r_$c * al$r;
    //#steps
    oa$r_$c += (p$r_$s_0 * w$s_0_$c + p$r_$s_1 * w$s_1_$c) + (p$r_$s_2 * w$s_2_$c + p$r_$s_3 * w$s_3_$c);
    //#endsteps
    o$r_$c = oa$r_$c;
    //#endrows
    //#end
  }
  //#rows
  //#unroll
  xa[$cu] = o$r_$c;
  //#end
  if (i$r < nq) {
    let ro = out_row(win, i$r) * U.H + h;
    let inv = select(0.0, 1.0 / l$r, l$r > 0.0);
    for (var c = 0u; c < U.nv; c++) { st4(ro * D, c, xa[c] * inv); }
    LSE[ro] = select(NEG, m$r + log(l$r), l$r > 0.0);
  }
  //#endrows
}
