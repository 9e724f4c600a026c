// Flash-attention backward in one pass per key block, subgroup variant (CPU adapters; see
// attention_fwd_sg.wgsl for the design and attention_bwd.wgsl for the algebra). No atomics, no N×N
// buffer; probabilities are recomputed once per (query, key) pair from the saved log-sum-exp, and the
// five products (S = QKᵀ, dP = dO Vᵀ, dV, dK, dQ) share them.
//
// A window's key blocks (R·SG rows) are split into key groups; the workgroup of group g walks the
// group's blocks in order (table entry (window, g, first block, blocks); U.s0 … U.s1 is the range of
// block steps this dispatch runs, so long groups span several dispatches). Each lane owns R key rows:
// k, v and their gradients stay in registers while the query blocks stream past. Lane l takes query
// (l + u) mod SG of the block at step u (subgroupShuffle rotates the query rows in), so the dQ
// contribution Σ_r ds·k it computes belongs to one query and one shuffle hands it to that query's lane.
// Each lane then adds its query's sum into the group's dQ partial (read-modify-write of rows only this
// workgroup touches); attention_dq_reduce.wgsl sums the partials. The SG/4 sub-steps of a query block
// are unrolled (`//#steps`), with the products in phases (scores, dO·v, then dK with the dQ
// contributions, then dV) so fewer values are live at once.
//
// Operands come packed per head by attention_bwd_prep.wgsl (contiguous f32 rows, so the streamed
// query rows are sequential in memory and need no prefix/patch branch): per (head, output row) a
// query record [q·scale (NV vec4), dO (NV vec4), (lse, Di, 0, 0)] and from U.kvoff a key record
// [k (NV vec4), v (NV vec4)], for the heads U.ph0 … U.ph0 + U.nh − 1 of this pass.
alias T = f32;

const D: u32 = {{D}}u;        // head dim
const NV: u32 = {{NV}}u;      // vec4s per head-dim row
const SG: u32 = {{SG}}u;      // subgroup size (a workgroup is one subgroup)
const R: u32 = {{R}}u;        // key rows per invocation
const CAUSAL: bool = {{CAUSAL}};
const USE_MASK: bool = {{MASK}};
const NEG: f32 = -3.0e38;
const NEG_HALF: f32 = -1.0e38;
const QREC: u32 = 2u * NV + 1u;
const KREC: u32 = 2u * NV;

struct Params {
  H: u32, NP: u32, boff: u32, blk0: u32,
  h0: u32, T: u32, rows: u32, nv: u32,
  s0: u32, s1: u32, ph0: u32, nh: u32,
  kvoff: u32, pad0: u32, pad1: u32, pad2: u32,
  // Where dK and dV go: patch rows (gk, gv) and prefix rows (gpk, gpv), (offset, row stride, head stride).
  gk: vec4<u32>, gv: vec4<u32>, gpk: vec4<u32>, gpv: vec4<u32>,
}
@group(0) @binding(0) var<uniform> U: Params;
@group(0) @binding(1) var<storage, read> TB: array<u32>;
@group(0) @binding(2) var<storage, read> MASK: array<u32>;
@group(0) @binding(3) var<storage, read> PK: array<vec4<f32>>;
// dQ partials [groups, nh, output rows, NV] vec4.
@group(0) @binding(4) var<storage, read_write> SP: array<vec4<f32>>;
//#if vec
@group(0) @binding(5) var<storage, read_write> G: array<vec4<T>>;
fn st4_g(b: u32, c: u32, v: vec4<f32>) { G[(b >> 2u) + c] = vec4<T>(v); }
//#else
@group(0) @binding(5) var<storage, read_write> G: array<T>;
fn st4_g(b: u32, c: u32, v: vec4<f32>) {
  let a = b + 4u * c;
  if (4u * c < D) { G[a] = T(v.x); }
  if (4u * c + 1u < D) { G[a + 1u] = T(v.y); }
  if (4u * c + 2u < D) { G[a + 2u] = T(v.z); }
  if (4u * c + 3u < D) { G[a + 3u] = T(v.w); }
}
//#endif

struct Win { w: u32, start: u32, len: u32, klen: u32 }

