// Shared by the windowed flash-attention kernels (docs/attention.md).
//
// Rows: a window w is its NP prefix rows (CLS, register), stored at rows w*NP.. of the prefix tensors
// (PRE), followed by `len` patch rows start..start+len-1 of the patch tensors (Q, K, V). Local index
// i < NP is a prefix row, i >= NP the patch row start + i - NP. Keys are the local rows < NP + klen
// (key padding: klen < len), optionally further filtered by MASK (one u32 per patch row, 0 = masked).
// Workgroup b handles BLK consecutive local rows of one window: block table entry (window, first row).
//
// Each operand is addressed as off + row * rs + head * hs + d (vec4 .x, .y, .z), so q, k and v can be
// strided views of one fused qkv projection. All arithmetic is f32; T is the storage type.
//
// src/kernels/attention.ts expands `//#if vec` … `//#else` … `//#endif` (vec4 bindings when every
// offset and stride is a multiple of 4), `//#rows` … `//#endrows` (once per row an invocation owns,
// `$r`) and `//#unroll` … `//#end` (once per vec4 of the head dim, `$c` = 0 … NV−1: per-invocation
// vectors live in NV vec4 variables, since indexed private arrays become per-lane scratch memory on
// CPU adapters).
alias T = f32;

const D: u32 = {{D}}u;        // head dim
const NV: u32 = {{NV}}u;      // vec4s per head-dim row (D padded to 4·NV with zeros)
const BLK: u32 = {{BLK}}u;    // rows per workgroup = invocations
const TILE: u32 = {{TILE}}u;  // streamed rows per workgroup tile (workgroup-memory kernels)
const SG: u32 = {{SG}}u;      // subgroup size (subgroup kernels; a workgroup is one subgroup)
const R: u32 = {{R}}u;        // rows per invocation (subgroup kernels)
const CAUSAL: bool = {{CAUSAL}};
const USE_MASK: bool = {{MASK}};
// Finite stand-in for -inf: WGSL lets implementations assume no infinities.
const NEG: f32 = -3.0e38;
const NEG_HALF: f32 = -1.0e38;
const ONE4: vec4<f32> = vec4<f32>(1.0);

struct Params {
  H: u32, NP: u32, nblk: u32, blk0: u32,
  h0: u32, boff: u32, T: u32, scale: f32,
  q: vec4<u32>, k: vec4<u32>, v: vec4<u32>,
  pq: vec4<u32>, pk: vec4<u32>, pv: vec4<u32>,
  // Backward only: where the gradients go (one buffer G), and dO by output row.
  gq: vec4<u32>, gk: vec4<u32>, gv: vec4<u32>,
  gpq: vec4<u32>, gpk: vec4<u32>, gpv: vec4<u32>,
  go: vec4<u32>,
  // Loop bounds as uniforms, so compilers keep those loops rolled.
  dim: u32, tile: u32, sg: u32, nv: u32,
}
@group(0) @binding(0) var<uniform> U: Params;
@group(0) @binding(1) var<storage, read> TB: array<u32>;
//#if vec
@group(0) @binding(2) var<storage, read> Q: array<vec4<T>>;
@group(0) @binding(3) var<storage, read> K: array<vec4<T>>;
@group(0) @binding(4) var<storage, read> V: array<vec4<T>>;
@group(0) @binding(5) var<storage, read> PRE: array<vec4<T>>;
fn q4(a: u32) -> vec4<f32> { return vec4<f32>(Q[a >> 2u]); }
fn k4(a: u32) -> vec4<f32> { return vec4<f32>(K[a >> 2u]); }
fn v4(a: u32) -> vec4<f32> { return vec4<f32>(V[a >> 2u]); }
fn p4(a: u32) -> vec4<f32> { return vec4<f32>(PRE[a >> 2u]); }
//#else
@group(0) @binding(2) var<storage, read> Q: array<T>;
@group(0) @binding(3) var<storage, read> K: array<T>;
@group(0) @binding(4) var<storage, read> V: array<T>;
@group(0) @binding(5) var<storage, read> PRE: array<T>;
// Reads past D (next head or row, or clamped by robust access) are dropped by tail().
fn q4(a: u32) -> vec4<f32> { return vec4<f32>(f32(Q[a]), f32(Q[a + 1u]), f32(Q[a + 2u]), f32(Q[a + 3u])); }
fn k4(a: u32) -> vec4<f32> { return vec4<f32>(f32(K[a]), f32(K[a + 1u]), f32(K[a + 2u]), f32(K[a + 3u])); }
fn v4(a: u32) -> vec4<f32> { return vec4<f32>(f32(V[a]), f32(V[a + 1u]), f32(V[a + 2u]), f32(V[a + 3u])); }
fn p4(a: u32) -> vec4<f32> { return vec4<f32>(f32(PRE[a]), f32(PRE[a + 1u]), f32(PRE[a + 2u]), f32(PRE[a + 3u])); }
//#endif
@group(0) @binding(6) var<storage, read> MASK: array<u32>;

