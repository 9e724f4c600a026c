// NiiVue (WebGL2) showing one volume, optionally with the relevance map as a coloured overlay. Volumes
// arrive as NIfTI bytes made by the worker, so nothing is fetched.
import { Niivue, NVImage, SHOW_RENDER } from '@niivue/niivue';
import type { ViewVolume } from '../protocol.js';

/** Overlay voxels below this fraction of the map's range stay transparent (the reference's mosaic mask). */
export const OVERLAY_THRESHOLD = 0.25;

export class Viewer {
  private constructor(readonly nv: Niivue) {}

  static async create(canvas: HTMLCanvasElement): Promise<Viewer> {
    // Three orthogonal slices, no 3-D render (a coarse relevance map renders as a block).
    const nv = new Niivue({ backColor: [0.08, 0.08, 0.1, 1], isColorbar: false, dragAndDropEnabled: false, loadingText: 'open a study', multiplanarShowRender: SHOW_RENDER.NEVER, crosshairWidth: 0.5, crosshairColor: [0.2, 0.8, 1, 0.6] });
    await nv.attachToCanvas(canvas);
    nv.setSliceType(nv.sliceTypeMultiplanar);
    return new Viewer(nv);
  }

  /** Replaces what is shown: `base` in grey, `overlay` (values in [0, 1]) in warm colours on top. */
  async show(base: ViewVolume, overlay: ViewVolume | null = null): Promise<void> {
    const load = (v: ViewVolume, opts: Record<string, unknown>) => NVImage.loadFromUrl({ url: v.nifti, name: `${v.name.replace(/[^\w.-]+/g, '_')}.nii`, ...opts });
    const images = [await load(base, { colormap: 'gray' })];
    if (overlay) images.push(await load(overlay, { colormap: 'warm', opacity: 0.5, cal_min: OVERLAY_THRESHOLD, cal_max: 1 }));
    while (this.nv.volumes.length) this.nv.removeVolumeByIndex(0);
    for (const im of images) this.nv.addVolume(im);
  }

  /** Names of the layers shown (base first), for the page state the tests read. */
  layers(): { name: string; colormap: string }[] {
    return this.nv.volumes.map((v) => ({ name: v.name, colormap: v.colormap }));
  }
}
