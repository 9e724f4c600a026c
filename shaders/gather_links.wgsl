// Backward pass 1 of gather: head flags and next-token links per token. Needs gather_common.wgsl.
@group(0) @binding(1) var<storage, read> I: array<i32>;
// L[2t] = 1 when token t is the first valid token with its index, L[2t + 1] = next token with the
// same index (n when none).
@group(0) @binding(2) var<storage, read_write> L: array<u32>;

var<workgroup> tile: array<i32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = flat(wid, nwg, lid);
  let live = t < P.n;
  var mine = -1;
  if (live) { mine = I[P.i_off + t]; }
  var head = live && valid(mine);
  var next = P.n;
  // Every invocation runs every tile (barriers need uniform control flow).
  let tiles = (P.n + WG - 1u) / WG;
  for (var k = 0u; k < tiles; k++) {
    let m0 = k * WG;
    let src = m0 + lid;
    tile[lid] = select(-1, I[P.i_off + min(src, P.n - 1u)], src < P.n);
    workgroupBarrier();
    if (head || next == P.n) {
      let cnt = min(WG, P.n - m0);
      for (var j = 0u; j < cnt; j++) {
        if (tile[j] == mine) {
          let m = m0 + j;
          if (m < t) { head = false; }
          if (m > t && next == P.n) { next = m; }
        }
      }
    }
    workgroupBarrier();
  }
  if (live) {
    L[2u * t] = select(0u, 1u, head);
    L[2u * t + 1u] = next;
  }
}
