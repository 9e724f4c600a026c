// Acceptance bounds for the visual fixtures, as max|got − ref| / max|ref| per tensor.
/** Forward outputs vs the reference. */
export const OUT_TOL = 1e-4;
/** Gradients vs the reference. */
export const GRAD_TOL = 1e-3;
/**
 * Node vs Chromium on the same fixture. Each runtime asserts CROSS_TOL / 2 against the shared reference
 * tensor, which bounds their mutual difference by CROSS_TOL (triangle inequality, same denominator).
 */
export const CROSS_TOL = 1e-5;
