// Line charts over training steps, drawn with the vendored uPlot (window.uPlot). A curve is
// given the job's metrics (one object per step) and the names of the series to draw; steps a
// series has no value for (validation runs every few steps) are gaps it spans. A series with
// `scale: "ratio"` (token accuracy, 0 to 1) is read on a second axis, on the right: on the
// loss axis it would be a flat line.

// Steps are whole numbers: the step axis ticks at these spacings, never at 1.5.
const STEP_INCREMENTS = [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 20000, 50000];
export const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

export class Curve {
  constructor(container, { title, series, yLabel = "", ratioLabel = "accuracy" }) {
    this.container = container;
    this.series = series; // [{key, label, scale?, dash?, color?}]
    this.yLabel = yLabel;
    this.ratioLabel = ratioLabel;
    this.plot = null;
    this.title = title;
    this.points = 0;
    this.onResize = () => this.plot && this.plot.setSize(this.size());
    window.addEventListener("resize", this.onResize);
  }

  size() {
    // clientWidth counts the box's padding (8px a side), which the plot must leave free.
    return { width: Math.max(320, (this.container.clientWidth || 656) - 16), height: 260 };
  }

  // rows: the job's metrics, sorted by step. Draws only the series that have a value somewhere.
  update(rows) {
    const shown = this.series.filter((s) => rows.some((r) => typeof r[s.key] === "number"));
    const steps = rows.filter((r) => shown.some((s) => typeof r[s.key] === "number"));
    const data = [steps.map((r) => r.step), ...shown.map((s) => steps.map((r) => (typeof r[s.key] === "number" ? r[s.key] : null)))];
    const keys = shown.map((s) => s.key).join(",");
    if (!this.plot || keys !== this.keys) {
      if (this.plot) this.plot.destroy();
      this.container.replaceChildren();
      this.keys = keys;
      const axes = this.axes(shown);
      // uPlot draws axes on its canvas: their labels are written out here too, for tests.
      this.container.dataset.axes = axes.map((a) => a.label).filter(Boolean).join(",");
      this.plot = new window.uPlot({
        title: this.title,
        ...this.size(),
        scales: { x: { time: false }, ratio: { range: [0, 1] } },
        axes,
        series: [{ label: "step" }, ...shown.map((s, i) => ({
          label: s.label, stroke: s.color || COLORS[i % COLORS.length], width: 2, spanGaps: true,
          scale: s.scale || "y", dash: s.dash, points: { show: steps.length < 60 },
        }))],
      }, data, this.container);
    } else {
      this.plot.setData(data);
    }
    // How many steps the chart holds, where a test or a curious user can read it.
    this.points = steps.length;
    this.container.dataset.points = String(this.points);
  }

  axes(shown) {
    const axes = [{ label: "step", incrs: STEP_INCREMENTS }, { label: this.yLabel, scale: "y" }];
    if (shown.some((s) => s.scale === "ratio")) {
      axes.push({ label: this.ratioLabel, scale: "ratio", side: 1, grid: { show: false } });
    }
    return axes;
  }

  destroy() {
    window.removeEventListener("resize", this.onResize);
    if (this.plot) this.plot.destroy();
  }
}
