// Live training-loss plot: an SVG polyline rescaled as points arrive.
const NS = 'http://www.w3.org/2000/svg';
const W = 400;
const H = 160;
const PAD = 28;

export class LossPlot {
  private readonly points: [number, number][] = [];
  private readonly line: SVGPolylineElement;
  private readonly label: SVGTextElement;

  constructor(private readonly svg: SVGSVGElement, private readonly totalSteps: number) {
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('preserveAspectRatio', 'xMinYMid meet');
    svg.replaceChildren();
    const axis = document.createElementNS(NS, 'path');
    axis.setAttribute('d', `M${PAD} 6 V${H - PAD} H${W - 6}`);
    axis.setAttribute('class', 'axis');
    this.line = document.createElementNS(NS, 'polyline');
    this.line.setAttribute('class', 'loss');
    this.label = document.createElementNS(NS, 'text');
    this.label.setAttribute('x', String(PAD + 6));
    this.label.setAttribute('y', '16');
    svg.append(axis, this.line, this.label);
  }

  add(step: number, loss: number): void {
    if (!Number.isFinite(loss)) return;
    this.points.push([step, loss]);
    const lo = Math.min(...this.points.map((p) => p[1]));
    const hi = Math.max(...this.points.map((p) => p[1]));
    const x = (s: number) => PAD + ((W - PAD - 6) * s) / Math.max(1, this.totalSteps - 1);
    const y = (l: number) => 6 + (H - PAD - 6) * (hi > lo ? (hi - l) / (hi - lo) : 0.5);
    this.line.setAttribute('points', this.points.map(([s, l]) => `${x(s).toFixed(1)},${y(l).toFixed(1)}`).join(' '));
    this.label.textContent = `step ${step + 1}/${this.totalSteps}  loss ${loss.toFixed(4)}  (range ${lo.toFixed(3)}–${hi.toFixed(3)})`;
  }
}
