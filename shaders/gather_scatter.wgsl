// Backward pass 2 of gather: each head token sums its chain of g rows, in token order, into its
// table row. Rows no token names are left as they are (the caller zero-fills). Needs gather_common.wgsl.
@group(0) @binding(1) var<storage, read> G: array<T>;
@group(0) @binding(2) var<storage, read> I: array<i32>;
@group(0) @binding(3) var<storage, read> L: array<u32>;
@group(0) @binding(4) var<storage, read_write> O: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= P.n * P.d) { return; }
  let row = i / P.d;
  if (L[2u * row] == 0u) { return; }
  let col = i % P.d;
  var acc = 0.0;
  var m = row;
  while (m < P.n) {
    acc += f32(G[P.w_off + m * P.d + col]);
    m = L[2u * m + 1u];
  }
  O[P.o_off + u32(I[P.i_off + row]) * P.d + col] = T(acc);
}
