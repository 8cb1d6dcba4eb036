// The staff app's service worker: the app shell works offline (so the installed app
// opens), while every API call and socket goes to the network and is never cached:
// notices and customer views are live and personal.
const SHELL = "storelens-staff-v3"; // v3: the published consent text shown before enrolling
const FILES = ["/staff", "/staff/app.js", "/staff/app.css", "/staff/manifest.webmanifest", "/staff/icon.svg"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(FILES)));
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
  );
  self.clients.claim();
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || !FILES.includes(url.pathname)) return; // network only
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        const copy = response.clone();
        caches.open(SHELL).then((cache) => cache.put(event.request, copy));
        return response;
      })
      .catch(() => caches.match(event.request))
  );
});
