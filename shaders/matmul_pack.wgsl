// Packs B (strided [batch, K, N] view) into uniform-buffer windows for matmul_sg.wgsl: window w holds
// `chunk` rows of one 32-column strip as [512][32] f32 (64 KiB; rows past `chunk` are never read).
// Rows past K and columns past N are zero, so the matmul needs no edge tests in its inner loop.
// One invocation per 4 columns of a row.
alias T = f32;

struct Params {
  K: u32, N: u32, chunk: u32, nchunks: u32,   // chunk: K-rows per chunk (multiple of 32); windows per strip
  b: vec4<u32>,                                // offset, row stride, col stride, batch stride
  strip0: u32, nstrips: u32, total: u32, pad: u32, // first global strip (batch-major), strips per batch, vec4s
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> B: array<T>;
@group(0) @binding(2) var<storage, read_write> W: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= P.total) { return; }
  let per = P.chunk * 8u;
  let win = i / per;
  let e = i % per;
  let row = e / 8u;
  let q = e % 8u;
  let gs = P.strip0 + win / P.nchunks;
  let k = (win % P.nchunks) * P.chunk + row;
  let n = (gs % P.nstrips) * 32u + q * 4u;
  var v = vec4<f32>(0.0);
  if (k < P.K) {
    let base = P.b.x + (gs / P.nstrips) * P.b.w + k * P.b.y;
    for (var j = 0u; j < 4u; j++) {
      if (n + j < P.N) { v[j] = f32(B[base + (n + j) * P.b.z]); }
    }
  }
  W[win * 4096u + row * 8u + q] = v;
}
