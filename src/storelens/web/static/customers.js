/* Customers: the lifetime-value histogram and churn risk by segment (aggregates only). */
"use strict";
(function () {
  const v = SL.data();
  if (!v || !v.scored) return;
  const segs = v.rfm.concat(v.clusters).slice().reverse(); // plotly draws the first row at the bottom
  const tall = Math.max(260, 70 + segs.length * 34);
  const risk = document.getElementById("chart-risk");
  const clv = document.getElementById("chart-clv");
  if (risk) risk.style.height = tall + "px";
  if (clv && window.matchMedia("(min-width: 900px)").matches) clv.style.height = tall + "px"; // side by side

  const money = function (x) { return SL.number(x, Math.abs(x) < 100 ? 1 : 0); };
  const bars = v.clv_bars;
  const labels = bars.map(function (b) {
    return b.high === null ? "top 1 %" : money(b.low) + "–" + money(b.high);
  });
  if (v.has_clv) SL.plot("chart-clv", [{
    type: "bar", x: labels, y: bars.map(function (b) { return b.customers; }),
    marker: { color: bars.map(function (b) { return b.high === null ? SL.colours.orange : SL.colours.blue; }) },
    hovertemplate: "%{x}: %{y} customers<extra></extra>",
  }], {
    showlegend: false, bargap: 0.08,
    xaxis: { title: { text: "expected value, next " + v.clv_months + " months" }, tickangle: -40, automargin: true, nticks: 8 },
    yaxis: { title: { text: "customers" }, gridcolor: "#eef1f6", rangemode: "tozero", automargin: true },
  });

  const names = segs.map(function (s) { return (s.kind === "cluster" ? "◆ " : "") + s.name; });
  const pct = function (x) { return x === null ? null : Math.round(x * 1000) / 10; };
  if (v.has_churn) SL.plot("chart-risk", [
    {
      type: "bar", orientation: "h", name: "mean churn risk", y: names,
      x: segs.map(function (s) { return pct(s.mean_churn_risk); }),
      marker: { color: "#f2b8ae" }, hovertemplate: "%{y}: mean risk %{x} %<extra></extra>",
    },
    {
      type: "bar", orientation: "h", name: "members above " + Math.round(v.high_risk * 100) + " %", y: names,
      x: segs.map(function (s) { return pct(s.high_risk_share); }),
      marker: { color: SL.colours.red }, hovertemplate: "%{y}: %{x} % of members at high risk<extra></extra>",
    },
  ], {
    barmode: "group", bargap: 0.25, margin: { l: 8, r: 12, t: 8, b: 40 },
    xaxis: { title: { text: "% of members" }, range: [0, 100], gridcolor: "#eef1f6", automargin: true },
    yaxis: { automargin: true, gridcolor: "rgba(0,0,0,0)" },
  });
})();
