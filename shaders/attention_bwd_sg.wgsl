// Flash-attention backward, subgroup variant (see attention_fwd_sg.wgsl for the design and
// attention_bwd.wgsl for the algebra). `dq`: each invocation owns R query rows; per block every lane
// loads one key/value row and shuffles it to the others. `dkdv`: each invocation owns R key rows; per
// block every lane loads one query/dO row with its lse and Di. No atomics, no N×N buffer.
//#if vec
@group(0) @binding(7) var<storage, read> GO: array<vec4<T>>;
@group(0) @binding(9) var<storage, read_write> G: array<vec4<T>>;
fn go4(a: u32) -> vec4<f32> { return vec4<f32>(GO[a >> 2u]); }
fn st4_g(b: u32, c: u32, v: vec4<f32>) { G[(b >> 2u) + c] = vec4<T>(v); }
//#else
@group(0) @binding(7) var<storage, read> GO: array<T>;
@group(0) @binding(9) var<storage, read_write> G: array<T>;
fn go4(a: u32) -> vec4<f32> { return vec4<f32>(f32(GO[a]), f32(GO[a + 1u]), f32(GO[a + 2u]), f32(GO[a + 3u])); }
fn st4_g(b: u32, c: u32, v: vec4<f32>) {
  let a = b + 4u * c;
  if (4u * c < D) { G[a] = T(v.x); }
  if (4u * c + 1u < D) { G[a + 1u] = T(v.y); }
  if (4u * c + 2u < D) { G[a + 2u] = T(v.z); }
  if (4u * c + 3u < D) { G[a + 3u] = T(v.w); }
}
//#endif
@group(0) @binding(8) var<storage, read> ST: array<f32>;   // (lse, Di) per (output row, head)

fn ld4_go(win: Win, i: u32, h: u32, c: u32) -> vec4<f32> {
  return tail(go4(U.go.x + out_row(win, i) * U.go.y + h * U.go.z + 4u * c), c);
}

