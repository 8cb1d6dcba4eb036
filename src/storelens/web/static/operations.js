/* Operations: fulfillment over time, by daypart and register; productivity; queue. */
"use strict";
(function () {
  const v = SL.data();
  if (!v) return;
  const m = SL.minutes;
  const minutes = { title: { text: "minutes" }, gridcolor: "#eef1f6", rangemode: "tozero" };
  if (v.by_day.length > 1) {
    const days = v.by_day.map(function (d) { return d.day; });
    SL.plot("chart-time", [
      // Orders on the base axis (right) and the minutes overlaid (left): an overlaid axis
      // draws above the base one, so the lines stay over the bars instead of under them.
      { type: "bar", name: "orders", x: days, y: v.by_day.map(function (d) { return d.recorded ? d.orders : null; }), marker: { color: "#d7def0" } },
      { type: "scatter", mode: "lines+markers", name: "p50", x: days, y: v.by_day.map(function (d) { return m(d.p50_s); }), line: { color: SL.colours.blue }, yaxis: "y2" },
      { type: "scatter", mode: "lines+markers", name: "p90", x: days, y: v.by_day.map(function (d) { return m(d.p90_s); }), line: { color: SL.colours.orange }, yaxis: "y2" },
    ], {
      yaxis: { side: "right", showgrid: false, rangemode: "tozero", automargin: true, nticks: 5, title: { text: "orders", standoff: 8 } },
      yaxis2: Object.assign({}, minutes, { overlaying: "y", side: "left", automargin: true, tickmode: "auto", showgrid: true }),
      xaxis: { type: "date", tickformat: "%a %d", gridcolor: "#eef1f6" },
    });
  } else {
    const hours = v.by_hour.map(function (h) { return h.key + ":00"; });
    SL.plot("chart-time", [
      { type: "bar", name: "p50", x: hours, y: v.by_hour.map(function (h) { return m(h.p50_s); }), marker: { color: SL.colours.blue } },
      { type: "bar", name: "p90", x: hours, y: v.by_hour.map(function (h) { return m(h.p90_s); }), marker: { color: SL.colours.orange } },
    ], { barmode: "group", yaxis: minutes });
  }
  const keyed = function (rows) {
    const keys = rows.map(function (r) { return r.key; });
    return [
      { type: "bar", name: "p50", x: keys, y: rows.map(function (r) { return m(r.p50_s); }), marker: { color: SL.colours.blue } },
      { type: "bar", name: "p90", x: keys, y: rows.map(function (r) { return m(r.p90_s); }), marker: { color: SL.colours.orange } },
    ];
  };
  SL.plot("chart-daypart", keyed(v.by_daypart), { barmode: "group", yaxis: minutes });
  SL.plot("chart-register", keyed(v.by_register), { barmode: "group", yaxis: minutes });
  SL.plot("chart-productivity", [
    { type: "bar", name: "drinks / hour", x: v.baristas.map(function (b) { return b.staff_id; }), y: v.baristas.map(function (b) { return b.drinks_per_hour; }), marker: { color: SL.colours.green } },
  ], { showlegend: false, yaxis: { title: { text: "drinks per hour" }, gridcolor: "#eef1f6", rangemode: "tozero" } });
  SL.plot("chart-queue", [{
    type: "scatter", mode: "lines", line: { shape: "hv", color: SL.colours.blue, width: 1.5 }, name: "longest queue",
    x: v.queue.map(function (q) { return q.t; }), y: v.queue.map(function (q) { return q.max; }),
  }, {
    type: "scatter", mode: "lines", line: { shape: "hv", color: SL.colours.orange, width: 1.5 }, name: "average queue",
    x: v.queue.map(function (q) { return q.t; }), y: v.queue.map(function (q) { return q.mean; }),
  }], { showlegend: true, legend: { orientation: "h" }, xaxis: { type: "date", gridcolor: "#eef1f6" }, yaxis: { title: { text: "people" }, gridcolor: "#eef1f6", rangemode: "tozero" } });
})();
