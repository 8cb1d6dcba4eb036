/* Shared by every dashboard page: the page's data, number formats, chart defaults. */
"use strict";
window.SL = (function () {
  function data() {
    const el = document.getElementById("page-data");
    return el ? JSON.parse(el.textContent) : null;
  }
  function duration(s) {
    if (s === null || s === undefined) return "–";
    return s < 90 ? Math.round(s) + " s" : (s / 60).toFixed(1) + " min";
  }
  function number(v, digits) {
    if (v === null || v === undefined) return "–";
    return Number(v).toLocaleString("en-US", {
      minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0,
    });
  }
  const colours = { blue: "#2f5bea", orange: "#e8833a", green: "#1e8449", grey: "#9aa5b5", red: "#c0392b" };
  function layout(extra) {
    return Object.assign({
      margin: { l: 48, r: 12, t: 8, b: 40 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: "#1c2430" },
      legend: { orientation: "h", y: 1.12, x: 0 },
      xaxis: { gridcolor: "#eef1f6", automargin: true },
      yaxis: { gridcolor: "#eef1f6", automargin: true, rangemode: "tozero" },
    }, extra || {});
  }
  function plot(id, traces, extra) {
    const el = document.getElementById(id);
    if (!el || !window.Plotly) return;
    if (!traces.length || traces.every(function (t) { return !(t.x || t.z || []).length; })) {
      el.innerHTML = '<p class="muted">No data for this chart in the period.</p>';
      el.style.height = "auto";
      return;
    }
    Plotly.react(el, traces, layout(extra), { responsive: true, displayModeBar: false });
  }
  function minutes(s) { return s === null || s === undefined ? null : Math.round(s / 6) / 10; }
  document.addEventListener("change", function (ev) {
    const sel = ev.target.closest("#store-select");
    if (sel) window.location.href = "/stores/" + encodeURIComponent(sel.value) + "/" + (sel.dataset.active || "today");
  });
  return { data: data, duration: duration, number: number, plot: plot, colours: colours, minutes: minutes };
})();
