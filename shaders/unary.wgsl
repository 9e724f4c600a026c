// out = f(a) elementwise; f is the op's expression over `a`, `alpha`, `beta`, `idx`.
// START/STEP placeholders: strided addressing generated per layout (src/kernels/strided.ts).
@group(0) @binding(1) var<storage, read> A: array<T>;
@group(0) @binding(2) var<storage, read_write> O: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * nwg.x + wid.x;
{{START}}
  let alpha = P.alpha;
  let beta = P.beta;
  for (var k = 0u; k < cnt; k++) {
    let a = f32(A[o.y]);
    O[o.x] = T({{EXPR}});
{{STEP}}
  }
}
