// Matmul for CPU adapters (llvmpipe) that reads both operands where they lie: no packed copies, one
// dispatch per product. Costs on llvmpipe (measured): a lane-varying storage load runs a per-lane loop
// whose price is per load instruction, not per component, so every load here is a vec4 (loads are still
// ~3/4 of the time); a lane-uniform address costs more still (never used); subgroupBroadcast and FMAs
// are cheap.
//  * one 8-lane subgroup per workgroup owns TM rows × 32·NV columns; lane l owns columns 4l … 4l+3 of
//    each 32-column half.
//  * A row-major (unit column stride): a vec4 per lane holds 32 K-values of a row, spread with
//    subgroupBroadcast. A column-major (unit row stride, e.g. the backward's Xᵀ): a vec4 per lane holds
//    4 rows at one K-value, 8 K-values per load.
//  * B row-major: one vec4 per K-step. B column-major (the forward's Wᵀ): vec4s along K, transposed in
//    registers.
//  * the 32-step body is unrolled in TypeScript (BODY); loads past K are masked to zero and its 8-step
//    chunks past K skipped, so K needs no padding and no second (tail) body.
// Addresses are in vec4 units, so offsets and the non-unit strides must be multiples of 4 (the caller
// checks). Rows past M and columns past N are computed from in-bounds addresses and never stored.
alias T = f32;

struct Params {
  M: u32, N: u32, K: u32, flags: u32,        // flags: the constants below
  a: vec4<u32>,                               // vec4 units: offset, non-unit stride, batch stride, unused
  b: vec4<u32>,
  o: vec4<u32>,                               // elements: offset, row stride, column stride, batch stride
  pre_off: u32, bias_off: u32, bias_s: u32, pad3: u32,
  tm: u32, pad0: u32, pad1: u32, pad2: u32,   // tm = TM, a uniform so the epilogue loops stay loops
}
const BIAS = 1u;
const GELU = 2u;
const PRE = 4u;
const BIAS_ROWS = 8u;
const VEC_ROWS = 16u;   // output rows are contiguous and 4-aligned: one vec4 store per row and lane
const VEC_COLS = 32u;   // output columns are contiguous and 4-aligned: vec4 stores along 4 rows

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> A: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> B: array<vec4<T>>;
@group(0) @binding(3) var<storage, read_write> O: array<vec4<T>>;
@group(0) @binding(4) var<storage, read> Bias: array<T>;   // a placeholder when BIAS is off

fn put(i: u32, v: f32) { O[i / 4u][i % 4u] = T(v); }

fn gelu4(v: vec4<f32>) -> vec4<f32> { return vec4<f32>(mm_gelu(v.x), mm_gelu(v.y), mm_gelu(v.z), mm_gelu(v.w)); }

/** Stores v (pre-activation) at element offset o: the pre-activation copy, then GELU, then the output. */
fn put1(o: u32, x: f32) {
  var v = x;
  if ((P.flags & PRE) != 0u) { put(P.pre_off + o, v); }
  if ((P.flags & GELU) != 0u) { v = mm_gelu(v); }
  put(P.o.x + o, v);
}

/** The same for 4 contiguous, 4-aligned elements at o: one vec4 store per array. */
fn put4(o: u32, x: vec4<f32>) {
  var v = x;
  if ((P.flags & PRE) != 0u) { O[(P.pre_off + o) / 4u] = vec4<T>(v); }
  if ((P.flags & GELU) != 0u) { v = gelu4(v); }
  O[(P.o.x + o) / 4u] = vec4<T>(v);
}

// Row biases of tile rows i (… i+3): lane l holds rows 8t + l, so one shuffle per row.
fn brow1(brow: ptr<function, array<f32, {{TM8}}>>, i: u32) -> f32 {
  return subgroupShuffle((*brow)[i / 8u], i % 8u);
}
fn brow4(brow: ptr<function, array<f32, {{TM8}}>>, i: u32) -> vec4<f32> {
  return vec4<f32>(brow1(brow, i), brow1(brow, i + 1u), brow1(brow, i + 2u), brow1(brow, i + 3u));
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let bt = wid.z;
  let m0 = wid.x * {{TM}}u;
  let n0 = wid.y * {{NV}}u * 32u;
  let ab = P.a.x + bt * P.a.z;
  let bb = P.b.x + bt * P.b.z;
{{DECL}}
  for (var k = 0u; k < P.K; k += 32u) {
{{BODY}}
  }
  // The epilogue runs once per tile: loops over a private array (bounds from uniforms), since TM
  // inlined copies of the per-lane stores make LLVM's compile time explode. Lane-varying stores cost a
  // per-lane loop each, so contiguous outputs are written as vec4s.
  var tile: array<vec4<f32>, {{TILES}}>;
{{STASH}}
  let tm = min(P.tm, {{TM}}u);
  let bias = (P.flags & BIAS) != 0u;
  let bias_rows = (P.flags & BIAS_ROWS) != 0u;
  // Bias along rows: lane l loads rows m0 + 8t + l, shuffled out per row.
  var brow: array<f32, {{TM8}}>;
  if (bias && bias_rows) {
    for (var t = 0u; t < {{TM8}}u; t++) { brow[t] = f32(Bias[P.bias_off + min(m0 + 8u * t + lane, P.M - 1u) * P.bias_s]); }
  }
  let ob = bt * P.o.w;
  for (var h = 0u; h < {{NV}}u; h++) {
    let n = n0 + 32u * h + 4u * lane;
    // Bias along columns: this lane's 4 values.
    var bcol = vec4<f32>(0.0);
    if (bias && !bias_rows) {
      for (var j = 0u; j < 4u; j++) { bcol[j] = f32(Bias[P.bias_off + min(n + j, P.N - 1u) * P.bias_s]); }
    }
    if ((P.flags & VEC_COLS) != 0u) {
      // Column-major output (the transposed problem): vec4s along 4 rows of one column.
      for (var i = 0u; i < tm; i += 4u) {
        let m = m0 + i;
        if (m >= P.M) { break; }
        var br = vec4<f32>(0.0);
        if (bias && bias_rows) { br = brow4(&brow, i); }
        for (var j = 0u; j < 4u; j++) {
          if (n + j >= P.N) { break; }
          let o = ob + m + (n + j) * P.o.z;
          let t = i * {{NV}}u + h;
          var v = vec4<f32>(tile[t][j], tile[t + {{NV}}u][j], tile[t + 2u * {{NV}}u][j], tile[t + 3u * {{NV}}u][j]);
          if (bias) { v += select(vec4<f32>(bcol[j]), br, bias_rows); }
          if (m + 3u < P.M) { put4(o, v); } else {
            for (var r = 0u; r < P.M - m; r++) { put1(o + r, v[r]); }
          }
        }
      }
    } else {
      for (var i = 0u; i < tm; i++) {
        let m = m0 + i;
        if (m >= P.M) { break; }
        let o = ob + m * P.o.y + n * P.o.z;
        var v = tile[i * {{NV}}u + h];
        if (bias) {
          if (bias_rows) { v += vec4<f32>(brow1(&brow, i)); } else { v += bcol; }
        }
        if ((P.flags & VEC_ROWS) != 0u && n + 3u < P.N) { put4(o, v); } else {
          for (var j = 0u; j < 4u; j++) {
            if (n + j >= P.N) { break; }
            put1(o + j * P.o.z, v[j]);
          }
        }
      }
    }
  }
}
