/* Today: draw the charts, then follow the live stream (server-sent events). */
"use strict";
(function () {
  const initial = SL.data();
  if (!initial) return;
  const storeId = initial.store_id;
  const state = document.querySelector("[data-live-state]");
  const stateText = document.querySelector("[data-live-text]");

  function setState(name, text) {
    if (!state) return;
    state.dataset.liveState = name;
    stateText.textContent = text;
  }

  function charts(v) {
    SL.plot("chart-queue", [{
      type: "scatter", mode: "lines", line: { shape: "hv", color: SL.colours.blue, width: 2 },
      fill: "tozeroy", fillcolor: "rgba(47,91,234,.12)", name: "longest queue",
      x: v.queue.map(function (q) { return q.t; }), y: v.queue.map(function (q) { return q.max; }),
      hovertemplate: "%{x|%H:%M}: at most %{y} waiting<extra></extra>",
    }, {
      type: "scatter", mode: "lines", line: { shape: "hv", color: SL.colours.orange, width: 2 }, name: "average queue",
      x: v.queue.map(function (q) { return q.t; }), y: v.queue.map(function (q) { return q.mean; }),
      hovertemplate: "%{x|%H:%M}: %{y:.1f} waiting on average<extra></extra>",
    }], { xaxis: { type: "date", tickformat: "%H:%M", gridcolor: "#eef1f6" }, showlegend: true, legend: { orientation: "h" } });
    const hours = v.by_hour.map(function (h) { return h.key + ":00"; });
    SL.plot("chart-hours", [
      { type: "bar", name: "p50 (min)", x: hours, y: v.by_hour.map(function (h) { return SL.minutes(h.p50_s); }), marker: { color: SL.colours.blue } },
      { type: "bar", name: "p90 (min)", x: hours, y: v.by_hour.map(function (h) { return SL.minutes(h.p90_s); }), marker: { color: SL.colours.orange } },
    ], { barmode: "group", yaxis: { title: { text: "minutes" }, gridcolor: "#eef1f6", rangemode: "tozero" } });
  }

  function setKpi(name, value, text) {
    document.querySelectorAll('[data-kpi="' + name + '"]').forEach(function (el) {
      const raw = value === null || value === undefined ? "" : String(value);
      const same = raw === "" || el.dataset.value === "" ? raw === el.dataset.value : Number(raw) === Number(el.dataset.value);
      if (!same) {
        el.dataset.value = raw;
        el.textContent = text;
        const card = el.closest(".kpi");
        if (card) { card.classList.add("flash"); setTimeout(function () { card.classList.remove("flash"); }, 900); }
      }
    });
  }

  function alerts(list) {
    const ul = document.querySelector("[data-alerts]");
    if (!ul) return;
    ul.replaceChildren();
    if (!list.length) {
      const li = document.createElement("li"); li.className = "none"; li.textContent = "No open alerts."; ul.appendChild(li);
      return;
    }
    list.forEach(function (a) {
      const li = document.createElement("li"); li.className = "alert " + a.severity;
      const sev = document.createElement("span"); sev.className = "sev"; sev.textContent = a.severity;
      li.appendChild(sev); li.appendChild(document.createTextNode(" " + a.message));
      ul.appendChild(li);
    });
  }

  function update(v) {
    setKpi("occupancy", v.occupancy, SL.number(v.occupancy));
    setKpi("queue_length", v.queue_length, SL.number(v.queue_length));
    setKpi("fulfillment_p50_s", v.fulfillment_p50_s, SL.duration(v.fulfillment_p50_s));
    setKpi("fulfillment_p90_s", v.fulfillment_p90_s, SL.duration(v.fulfillment_p90_s));
    setKpi("orders", v.orders, SL.number(v.orders));
    setKpi("orders_waiting", v.orders_waiting, SL.number(v.orders_waiting));
    setKpi("longest_wait_s", v.longest_wait_s, SL.duration(v.longest_wait_s));
    setKpi("drinks", v.drinks, SL.number(v.drinks));
    setKpi("staff_on_shift", v.staff_on_shift, String(v.staff_on_shift));
    setKpi("drinks_per_barista_hour", v.drinks_per_barista_hour, SL.number(v.drinks_per_barista_hour, 1));
    setKpi("open_alerts", v.open_alerts.length, String(v.open_alerts.length));
    alerts(v.open_alerts);
    document.querySelectorAll('[data-field="day"]').forEach(function (el) { el.textContent = v.day || ""; });
    if (v.as_of) {
      document.querySelectorAll('[data-field="as_of"]').forEach(function (el) {
        el.textContent = new Date(v.as_of).toLocaleTimeString("en-GB", { timeZone: v.timezone });
      });
    }
    const behind = document.querySelector("[data-behind]");
    if (behind) behind.hidden = !v.behind;  // today's first event hides it
    charts(v);
  }

  charts(initial);
  if (!window.EventSource) { setState("offline", "live updates need a newer browser"); return; }
  const source = new EventSource("/web/api/stores/" + encodeURIComponent(storeId) + "/today/stream");
  source.addEventListener("open", function () { setState("live", "live"); });
  source.addEventListener("today", function (ev) {
    setState("live", "live");
    update(JSON.parse(ev.data));
    document.body.dataset.updates = String(Number(document.body.dataset.updates || 0) + 1);
  });
  source.addEventListener("expired", function () {
    source.close(); setState("offline", "session expired: sign in again");
  });
  source.addEventListener("error", function () {
    if (source.readyState === EventSource.CLOSED) setState("offline", "disconnected: reload the page");
    else setState("reconnecting", "reconnecting…");
  });
})();