@compute @workgroup_size(SG)
fn dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {
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
  let iq$r = min(i$r, nq - 1u);
  for (var c = 0u; c < U.nv; c++) {
    xa[c] = ld4_q(win, iq$r, h, c);
    xb[c] = ld4_go(win, iq$r, h, c);
  }
  //#unroll
  let q$r_$c = xa[$cu] * U.scale;
  let g$r_$c = xb[$cu];
  var a$r_$c = vec4<f32>(0.0);
  //#end
  let rr$r = out_row(win, iq$r) * U.H + h;
  let lse$r = ST[2u * rr$r];
  let di$r = ST[2u * rr$r + 1u];
  let rok$r = lse$r > NEG_HALF;
  //#endrows
  var kend = nk;
  if (CAUSAL) { kend = min(nk, win.i0 + R * SG); }
  for (var j0 = 0u; j0 < kend; j0 += SG) {
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
      var s$r_0 = vec4<f32>(0.0);
      var s$r_1 = vec4<f32>(0.0);
      var s$r_2 = vec4<f32>(0.0);
      var s$r_3 = vec4<f32>(0.0);
      var e$r_0 = vec4<f32>(0.0);
      var e$r_1 = vec4<f32>(0.0);
      var e$r_2 = vec4<f32>(0.0);
      var e$r_3 = vec4<f32>(0.0);
      //#endrows
      //#unroll
      let k0_$c = subgroupShuffle(kk$c, t);
      let k1_$c = subgroupShuffle(kk$c, t + 1u);
      let k2_$c = subgroupShuffle(kk$c, t + 2u);
      let k3_$c = subgroupShuffle(kk$c, t + 3u);
      let w0_$c = subgroupShuffle(vv$c, t);
      let w1_$c = subgroupShuffle(vv$c, t + 1u);
      let w2_$c = subgroupShuffle(vv$c, t + 2u);
      let w3_$c = subgroupShuffle(vv$c, t + 3u);
      //#rows
      s$r_0 += q$r_$c * k0_$c;
      s$r_1 += q$r_$c * k1_$c;
      s$r_2 += q$r_$c * k2_$c;
      s$r_3 += q$r_$c * k3_$c;
      e$r_0 += g$r_$c * w0_$c;
      e$r_1 += g$r_$c * w1_$c;
      e$r_2 += g$r_$c * w2_$c;
      e$r_3 += g$r_$c * w3_$c;
      //#endrows
      //#end
      //#rows
      let p$r_0 = select(0.0, exp(dot(s$r_0, ONE4) - lse$r), rok$r && ok0 && causal_ok(i$r, j));
      let p$r_1 = select(0.0, exp(dot(s$r_1, ONE4) - lse$r), rok$r && ok1 && causal_ok(i$r, j + 1u));
      let p$r_2 = select(0.0, exp(dot(s$r_2, ONE4) - lse$r), rok$r && ok2 && causal_ok(i$r, j + 2u));
      let p$r_3 = select(0.0, exp(dot(s$r_3, ONE4) - lse$r), rok$r && ok3 && causal_ok(i$r, j + 3u));
      let d$r_0 = p$r_0 * (dot(e$r_0, ONE4) - di$r);
      let d$r_1 = p$r_1 * (dot(e$r_1, ONE4) - di$r);
      let d$r_2 = p$r_2 * (dot(e$r_2, ONE4) - di$r);
      let d$r_3 = p$r_3 * (dot(e$r_3, ONE4) - di$r);
      //#endrows
      //#unroll
      //#rows
      a$r_$c += (d$r_0 * k0_$c + d$r_1 * k1_$c) + (d$r_2 * k2_$c + d$r_3 * k3_$c);
      //#endrows
      //#end
    }
  }
  //#rows
  //#unroll
  xa[$cu] = a$r_$c;
  //#end
  if (i$r < nq) {
    let ob = base_of(U.gq, U.gpq, win, i$r, h);
    for (var c = 0u; c < U.nv; c++) { st4_g(ob, c, xa[c] * U.scale); }
  }
  //#endrows
}