fn causal_ok(i: u32, j: u32) -> bool { return !CAUSAL | (j <= i); }  // `|`: see attention_common.wgsl
fn mask_ok(win: Win, j: u32) -> bool { return !USE_MASK || j < U.NP || MASK[win.start + j - U.NP] != 0u; }
// Row of the combined output: patch rows first, then the prefix rows.
fn out_row(win: Win, i: u32) -> u32 {
  if (i < U.NP) { return U.T + win.w * U.NP + i; }
  return win.start + i - U.NP;
}
// Element index of gradient row i (local) of head h: prefix descriptor p, patch descriptor x.
fn grad_base(x: vec4<u32>, p: vec4<u32>, win: Win, i: u32, h: u32) -> u32 {
  if (i < U.NP) { return p.x + (win.w * U.NP + i) * p.y + h * p.z; }
  return x.x + (win.start + i - U.NP) * x.y + h * x.z;
}

@compute @workgroup_size(SG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) sid: u32) {
  let ex = U.boff + 4u * (U.blk0 + wid.x);
  let w = TB[ex];
  let grp = TB[ex + 1u];
  let kb0 = TB[ex + 2u];
  let nkb = TB[ex + 3u];
  let win = Win(w, TB[4u * w], TB[4u * w + 1u], TB[4u * w + 2u]);
  let h = U.h0 + wid.y;
  let hl = h - U.ph0;
  let pq0 = hl * U.rows * QREC;
  let pk0 = U.kvoff + hl * U.rows * KREC;
  let nq = U.NP + win.len;
  let nk = U.NP + win.klen;
  let pbase = (grp * U.nh + hl) * U.rows * NV;
  let m = SG - 1u;
  var xa: array<vec4<f32>, NV>;
  var xb: array<vec4<f32>, NV>;
  let s1 = min(U.s1, nkb);
  for (var s = U.s0; s < s1; s++) {
    let jb = (kb0 + s) * (R * SG);
    //#rows
    let j$r = jb + $ru * SG + sid;
    let jk$r = min(j$r, nq - 1u);
    // Rows past the key range (key padding) or masked get zero gradients.
    let isk$r = j$r < nq && j$r < nk && mask_ok(win, j$r);
    let kr$r = pk0 + out_row(win, jk$r) * KREC;
    for (var c = 0u; c < U.nv; c++) {
      xa[c] = PK[kr$r + c];
      xb[c] = PK[kr$r + NV + c];
    }
    //#unroll
    let k$r_$c = xa[$cu];
    let v$r_$c = xb[$cu];
    var ak$r_$c = vec4<f32>(0.0);
    var av$r_$c = vec4<f32>(0.0);
    //#end
    //#endrows
    var qstart = 0u;
    if (CAUSAL) { qstart = jb; }
    // A block with no key rows only writes its zero gradients.
    let qend = select(0u, nq, jb < nk);
    for (var i0 = qstart; i0 < qend; i0 += SG) {
      // This lane's query row (pre-scaled), its dO row, lse and Di.
      let il = i0 + sid;
      let ic = min(il, nq - 1u);
      let qr = pq0 + out_row(win, ic) * QREC;
      let st = PK[qr + KREC];
      let ll = select(NEG, st.x, il < nq);
      let dd = st.y;
      //#unroll
      let qq$c = PK[qr + $cu];
      let gg$c = PK[qr + NV + $cu];
      var dq$c = vec4<f32>(0.0);
      //#end
      //#steps
      {
        // Sub-step $s: lane l takes queries l+4·$s … l+4·$s+3 (mod SG) of the block.
        let u = $su * 4u;
        let t0 = (sid + u) & m;
        let t1 = (sid + u + 1u) & m;
        let t2 = (sid + u + 2u) & m;
        let t3 = (sid + u + 3u) & m;
        let l0 = subgroupShuffle(ll, t0);
        let l1 = subgroupShuffle(ll, t1);
        let l2 = subgroupShuffle(ll, t2);
        let l3 = subgroupShuffle(ll, t3);
        let dd0 = subgroupShuffle(dd, t0);
        let dd1 = subgroupShuffle(dd, t1);
        let dd2 = subgroupShuffle(dd, t2);
        let dd3 = subgroupShuffle(dd, t3);
        //#rows
        var s$r_0 = 0.0;
        var s$r_1 = 0.0;
        var s$r_2 = 0.0;
        var s$r_3 = 0.0;
        var e$r_0 = 0.0;
        var e$r_1 = 0.0;
        var e$r_2 = 0.0;
        var e$r_3 = 0.0;
        //#endrows
        // Scores, then dO·v: one product at a time keeps fewer values live (llvmpipe spills the rest).
        //#unroll
        let x0_$c = subgroupShuffle(qq$c, t0);
        let x1_$c = subgroupShuffle(qq$c, t1);
        let x2_$c = subgroupShuffle(qq$c, t2);
        let x3_$c = subgroupShuffle(qq$c, t3);
        //#rows
        s$r_0 += dot(k$r_$c, x0_$c);
        s$r_1 += dot(k$r_$c, x1_$c);
        s$r_2 += dot(k$r_$c, x2_$c);
        s$r_3 += dot(k$r_$c, x3_$c);
        //#endrows
        //#end
        //#unroll
        let y0_$c = subgroupShuffle(gg$c, t0);
        let y1_$c = subgroupShuffle(gg$c, t1);
        let y2_$c = subgroupShuffle(gg$c, t2);
        let y3_$c = subgroupShuffle(gg$c, t3);
        //#rows
        e$r_0 += dot(v$r_$c, y0_$c);
        e$r_1 += dot(v$r_$c, y1_$c);
        e$r_2 += dot(v$r_$c, y2_$c);
        e$r_3 += dot(v$r_$c, y3_$c);
        //#endrows
        //#end
        //#rows
        let p$r_0 = select(0.0, exp(s$r_0 - l0), isk$r & (l0 > NEG_HALF) & causal_ok(i0 + t0, j$r));
        let p$r_1 = select(0.0, exp(s$r_1 - l1), isk$r & (l1 > NEG_HALF) & causal_ok(i0 + t1, j$r));
        let p$r_2 = select(0.0, exp(s$r_2 - l2), isk$r & (l2 > NEG_HALF) & causal_ok(i0 + t2, j$r));
        let p$r_3 = select(0.0, exp(s$r_3 - l3), isk$r & (l3 > NEG_HALF) & causal_ok(i0 + t3, j$r));
        let d$r_0 = p$r_0 * (e$r_0 - dd0);
        let d$r_1 = p$r_1 * (e$r_1 - dd1);
        let d$r_2 = p$r_2 * (e$r_2 - dd2);
        let d$r_3 = p$r_3 * (e$r_3 - dd3);
        //#endrows
        // The dQ contributions go back to the lanes that own those queries: lane t took its query
        // from lane (t − u − n) mod SG at sub-step n.
        let b0 = (sid + 2u * SG - u) & m;
        let b1 = (sid + 2u * SG - u - 1u) & m;
        let b2 = (sid + 2u * SG - u - 2u) & m;
        let b3 = (sid + 2u * SG - u - 3u) & m;
        //#unroll
        var z0_$c = vec4<f32>(0.0);
        var z1_$c = vec4<f32>(0.0);
        var z2_$c = vec4<f32>(0.0);
        var z3_$c = vec4<f32>(0.0);
        //#rows
        ak$r_$c += (d$r_0 * x0_$c + d$r_1 * x1_$c) + (d$r_2 * x2_$c + d$r_3 * x3_$c);
        z0_$c += d$r_0 * k$r_$c;
        z1_$c += d$r_1 * k$r_$c;
        z2_$c += d$r_2 * k$r_$c;
        z3_$c += d$r_3 * k$r_$c;
        //#endrows
        dq$c += (subgroupShuffle(z0_$c, b0) + subgroupShuffle(z1_$c, b1)) + (subgroupShuffle(z2_$c, b2) + subgroupShuffle(z3_$c, b3));
        //#end
        //#unroll
        //#rows
        av$r_$c += (p$r_0 * y0_$c + p$r_1 * y1_$c) + (p$r_2 * y2_$c + p$r_3 * y3_$c);
        //#endrows
        //#end
      }
      //#endsteps
      if (il < nq) {
        let pb = pbase + out_row(win, il) * NV;
        //#unroll
        SP[pb + $cu] += dq$c;
        //#end
      }
    }
    //#rows
    //#unroll
    xa[$cu] = ak$r_$c;
    xb[$cu] = av$r_$c;
    //#end
    if (j$r < nq) {
      let kb = grad_base(U.gk, U.gpk, win, j$r, h);
      let vb = grad_base(U.gv, U.gpv, win, j$r, h);
      for (var c = 0u; c < U.nv; c++) {
        st4_g(kb, c, xa[c]);
        st4_g(vb, c, xb[c]);
      }
    }
    //#endrows
  }
}
