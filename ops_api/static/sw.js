// The service worker (served as /sw.js, scope "/"): the crew's pages work with no signal.
// The server writes VERSION (a hash of the pages and assets) and PRECACHE in when it serves
// this file, so a release changes the worker, which installs a new shell cache and deletes
// the old one.
//   page shells and /static assets   cache first (they only change with VERSION)
//   API reads (jobs, basemap, me, sheets)  network first, the last answer kept as a fallback
//   anything else (POSTs, login)     straight to the network
const VERSION = "__VERSION__";
const PRECACHE = __PRECACHE__;
const SHELLS = `cityops-shell-${VERSION}`;
const API_CACHE = "cityops-api";
const JOB_SHELL = "/crew/jobs/0";   // every job's page is this one, for another job

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELLS).then((cache) => cache.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("cityops-shell-") && k !== SHELLS)
      .map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

// From the shell cache, else the network (kept).
async function shellFirst(request, key) {
  const cache = await caches.open(SHELLS);
  const hit = await cache.match(key, { ignoreSearch: true });
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok) await cache.put(key, response.clone());
  return response;
}

// A job's page: the one kept page, with the job's number written in where it asks for its JSON.
async function jobPage(jobId) {
  const shell = await shellFirst(new Request(JOB_SHELL), JOB_SHELL);
  if (!shell.ok) return shell;
  const html = (await shell.text()).replaceAll('"/jobs/0"', `"/jobs/${jobId}"`);
  const headers = new Headers(shell.headers);   // the CSP with the inline hashes; the body is decoded now
  headers.delete("Content-Encoding");
  headers.delete("Content-Length");
  return new Response(html, { status: 200, headers });
}

const OFFLINE = () => new Response(JSON.stringify({ error: "no signal, and no copy of this on the phone",
                                                     hint: "open it once with a signal to keep a copy" }),
                                   { status: 503, headers: { "Content-Type": "application/json" } });

async function networkFirst(request) {
  const cache = await caches.open(API_CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch {
    return (await cache.match(request)) || OFFLINE();
  }
}

const API_READ = /^\/(jobs(\/\d+(\/sheet)?)?|basemap|auth\/me)$/;

self.addEventListener("fetch", (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(shellFirst(request, url.pathname));
  } else if (/^\/crew\/jobs\/\d+$/.test(url.pathname)) {
    event.respondWith(jobPage(url.pathname.split("/").pop()));
  } else if (url.pathname === "/crew" || url.pathname === "/operator") {
    event.respondWith(shellFirst(request, url.pathname));
  } else if (API_READ.test(url.pathname)) {
    event.respondWith(networkFirst(request));
  }
});
