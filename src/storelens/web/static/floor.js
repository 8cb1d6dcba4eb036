/* Floor: the heat grid over the floor plan (daypart buttons switch grids), zones vs sales. */
"use strict";
(function () {
  const v = SL.data();
  if (!v) return;
  // A square-root colour scale, as in the mailed report: stops at (level^2) so quiet
  // places still show while the colour bar keeps true people per m2.
  const levels = [[0, "rgba(255,255,255,0)"], [0.12, "#dbeafe"], [0.35, "#60a5fa"], [0.6, "#facc15"], [0.8, "#f97316"], [1, "#b91c1c"]];
  const scale = levels.map(function (s) { return [s[0] * s[0], s[1]]; });

  function outlines() {
    return v.outlines.map(function (z) {
      const p = z.polygon;
      const path = "M " + p.map(function (pt) { return pt[0] + "," + pt[1]; }).join(" L ") + " Z";
      // Staff-only zones count no heat (vision.heatmap): grey, not the white of "nobody".
      const fill = z.kind === "staff_only" ? "#dedede" : "rgba(0,0,0,0)";
      return { type: "path", path: path, line: { color: "#3d4757", width: 1.2 }, fillcolor: fill, layer: "above" };
    });
  }
  function labels() {
    return v.outlines.map(function (z) {
      const xs = z.polygon.map(function (p) { return p[0]; }), ys = z.polygon.map(function (p) { return p[1]; });
      return { x: Math.min.apply(null, xs) + 0.15, y: Math.min.apply(null, ys) + 0.15, xanchor: "left", yanchor: "top",
        text: z.kind === "staff_only" ? z.name + " (staff only, not counted)" : z.name, showarrow: false, font: { size: 10, color: "#1c2430" }, bgcolor: "rgba(255,255,255,.8)", borderpad: 1 };
    });
  }
  function draw(key) {
    const grid = v.heat.find(function (h) { return h.key === key; }) || v.heat[0];
    if (!grid) return;
    const cell = grid.cell_m;
    const trace = {
      type: "heatmap", z: grid.values, x0: cell / 2, dx: cell, y0: cell / 2, dy: cell,
      colorscale: scale, zmin: 0, zmax: grid.scale_max, zsmooth: "best",
      colorbar: { title: { text: "people / m²", side: "right" }, thickness: 12, len: 0.9 },
      hovertemplate: "x %{x:.1f} m, y %{y:.1f} m: %{z:.3f} people/m²<extra></extra>",
    };
    SL.plot("chart-heat", [trace], {
      margin: { l: 36, r: 8, t: 8, b: 32 },
      xaxis: { range: [0, v.width_m], constrain: "domain", showgrid: false, zeroline: false, title: { text: "m" } },
      yaxis: { range: [v.height_m, 0], scaleanchor: "x", showgrid: false, zeroline: false },
      shapes: outlines(), annotations: labels(), showlegend: false,
    });
    const caption = document.querySelector("[data-heat-caption]");
    // The scale tops at the 99th percentile of used cells: say so, or the caption's
    // peak (the single busiest cell) reads as a contradiction of the colour bar.
    if (caption) caption.textContent = grid.label + ": " + grid.hours + " h observed, busiest spot " + grid.peak.toFixed(2) +
      " people per m²; the colours stop at " + grid.scale_max.toFixed(2) + ", so the busiest 1 % of the floor is all the darkest red";
    document.querySelectorAll("[data-daypart]").forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.daypart === grid.key)); });
    const chart = document.getElementById("chart-heat");
    if (chart) chart.dataset.shown = grid.key;
  }
  document.querySelectorAll("[data-daypart]").forEach(function (b) {
    b.addEventListener("click", function () { draw(b.dataset.daypart); });
  });
  if (v.heat.length) draw("all");

  const zones = v.zones.filter(function (z) { return z.visits || z.units; });
  SL.plot("chart-zones", [
    { type: "bar", orientation: "h", name: "visits", y: zones.map(function (z) { return z.name; }), x: zones.map(function (z) { return z.visits; }), marker: { color: SL.colours.blue } },
    { type: "bar", orientation: "h", name: "units / 100 visits", xaxis: "x2", yaxis: "y2", y: zones.map(function (z) { return z.name; }), x: zones.map(function (z) { return z.sales_per_100_visits; }), marker: { color: SL.colours.orange } },
  ], {
    margin: { l: 110, r: 12, t: 34, b: 40 }, height: Math.max(240, zones.length * 34 + 100),
    yaxis: { automargin: true, autorange: "reversed" },
    yaxis2: { anchor: "x2", showticklabels: false, autorange: "reversed", matches: "y" },
    xaxis: { domain: [0, 0.48], title: { text: "visits" }, gridcolor: "#eef1f6", rangemode: "tozero" },
    xaxis2: { domain: [0.54, 1], anchor: "y2", title: { text: "units / 100 visits" }, gridcolor: "#eef1f6", rangemode: "tozero" },
  });
})();
