// Row gather (embedding lookup) and its deterministic scatter-add backward.
// Rows whose index is outside [0, V) read as zeros and receive no gradient, so no access is ever out
// of bounds. Backward needs no float atomics: `links` finds, for every token, whether it is the first
// with its index (the head) and the next token with the same index; `scatter` then lets each head sum
// its chain in token order, so the result is the same on every run and every device.
alias T = f32;

struct Params {
  n: u32,        // tokens (rows of the output / of g)
  d: u32,        // row length
  v: u32,        // table rows
  i_off: u32,    // element offset of the indices
  w_off: u32,    // element offset of the table (gather) or of g (scatter)
  s_v: u32,      // table strides (gather)
  s_d: u32,
  o_off: u32,    // element offset of the output
}
@group(0) @binding(0) var<uniform> P: Params;

override WG: u32 = 256u;

fn flat(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.y * nwg.x + wid.x) * WG + lid;
}
fn valid(idx: i32) -> bool {
  return idx >= 0 && u32(idx) < P.v;
}
