// The staff app: sign in (staff accounts only), watch the store's notices live, claim one,
// see the customer, record the outcome. The token lives in sessionStorage (this tab only,
// gone when it closes); everything shown is written with textContent, never as HTML.
"use strict";

const TRIGGERS = {
  recognition: "recognised at the entrance",
  loyalty_scan: "loyalty card scanned",
  app_checkin: "checked in from the app",
};
const state = { token: null, me: null, store: null, socket: null, retry: 0, open: null, cards: new Map() };
const $ = (id) => document.getElementById(id);

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (response.status === 401) { signOut("Your session ended: sign in again."); throw new Error("401"); }
  return response;
}

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

function detail(body) {
  if (!body || body.detail === undefined) return "something went wrong";
  return Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
}

// -- sign in -----------------------------------------------------------------------------

async function signIn(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const error = $("login-error");
  error.hidden = true;
  const response = await fetch("/v1/auth/token", {
    method: "POST",
    body: new URLSearchParams({ username: form.get("username"), password: form.get("password") }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) { error.textContent = detail(body); error.hidden = false; return; }
  if (body.role !== "staff") {
    error.textContent = "The staff app is for staff accounts only.";
    error.hidden = false;
    return;
  }
  sessionStorage.setItem("storelens.token", body.access_token);
  await start(body.access_token);
}

function signOut(message) {
  sessionStorage.removeItem("storelens.token");
  state.token = null;
  if (state.socket) { state.socket.onclose = null; state.socket.close(); }
  state.socket = null;
  $("board").hidden = true;
  $("customer").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  $("login").hidden = false;
  if (message) { $("login-error").textContent = message; $("login-error").hidden = false; }
}

async function start(token) {
  state.token = token;
  const me = await (await api("/v1/auth/me")).json();
  if (me.role !== "staff") { signOut("The staff app is for staff accounts only."); return; }
  state.me = me.name;
  $("who").textContent = me.name;
  $("login").hidden = true;
  $("logout").hidden = false;
  $("board").hidden = false;
  const stores = await (await api("/v1/stores")).json();
  const select = $("store");
  select.replaceChildren(...stores.data.map((s) => el("option", s.name, { value: s.id })));
  const wanted = new URLSearchParams(location.search).get("store") || sessionStorage.getItem("storelens.store");
  if (wanted && stores.data.some((s) => s.id === wanted)) select.value = wanted;
  connect(select.value);
}

// -- the live list -----------------------------------------------------------------------

async function connect(store) {
  if (state.socket) { state.socket.onclose = null; state.socket.close(); }
  state.store = store;
  state.cards.clear();
  $("notices").replaceChildren();
  sessionStorage.setItem("storelens.store", store);
  render();
  if (!store) { $("status").textContent = "no store to watch"; return; }
  const ticket = await (await api("/v1/ws-ticket", { method: "POST" })).json();
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const url = `${scheme}${location.host}/v1/stores/${encodeURIComponent(store)}/notices/ws?ticket=${encodeURIComponent(ticket.ticket)}`;
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.onopen = () => { state.retry = 0; $("status").textContent = "live"; };
  socket.onmessage = (event) => onMessage(JSON.parse(event.data));
  socket.onclose = (event) => {
    $("status").textContent = "reconnecting…";
    if (event.code === 4401) { signOut("Your session ended: sign in again."); return; }
    if (event.code === 4403) { $("status").textContent = "this account may not watch this store"; return; }
    state.retry = Math.min(state.retry + 1, 6);
    setTimeout(() => { if (state.socket === socket) connect(store); }, 500 * 2 ** state.retry);
  };
}

function onMessage(message) {
  if (message.type === "notice") {
    const n = message.notice;
    if (n.state === "open" || (n.state === "claimed" && n.claimed_by === state.me)) state.cards.set(n.id, n);
    else state.cards.delete(n.id);
  } else if (message.type === "notice_withdrawn") {
    if (message.claimed_by !== state.me || message.reason !== "claimed") state.cards.delete(message.id);
  }
  render();
}

function render() {
  const list = $("notices");
  const cards = [...state.cards.values()].sort((a, b) => a.raised_at.localeCompare(b.raised_at));
  list.replaceChildren(...cards.map(card));
  $("empty").hidden = cards.length > 0;
}

function card(n) {
  const mine = n.state === "claimed" && n.claimed_by === state.me;
  const li = el("li", undefined, { "data-notice-id": n.id, "data-testid": "notice" });
  if (mine) li.classList.add("mine");
  const what = el("div", undefined, { class: "what" });
  what.append(el("strong", "Member arrived"), el("br"), el("span", TRIGGERS[n.trigger] || n.trigger));
  const time = new Date(n.raised_at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  what.append(el("br"), el("span", `at ${time}`, { class: "when" }));
  const button = el("button", mine ? "Open" : "Claim", { class: "primary", "data-testid": mine ? "open" : "claim" });
  button.addEventListener("click", () => (mine ? showCustomer(n.id) : claim(n.id, button)));
  li.append(what, button);
  return li;
}

async function claim(id, button) {
  button.disabled = true;
  const response = await api(`/v1/notices/${encodeURIComponent(id)}/claim`, { method: "POST" });
  const body = await response.json().catch(() => ({}));
  if (response.ok) {
    state.cards.set(id, { ...state.cards.get(id), ...body, state: "claimed", claimed_by: state.me });
    render();
    await showCustomer(id);
    return;
  }
  state.cards.delete(id);
  render();
  toast(response.status === 409 ? "A colleague got there first." : detail(body));
}

// -- the claimer's view ------------------------------------------------------------------

async function showCustomer(id) {
  const response = await api(`/v1/notices/${encodeURIComponent(id)}/customer`);
  const view = await response.json().catch(() => ({}));
  if (!response.ok) { toast(detail(view)); return; }
  state.open = id;
  $("greet").textContent = view.greeting_name ? `Greet them as ${view.greeting_name}` : "Greet them warmly";
  const about = view.segment_description ? ` (${view.segment_description})` : "";
  $("segment").textContent = view.segment
    ? `Segment: ${view.segment}${about}`
    : `${view.orders_total} orders so far`;
  $("suggestions").replaceChildren(
    ...view.suggestions.map((s) => {
      const li = el("li", s.name, { "data-testid": "suggestion" });
      li.append(el("span", s.reason, { class: "reason" }));
      return li;
    })
  );
  if (!view.suggestions.length) $("suggestions").append(el("li", "Nothing to suggest yet."));
  $("visits").replaceChildren(
    ...view.last_visits.map((v) => el("li", `${v.date} · ${v.store_name} · ${v.spent.toFixed(2)} ${v.currency}`))
  );
  $("history").replaceChildren(
    ...view.purchases.map((p) =>
      el("li", `${p.ts.slice(0, 10)}: ${p.items.map((i) => `${i.qty}× ${i.name}`).join(", ")}`, { "data-testid": "purchase" })
    )
  );
  if (!view.purchases.length) $("history").append(el("li", "No purchases on record."));
  $("board").hidden = true;
  $("customer").hidden = false;
}

// -- the member's face, through the notice (staff never act on a customer by id) --------

async function enrollFace(event) {
  event.preventDefault();
  const form = event.target;
  const body = new FormData();
  body.append("consent", form.consent.checked ? "true" : "false");
  body.append("consent_text_version", form.consent_text_version.value);
  for (const photo of form.photos.files) body.append("photos", photo);
  $("faces-result").textContent = "Reading the photos…";
  const response = await api(`/v1/notices/${encodeURIComponent(state.open)}/faces`, { method: "POST", body });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("faces-result").textContent = `Not enrolled: ${detail(answer)}`;
    const textChanged = Array.isArray(answer.detail) &&
      answer.detail.some((d) => (d.loc || []).includes("consent_text_version"));
    if (textChanged) { form.consent.checked = false; await showConsentText(); } // show them the text in force
    return;
  }
  form.consent.checked = false;
  form.photos.value = "";
  $("faces-result").textContent =
    `Enrolled ${answer.photos} photo(s). An admin approves them before the entrance recognises them.`;
}

// The member reads the text in force before the box is ticked; the enrollment names its
// version, and the server refuses a version no admin published (or one since retired).
async function showConsentText() {
  if (!$("faces").open) return;
  const form = $("enroll-form");
  form.querySelector("button[type=submit]").disabled = true;
  form.consent_text_version.value = "";
  $("consent-text").textContent = "";
  $("consent-version").textContent = "Loading the consent text…";
  let response;
  try {
    response = await api("/v1/faces/consent-texts");
  } catch (error) {
    $("consent-version").textContent = "The consent text could not be loaded: check the connection and open this again.";
    return;
  }
  const texts = await response.json().catch(() => ({}));
  if (!response.ok) { $("consent-version").textContent = `Consent text not loaded: ${detail(texts)}`; return; }
  if (!texts.current) {
    $("consent-version").textContent =
      "No consent text is published yet, so no one can be enrolled: ask an admin to publish one.";
    return;
  }
  $("consent-version").textContent = `Show them this text (version ${texts.current.version}):`;
  $("consent-text").textContent = texts.current.body;
  form.consent_text_version.value = texts.current.version;
  form.querySelector("button[type=submit]").disabled = false;
}

async function withdrawFace() {
  if (!window.confirm("Delete their face now? The entrance stops recognising them.")) return;
  const response = await api(`/v1/notices/${encodeURIComponent(state.open)}/faces`, { method: "DELETE" });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) { $("faces-result").textContent = `Not withdrawn: ${detail(answer)}`; return; }
  $("faces-result").textContent = answer.embeddings_deleted
    ? `Withdrawn: ${answer.embeddings_deleted} photo(s) deleted.`
    : "Withdrawn: nothing was enrolled for them.";
}

function closeCustomer() {
  state.open = null;
  $("faces").open = false;
  $("faces-result").textContent = "";
  $("customer").hidden = true;
  $("board").hidden = false;
}

async function finish(path, body) {
  const id = state.open;
  const response = await api(`/v1/notices/${encodeURIComponent(id)}/${path}`, {
    method: "POST",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) { toast(detail(answer)); return; }
  state.cards.delete(id);
  if (answer.state === "open") state.cards.set(id, answer);
  closeCustomer();
  render();
  toast(path === "release" ? "Released to your colleagues." : "Thanks, recorded.");
}

// -- wiring ------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", signIn);
  $("logout").addEventListener("click", () => signOut());
  $("store").addEventListener("change", (e) => connect(e.target.value));
  $("back").addEventListener("click", closeCustomer);
  $("release").addEventListener("click", () => finish("release"));
  $("enroll-form").addEventListener("submit", enrollFace);
  $("faces").addEventListener("toggle", showConsentText);
  $("withdraw-face").addEventListener("click", withdrawFace);
  for (const b of document.querySelectorAll("[data-outcome]")) {
    b.addEventListener("click", () => finish("outcome", { outcome: b.dataset.outcome }));
  }
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/staff/sw.js", { scope: "/staff" }).catch(() => {});
  const saved = sessionStorage.getItem("storelens.token");
  if (saved) start(saved).catch(() => signOut());
});
