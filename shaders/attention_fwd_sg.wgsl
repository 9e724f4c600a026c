// Flash-attention forward, subgroup variant (CPU adapters with a fixed subgroup size SG; see
// docs/attention.md). One workgroup is one subgroup; each invocation owns R query rows (NV vec4
// variables each). Per key block every lane loads one key/value row and subgroupShuffle hands the rows
// to the other lanes, four keys per online-softmax step (running max m, running sum l), so each load
// feeds SG·R rows. No workgroup memory and no barriers: on llvmpipe a lane-varying load inside a loop
// runs lane by lane and costs tens of FMAs, and barriers become coroutine switches. `//#rows` blocks
// repeat per row ($r). Writes the normalised output and lse = m + log(l).
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
    for (var c = 0u; c < U.nv; c++) {
      xa[c] = ld4_k(win, jc, h, c);
      xb[c] = ld4_v(win, jc, h, c);
    }
    //#unroll
    let kk$c = xa[$cu];
    let vv$c = xb[$cu];
    //#end
    for (var t = 0u; t < U.sg; t += 4u) {
      let j = j0 + t;
      let ok0 = subgroupShuffle(kv_ok, t) > 0.5;
      let ok1 = subgroupShuffle(kv_ok, t + 1u) > 0.5;
      let ok2 = subgroupShuffle(kv_ok, t + 2u) > 0.5;
      let ok3 = subgroupShuffle(kv_ok, t + 3u) > 0.5;
      //#rows
      var a$r_0 = vec4<f32>(0.0);
      var a$r_1 = vec4<f32>(0.0);
      var a$r_2 = vec4<f32>(0.0);
      var a$r_3 = vec4<f32>(0.0);
      //#endrows
      //#unroll
      let k0_$c = subgroupShuffle(kk$c, t);
      let k1_$c = subgroupShuffle(kk$c, t + 1u);
      let k2_$c = subgroupShuffle(kk$c, t + 2u);
      let k3_$c = subgroupShuffle(kk$c, t + 3u);
      //#rows
      a$r_0 += q$r_$c * k0_$c;
      a$r_1 += q$r_$c * k1_$c;
      a$r_2 += q$r_$c * k2_$c;
      a$r_3 += q$r_$c * k3_$c;
      //#endrows
      //#end
      //#rows
      let s$r_0 = select(NEG, dot(a$r_0, ONE4), ok0 && causal_ok(i$r, j));
      let s$r_1 = select(NEG, dot(a$r_1, ONE4), ok1 && causal_ok(i$r, j + 1u));
      let s$r_2 = select(NEG, dot(a$r_2, ONE4), ok2 && causal_ok(i$r, j + 2u));
      let s$r_3 = select(NEG, dot(a$r_3, ONE4), ok3 && causal_ok(i$r, j + 3u));
      let mt$r = max(m$r, max(max(s$r_0, s$r_1), max(s$r_2, s$r_3)));
      let al$r = exp(m$r - mt$r);
      let p$r_0 = select(0.0, exp(s$r_0 - mt$r), s$r_0 > NEG_HALF);
      let p$r_1 = select(0.0, exp(s$r_1 - mt$r), s$r_1 > NEG_HALF);
      let p$r_2 = select(0.0, exp(s$r_2 - mt$r), s$r_2 > NEG_HALF);
      let p$r_3 = select(0.0, exp(s$r_3 - mt$r), s$r_3 > NEG_HALF);
      l$r = l$r * al$r + ((p$r_0 + p$r_1) + (p$r_2 + p$r_3));
      m$r = mt$r;
      //#endrows
      //#unroll
      let w0_$c = subgroupShuffle(vv$c, t);
      let w1_$c = subgroupShuffle(vv$c, t + 1u);
      let w2_$c = subgroupShuffle(vv$c, t + 2u);
      let w3_$c = subgroupShuffle(vv$c, t + 3u);
      //#rows
      o$r_$c = o$r_$c * al$r + ((p$r_0 * w0_$c + p$r_1 * w1_$c) + (p$r_2 * w2_$c + p$r_3 * w3_$c));
      //#endrows
      //#end
    }
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
