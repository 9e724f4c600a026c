// out = convert(a) between storage types TI and TO (any two of the tensor dtypes), with
// elementwise_common.wgsl's strided addressing. Float → i32 truncates toward zero (saturating).
// (Half precision is not named in comments: the preprocessor enables it on any mention.)
@group(0) @binding(1) var<storage, read> A: array<{{TI}}>;
@group(0) @binding(2) var<storage, read_write> O: array<{{TO}}>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = linear_index(wid, nwg, lid);
  if (idx >= P.n) { return; }
  let o = locate(idx);
  O[o.x] = {{TO}}(A[o.y]);
}
