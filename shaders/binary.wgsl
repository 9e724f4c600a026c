// out = f(a, b) elementwise with broadcasting (stride 0); f over `a`, `b`, `alpha`, `beta`, `idx`.
// START/STEP placeholders: strided addressing generated per layout (src/kernels/strided.ts).
@group(0) @binding(1) var<storage, read> A: array<T>;
@group(0) @binding(2) var<storage, read> B: array<T>;
@group(0) @binding(3) var<storage, read_write> O: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * nwg.x + wid.x;
{{START}}
  let alpha = P.alpha;
  let beta = P.beta;
  for (var k = 0u; k < cnt; k++) {
    let a = f32(A[o.y]);
    let b = f32(B[o.z]);
    O[o.x] = T({{EXPR}});
{{STEP}}
  }
}
