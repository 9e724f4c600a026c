// Flash-attention backward, workgroup-memory variant (adapters without subgroups; scalar bindings).
// No atomics and no N×N buffer: probabilities are recomputed from the saved log-sum-exp,
// p = exp(q·k·scale − lse). With Di = rowsum(dO ∘ O) (attention_dsum.wgsl):
//   dv_j = Σ_i p_ij dO_i,  ds_ij = p_ij (dO_i·v_j − Di),  dq_i = scale Σ_j ds_ij k_j,  dk_j = scale Σ_i ds_ij q_i
// `dq` owns query rows and streams K/V tiles; `dkdv` owns key rows and streams Q/dO tiles, so every
// gradient element is written by exactly one invocation.
@group(0) @binding(7) var<storage, read> GO: array<T>;
@group(0) @binding(8) var<storage, read> ST: array<f32>;   // (lse, Di) per (output row, head)
@group(0) @binding(9) var<storage, read_write> G: array<T>;

var<workgroup> at: array<f32, TILE * D>;   // dq: K tile; dkdv: Q tile (pre-scaled)
var<workgroup> bt: array<f32, TILE * D>;   // dq: V tile; dkdv: dO tile
var<workgroup> lt: array<f32, TILE>;       // dkdv: lse of the tile's queries
var<workgroup> dt: array<f32, TILE>;       // dkdv: Di of the tile's queries

fn ld_row(x: vec4<u32>, p: vec4<u32>, which: u32, win: Win, i: u32, h: u32, d: u32) -> f32 {
  let a = base_of(x, p, win, i, h) + d;
  if (i < U.NP) { return f32(PRE[a]); }
  if (which == 0u) { return f32(Q[a]); }
  if (which == 1u) { return f32(K[a]); }
  return f32(V[a]);
}
fn ld_go(win: Win, i: u32, h: u32, d: u32) -> f32 {
  return f32(GO[U.go.x + out_row(win, i) * U.go.y + h * U.go.z + d]);
}

@compute @workgroup_size(BLK)
fn dq(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let win = block_of(wid.x);
  let h = U.h0 + wid.y;
  let nq = U.NP + win.len;
  let nk = U.NP + win.klen;
  let i = win.i0 + lid;
  let live = i < nq;
  let iq = min(i, nq - 1u);
  var q: array<f32, D>;
  var g: array<f32, D>;
  var acc_q: array<f32, D>;
  for (var d = 0u; d < U.dim; d++) {
    q[d] = ld_row(U.q, U.pq, 0u, win, iq, h, d) * U.scale;
    g[d] = ld_go(win, iq, h, d);
    acc_q[d] = 0.0;
  }
  let r = out_row(win, iq) * U.H + h;
  let lse = ST[2u * r];
  let di = ST[2u * r + 1u];
  var kend = nk;
  if (CAUSAL) { kend = min(nk, win.i0 + BLK); }
  var ds: array<f32, TILE>;
  for (var j0 = 0u; j0 < kend; j0 += TILE) {
    workgroupBarrier();
    for (var e = lid; e < U.tile * U.dim; e += BLK) {
      let jj = e / U.dim;
      let d = e - jj * U.dim;
      let j = min(j0 + jj, nk - 1u);
      at[e] = ld_row(U.k, U.pk, 1u, win, j, h, d);
      bt[e] = ld_row(U.v, U.pv, 2u, win, j, h, d);
    }
    workgroupBarrier();
    for (var jj = 0u; jj < U.tile; jj++) {
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < U.dim; d++) {
        s += q[d] * at[jj * U.dim + d];
        dp += g[d] * bt[jj * U.dim + d];
      }
      let ok = key_ok(win, i, j0 + jj) && lse > NEG_HALF;
      let p = select(0.0, exp(s - lse), ok);
      ds[jj] = p * (dp - di);
    }
    for (var d = 0u; d < U.dim; d++) {
      var acc = acc_q[d];
      for (var jj = 0u; jj < U.tile; jj++) { acc += ds[jj] * at[jj * U.dim + d]; }
      acc_q[d] = acc;
    }
  }
  if (live) {
    let ob = base_of(U.gq, U.gpq, win, i, h);
    for (var d = 0u; d < U.dim; d++) { G[ob + d] = T(acc_q[d] * U.scale); }
  }
}

@compute @workgroup_size(BLK)
fn dkdv(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let win = block_of(wid.x);
  let h = U.h0 + wid.y;
  let nq = U.NP + win.len;
  let j = win.i0 + lid;
  let live = j < nq;
  let jk = min(j, nq - 1u);
  // Rows past the key range (key padding) or masked get zero gradients.
  let is_key = live && j < U.NP + win.klen && mask_ok(win, j);
  var k: array<f32, D>;
  var v: array<f32, D>;
  var acc_k: array<f32, D>;
  var acc_v: array<f32, D>;
  for (var d = 0u; d < U.dim; d++) {
    k[d] = ld_row(U.k, U.pk, 1u, win, jk, h, d);
    v[d] = ld_row(U.v, U.pv, 2u, win, jk, h, d);
    acc_k[d] = 0.0;
    acc_v[d] = 0.0;
  }
  var qstart = 0u;
  if (CAUSAL) { qstart = win.i0; }
  var p: array<f32, TILE>;
  var ds: array<f32, TILE>;
  for (var i0 = qstart; i0 < nq; i0 += TILE) {
    workgroupBarrier();
    for (var e = lid; e < U.tile * U.dim; e += BLK) {
      let ii = e / U.dim;
      let d = e - ii * U.dim;
      let i = min(i0 + ii, nq - 1u);
      at[e] = ld_row(U.q, U.pq, 0u, win, i, h, d) * U.scale;
      bt[e] = ld_go(win, i, h, d);
    }
    for (var ii = lid; ii < U.tile; ii += BLK) {
      let i = i0 + ii;
      var l = NEG;
      var dd = 0.0;
      if (i < nq) {
        let r = out_row(win, i) * U.H + h;
        l = ST[2u * r];
        dd = ST[2u * r + 1u];
      }
      lt[ii] = l;
      dt[ii] = dd;
    }
    workgroupBarrier();
    for (var ii = 0u; ii < U.tile; ii++) {
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < U.dim; d++) {
        s += k[d] * at[ii * U.dim + d];
        dp += v[d] * bt[ii * U.dim + d];
      }
      let ok = is_key && lt[ii] > NEG_HALF && causal_ok(i0 + ii, j);
      let pp = select(0.0, exp(s - lt[ii]), ok);
      p[ii] = pp;
      ds[ii] = pp * (dp - dt[ii]);
    }
    for (var d = 0u; d < U.dim; d++) {
      var ak = acc_k[d];
      var av = acc_v[d];
      for (var ii = 0u; ii < U.tile; ii++) {
        ak += ds[ii] * at[ii * U.dim + d];
        av += p[ii] * bt[ii * U.dim + d];
      }
      acc_k[d] = ak;
      acc_v[d] = av;
    }
  }
  if (live) {
    let kb = base_of(U.gk, U.gpk, win, j, h);
    let vb = base_of(U.gv, U.gpv, win, j, h);
    for (var d = 0u; d < U.dim; d++) {
      G[kb + d] = T(acc_k[d]);
      G[vb + d] = T(acc_v[d]);
    }
  }
}
