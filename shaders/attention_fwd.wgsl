// Flash-attention forward, workgroup-memory variant (adapters without subgroups; always scalar
// bindings): one query row per invocation, K/V tiles of TILE rows streamed through workgroup memory,
// running max m and sum l (online softmax). Writes the normalised output and the log-sum-exp
// m + log(l) per (row, head) for the backward kernels.
@group(0) @binding(7) var<storage, read_write> O: array<T>;
@group(0) @binding(8) var<storage, read_write> LSE: array<f32>;

var<workgroup> kt: array<f32, TILE * D>;
var<workgroup> vt: array<f32, TILE * D>;

fn ld_row(x: vec4<u32>, p: vec4<u32>, which: u32, win: Win, i: u32, h: u32, d: u32) -> f32 {
  let a = base_of(x, p, win, i, h) + d;
  if (i < U.NP) { return f32(PRE[a]); }
  if (which == 0u) { return f32(Q[a]); }
  if (which == 1u) { return f32(K[a]); }
  return f32(V[a]);
}

@compute @workgroup_size(BLK)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let win = block_of(wid.x);
  let h = U.h0 + wid.y;
  let nq = U.NP + win.len;
  let nk = U.NP + win.klen;
  let i = win.i0 + lid;
  let live = i < nq;
  let iq = min(i, nq - 1u);
  var q: array<f32, D>;
  var o: array<f32, D>;
  for (var d = 0u; d < U.dim; d++) {
    q[d] = ld_row(U.q, U.pq, 0u, win, iq, h, d) * U.scale;
    o[d] = 0.0;
  }
  var m = NEG;
  var l = 0.0;
  var kend = nk;
  if (CAUSAL) { kend = min(nk, win.i0 + BLK); }
  var s: array<f32, TILE>;
  for (var j0 = 0u; j0 < kend; j0 += TILE) {
    workgroupBarrier();
    for (var e = lid; e < U.tile * U.dim; e += BLK) {
      let jj = e / U.dim;
      let d = e - jj * U.dim;
      let j = min(j0 + jj, nk - 1u);
      kt[e] = ld_row(U.k, U.pk, 1u, win, j, h, d);
      vt[e] = ld_row(U.v, U.pv, 2u, win, j, h, d);
    }
    workgroupBarrier();
    var mt = m;
    for (var jj = 0u; jj < U.tile; jj++) {
      var acc = 0.0;
      for (var d = 0u; d < U.dim; d++) { acc += q[d] * kt[jj * U.dim + d]; }
      let sc = select(NEG, acc, key_ok(win, i, j0 + jj));
      s[jj] = sc;
      mt = max(mt, sc);
    }
    let alpha = exp(m - mt);
    var psum = 0.0;
    for (var jj = 0u; jj < U.tile; jj++) {
      let pj = select(0.0, exp(s[jj] - mt), s[jj] > NEG_HALF);
      s[jj] = pj;
      psum += pj;
    }
    l = l * alpha + psum;
    for (var d = 0u; d < U.dim; d++) {
      var acc = o[d] * alpha;
      for (var jj = 0u; jj < U.tile; jj++) { acc += s[jj] * vt[jj * U.dim + d]; }
      o[d] = acc;
    }
    m = mt;
  }
  if (live) {
    let r = out_row(win, i) * U.H + h;
    let inv = select(0.0, 1.0 / l, l > 0.0);
    for (var d = 0u; d < U.dim; d++) { O[r * D + d] = T(o[d] * inv); }
    LSE[r] = select(NEG, m + log(l), l > 0.0);
  }
}
