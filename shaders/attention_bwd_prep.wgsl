// Packs the fused backward's operands per head (attention_bwd_fused_sg.wgsl), one invocation per
// (head of this pass, output row): the query record [q·scale, dO, (lse, Di, 0, 0)] and the key record
// [k, v] as f32 vec4 rows (head dim padded with zeros to 4·NV), with Di = rowsum(dO ∘ O). Output rows
// are the patch rows, then the prefix rows (rows T… of the prefix operands).
alias T = f32;
const D: u32 = {{D}}u;
const NV: u32 = {{NV}}u;
const WG: u32 = 64u;
const QREC: u32 = 2u * NV + 1u;
const KREC: u32 = 2u * NV;

struct Params {
  n: u32, nh: u32, ph0: u32, rows: u32,
  T: u32, kvoff: u32, H: u32, scale: f32,
  q: vec4<u32>, k: vec4<u32>, v: vec4<u32>,
  pq: vec4<u32>, pk: vec4<u32>, pv: vec4<u32>,
  go: vec4<u32>,
}
@group(0) @binding(0) var<uniform> U: Params;
@group(0) @binding(1) var<storage, read> Q: array<T>;
@group(0) @binding(2) var<storage, read> K: array<T>;
@group(0) @binding(3) var<storage, read> V: array<T>;
@group(0) @binding(4) var<storage, read> PRE: array<T>;
@group(0) @binding(5) var<storage, read> GO: array<T>;
@group(0) @binding(6) var<storage, read> O: array<T>;
@group(0) @binding(7) var<storage, read> LSE: array<f32>;
@group(0) @binding(8) var<storage, read_write> PK: array<vec4<f32>>;

fn base(x: vec4<u32>, p: vec4<u32>, r: u32, h: u32) -> u32 {
  if (r < U.T) { return x.x + r * x.y + h * x.z; }
  return p.x + (r - U.T) * p.y + h * p.z;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * WG + lid;
  if (idx >= U.n) { return; }
  let hl = idx / U.rows;
  let r = idx - hl * U.rows;
  let h = U.ph0 + hl;
  let pre = r >= U.T;
  let qa = base(U.q, U.pq, r, h);
  let ka = base(U.k, U.pk, r, h);
  let va = base(U.v, U.pv, r, h);
  let ga = U.go.x + r * U.go.y + h * U.go.z;
  let oa = (r * U.H + h) * D;
  let qrec = idx * QREC;
  let krec = U.kvoff + idx * KREC;
  var di = 0.0;
  for (var c = 0u; c < NV; c++) {
    var q4 = vec4<f32>(0.0);
    var k4 = vec4<f32>(0.0);
    var v4 = vec4<f32>(0.0);
    var g4 = vec4<f32>(0.0);
    for (var e = 0u; e < 4u; e++) {
      let d = 4u * c + e;
      if (d < D) {
        if (pre) {
          q4[e] = f32(PRE[qa + d]);
          k4[e] = f32(PRE[ka + d]);
          v4[e] = f32(PRE[va + d]);
        } else {
          q4[e] = f32(Q[qa + d]);
          k4[e] = f32(K[ka + d]);
          v4[e] = f32(V[va + d]);
        }
        g4[e] = f32(GO[ga + d]);
        di += g4[e] * f32(O[oa + d]);
      }
    }
    PK[qrec + c] = q4 * U.scale;
    PK[qrec + NV + c] = g4;
    PK[krec + c] = k4;
    PK[krec + NV + c] = v4;
  }
  PK[qrec + KREC] = vec4<f32>(LSE[r * U.H + h], di, 0.0, 0.0);
}