@compute @workgroup_size(SG)
fn dkdv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {
  let win = block_of(wid.x);
  let h = U.h0 + wid.y;
  let nq = U.NP + win.len;
  var xa: array<vec4<f32>, NV>;
  var xb: array<vec4<f32>, NV>;
  //#rows
  let j$r = win.i0 + $ru * SG + sid;
  let jk$r = min(j$r, nq - 1u);
  // Rows past the key range (key padding) or masked get zero gradients.
  let isk$r = j$r < nq && j$r < U.NP + win.klen && mask_ok(win, j$r);
  for (var c = 0u; c < U.nv; c++) {
    xa[c] = ld4_k(win, jk$r, h, c);
    xb[c] = ld4_v(win, jk$r, h, c);
  }
  //#unroll
  let k$r_$c = xa[$cu];
  let v$r_$c = xb[$cu];
  var ak$r_$c = vec4<f32>(0.0);
  var av$r_$c = vec4<f32>(0.0);
  //#end
  //#endrows
  var qstart = 0u;
  if (CAUSAL) { qstart = win.i0; }
  for (var i0 = qstart; i0 < nq; i0 += SG) {
    // This lane's query row (pre-scaled), its dO row, lse and Di.
    let il = i0 + sid;
    let ic = min(il, nq - 1u);
    let rr = out_row(win, ic) * U.H + h;
    let ll = select(NEG, ST[2u * rr], il < nq);
    let dd = ST[2u * rr + 1u];
    for (var c = 0u; c < U.nv; c++) {
      xa[c] = ld4_q(win, ic, h, c);
      xb[c] = ld4_go(win, ic, h, c);
    }
    //#unroll
    let qq$c = xa[$cu] * U.scale;
    let gg$c = xb[$cu];
    //#end
    for (var t = 0u; t < U.sg; t += 4u) {
      let i = i0 + t;
      let l0 = subgroupShuffle(ll, t);
      let l1 = subgroupShuffle(ll, t + 1u);
      let l2 = subgroupShuffle(ll, t + 2u);
      let l3 = subgroupShuffle(ll, t + 3u);
      let dd0 = subgroupShuffle(dd, t);
      let dd1 = subgroupShuffle(dd, t + 1u);
      let dd2 = subgroupShuffle(dd, t + 2u);
      let dd3 = subgroupShuffle(dd, t + 3u);
      //#rows
      var s$r_0 = vec4<f32>(0.0);
      var s$r_1 = vec4<f32>(0.0);
      var s$r_2 = vec4<f32>(0.0);
      var s$r_3 = vec4<f32>(0.0);
      var e$r_0 = vec4<f32>(0.0);
      var e$r_1 = vec4<f32>(0.0);
      var e$r_2 = vec4<f32>(0.0);
      var e$r_3 = vec4<f32>(0.0);
      //#endrows
      //#unroll
      let x0_$c = subgroupShuffle(qq$c, t);
      let x1_$c = subgroupShuffle(qq$c, t + 1u);
      let x2_$c = subgroupShuffle(qq$c, t + 2u);
      let x3_$c = subgroupShuffle(qq$c, t + 3u);
      let y0_$c = subgroupShuffle(gg$c, t);
      let y1_$c = subgroupShuffle(gg$c, t + 1u);
      let y2_$c = subgroupShuffle(gg$c, t + 2u);
      let y3_$c = subgroupShuffle(gg$c, t + 3u);
      //#rows
      s$r_0 += k$r_$c * x0_$c;
      s$r_1 += k$r_$c * x1_$c;
      s$r_2 += k$r_$c * x2_$c;
      s$r_3 += k$r_$c * x3_$c;
      e$r_0 += v$r_$c * y0_$c;
      e$r_1 += v$r_$c * y1_$c;
      e$r_2 += v$r_$c * y2_$c;
      e$r_3 += v$r_$c * y3_$c;
      //#endrows
      //#end
      //#rows
      let p$r_0 = select(0.0, exp(dot(s$r_0, ONE4) - l0), isk$r && l0 > NEG_HALF && causal_ok(i, j$r));
      let p$r_1 = select(0.0, exp(dot(s$r_1, ONE4) - l1), isk$r && l1 > NEG_HALF && causal_ok(i + 1u, j$r));
      let p$r_2 = select(0.0, exp(dot(s$r_2, ONE4) - l2), isk$r && l2 > NEG_HALF && causal_ok(i + 2u, j$r));
      let p$r_3 = select(0.0, exp(dot(s$r_3, ONE4) - l3), isk$r && l3 > NEG_HALF && causal_ok(i + 3u, j$r));
      let d$r_0 = p$r_0 * (dot(e$r_0, ONE4) - dd0);
      let d$r_1 = p$r_1 * (dot(e$r_1, ONE4) - dd1);
      let d$r_2 = p$r_2 * (dot(e$r_2, ONE4) - dd2);
      let d$r_3 = p$r_3 * (dot(e$r_3, ONE4) - dd3);
      //#endrows
      //#unroll
      //#rows
      ak$r_$c += (d$r_0 * x0_$c + d$r_1 * x1_$c) + (d$r_2 * x2_$c + d$r_3 * x3_$c);
      av$r_$c += (p$r_0 * y0_$c + p$r_1 * y1_$c) + (p$r_2 * y2_$c + p$r_3 * y3_$c);
      //#endrows
      //#end
    }
  }
  //#rows
  //#unroll
  xa[$cu] = ak$r_$c;
  xb[$cu] = av$r_$c;
  //#end
  if (j$r < nq) {
    let kb = base_of(U.gk, U.gpk, win, j$r, h);
    let vb = base_of(U.gv, U.gpv, win, j$r, h);
    for (var c = 0u; c < U.nv; c++) {
      st4_g(kb, c, xa[c]);
      st4_g(vb, c, xb[c]);
    }
  }
  //#endrows
}
