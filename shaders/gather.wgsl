// Row gather: out[t, c] = table[idx[t], c] (zeros for an index outside [0, V)). Needs gather_common.wgsl.
@group(0) @binding(1) var<storage, read> W: array<T>;
@group(0) @binding(2) var<storage, read> I: array<i32>;
@group(0) @binding(3) var<storage, read_write> O: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = flat(wid, nwg, lid);
  if (i >= P.n * P.d) { return; }
  let row = i / P.d;
  let col = i % P.d;
  let idx = I[P.i_off + row];
  var x = T(0.0);
  if (valid(idx)) { x = W[P.w_off + u32(idx) * P.s_v + col * P.s_d]; }
  O[P.o_off + i] = x;
}