struct Win { w: u32, i0: u32, start: u32, len: u32, klen: u32 }

fn block_of(bx: u32) -> Win {
  let b = U.blk0 + bx;
  let w = TB[U.boff + 2u * b];
  let i0 = TB[U.boff + 2u * b + 1u];
  return Win(w, i0, TB[4u * w], TB[4u * w + 1u], TB[4u * w + 2u]);
}

// Element index of (local row i, head h, d = 0) in an operand: prefix descriptor p, patch descriptor x.
fn base_of(x: vec4<u32>, p: vec4<u32>, win: Win, i: u32, h: u32) -> u32 {
  if (i < U.NP) { return p.x + (win.w * U.NP + i) * p.y + h * p.z; }
  return x.x + (win.start + i - U.NP) * x.y + h * x.z;
}

fn tail(v: vec4<f32>, c: u32) -> vec4<f32> {
  return select(vec4<f32>(0.0), v, vec4<u32>(4u * c) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(D));
}
// Dims 4c … 4c+3 of local row i.
fn ld4_q(win: Win, i: u32, h: u32, c: u32) -> vec4<f32> {
  let a = base_of(U.q, U.pq, win, i, h) + 4u * c;
  var r: vec4<f32>;
  if (i < U.NP) { r = p4(a); } else { r = q4(a); }
  return tail(r, c);
}
fn ld4_k(win: Win, i: u32, h: u32, c: u32) -> vec4<f32> {
  let a = base_of(U.k, U.pk, win, i, h) + 4u * c;
  var r: vec4<f32>;
  if (i < U.NP) { r = p4(a); } else { r = k4(a); }
  return tail(r, c);
}
fn ld4_v(win: Win, i: u32, h: u32, c: u32) -> vec4<f32> {
  let a = base_of(U.v, U.pv, win, i, h) + 4u * c;
  var r: vec4<f32>;
  if (i < U.NP) { r = p4(a); } else { r = v4(a); }
  return tail(r, c);
}

// Non-short-circuit `|` / `&` in these row tests: a short-circuit is a branch, and SwiftShader's
// compiler blew up (minutes, out of memory) on the unrolled kernels' hundreds of them.
fn causal_ok(i: u32, j: u32) -> bool { return !CAUSAL | (j <= i); }
fn mask_ok(win: Win, j: u32) -> bool { return !USE_MASK || j < U.NP || MASK[win.start + j - U.NP] != 0u; }
// Is local row j a key query i may attend to?
fn key_ok(win: Win, i: u32, j: u32) -> bool {
  return j < U.NP + win.klen && causal_ok(i, j) && mask_ok(win, j);
}

// Row of the combined output / log-sum-exp: patch rows first, then the prefix rows.
fn out_row(win: Win, i: u32) -> u32 {
  if (i < U.NP) { return U.T + win.w * U.NP + i; }
  return win.start + i - U.NP;
}
