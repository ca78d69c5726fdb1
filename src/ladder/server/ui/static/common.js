// ladder web UI: shared helpers. Data from the server is only ever placed with textContent or as
// DOM nodes built here; nothing from the server is ever parsed as markup.
"use strict";

const Ladder = (() => {
  const KEY = "ladder.apiKey";

  const getKey = () => localStorage.getItem(KEY) || "";
  const setKey = (k) => (k ? localStorage.setItem(KEY, k) : localStorage.removeItem(KEY));

  function authHeaders(extra) {
    const h = Object.assign({}, extra || {});
    const k = getKey();
    if (k) h.Authorization = "Bearer " + k;
    return h;
  }

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  function errorMessage(status, body, fallback) {
    if (body && body.error && body.error.message) return String(body.error.message);
    if (body && typeof body.detail === "string") return body.detail;
    return fallback || "request failed (HTTP " + status + ")";
  }

  function toLogin() {
    if (location.pathname !== "/login") {
      location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
    }
  }

  // fetch JSON with the stored key; throws ApiError with the server's own message.
  async function api(path, opts) {
    opts = opts || {};
    const init = { method: opts.method || "GET", signal: opts.signal };
    if (opts.json !== undefined) {
      init.headers = authHeaders({ "Content-Type": "application/json" });
      init.body = JSON.stringify(opts.json);
    } else {
      init.headers = authHeaders();
      if (opts.body !== undefined) init.body = opts.body;
    }
    const r = await fetch(path, init);
    const text = await r.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (_) { body = null; }
    if (r.status === 401 && !opts.noRedirect) toLogin();
    if (!r.ok) throw new ApiError(r.status, errorMessage(r.status, body, text.slice(0, 300)), body);
    return body;
  }

  // Fetch a protected resource as a Blob (images, report pages): plain links cannot carry the key.
  async function fetchBlob(path) {
    const r = await fetch(path, { headers: authHeaders() });
    if (!r.ok) {
      let body = null;
      try { body = await r.json(); } catch (_) { body = null; }
      throw new ApiError(r.status, errorMessage(r.status, body), body);
    }
    return r.blob();
  }

  // The list inside an OpenAI-style {"object":"list","data":[...]} or a bare array.
  function items(body, ...keys) {
    if (Array.isArray(body)) return body;
    if (!body) return [];
    for (const k of ["data", ...keys]) if (Array.isArray(body[k])) return body[k];
    return [];
  }

  // Only absolute http(s) URLs become links; javascript:, data:, vbscript: ... stay plain text.
  function safeHref(url) {
    if (typeof url !== "string" || !url) return null;
    try {
      const u = new URL(url, location.href);
      return u.protocol === "http:" || u.protocol === "https:" ? u.href : null;
    } catch (_) {
      return null;
    }
  }

  // el("a", {href: x, class: "c", text: "t", onclick: f}, child...) - attributes are set as properties
  // or with setAttribute, children as nodes or text nodes; never parsed as markup.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") node.textContent = String(v);
      else if (k === "class") node.className = v;
      else if (k === "href") {
        const h = safeHref(v);
        if (h) node.setAttribute("href", h);
      } else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  // Words of a query worth highlighting (two or more letters or digits), lower-cased and unique.
  function queryTerms(query) {
    const words = String(query || "").toLowerCase().match(/[\p{L}\p{N}]{2,}/gu) || [];
    return [...new Set(words)];
  }

  // A fragment of text nodes and <mark> nodes for every occurrence of a term (case-insensitive).
  function highlight(text, terms) {
    text = String(text == null ? "" : text);
    const frag = document.createDocumentFragment();
    if (!terms || !terms.length) {
      frag.append(document.createTextNode(text));
      return frag;
    }
    const lower = text.toLowerCase();
    let i = 0;
    while (i < text.length) {
      let best = -1;
      let len = 0;
      for (const t of terms) {
        const j = lower.indexOf(t, i);
        if (j !== -1 && (best === -1 || j < best || (j === best && t.length > len))) {
          best = j;
          len = t.length;
        }
      }
      if (best === -1) break;
      if (best > i) frag.append(document.createTextNode(text.slice(i, best)));
      frag.append(el("mark", { text: text.slice(best, best + len) }));
      i = best + len;
    }
    if (i < text.length) frag.append(document.createTextNode(text.slice(i)));
    return frag;
  }

  // Server-sent events from a fetch Response: yields each parsed `data:` payload, stops at [DONE].
  async function* sse(response) {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let sep;
      while ((sep = buf.search(/\r?\n\r?\n/)) !== -1) {
        const block = buf.slice(0, sep);
        buf = buf.slice(sep).replace(/^\r?\n\r?\n/, "");
        const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).replace(/^ /, "")).join("\n");
        if (!data) continue;
        if (data === "[DONE]") return;
        let parsed;
        try { parsed = JSON.parse(data); } catch (_) { continue; }
        yield parsed;
      }
    }
  }

  // Multipart upload with progress events (fetch has no upload progress); resolves with parsed JSON.
  function upload(path, form, onProgress) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", path);
      const k = getKey();
      if (k) xhr.setRequestHeader("Authorization", "Bearer " + k);
      xhr.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable && onProgress) onProgress(e.loaded, e.total);
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try { body = JSON.parse(xhr.responseText); } catch (_) { body = null; }
        if (xhr.status === 401) toLogin();
        if (xhr.status >= 200 && xhr.status < 300) resolve(body);
        else reject(new ApiError(xhr.status, errorMessage(xhr.status, body), body));
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, "network error during upload", null)));
      xhr.addEventListener("abort", () => reject(new ApiError(0, "upload aborted", null)));
      xhr.send(form);
    });
  }

  // Drive a .progress element: fraction in [0, 1] and a label.
  function setProgress(box, fraction, label) {
    box.hidden = false;
    box.querySelector(".bar").style.width = Math.round(Math.max(0, Math.min(1, fraction)) * 100) + "%";
    box.querySelector(".label").textContent = label;
  }

  let flashTimer = null;
  function flash(message, ok) {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = String(message);
    box.className = ok ? "flash ok" : "flash";
    box.hidden = false;
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { box.hidden = true; }, ok ? 4000 : 10000);
  }

  // Run an async UI action; any error shows up in the flash bar instead of vanishing.
  function guard(fn) {
    return async (...args) => {
      try {
        return await fn(...args);
      } catch (e) {
        if (e && e.name === "AbortError") return undefined;
        flash(e && e.message ? e.message : String(e));
        return undefined;
      }
    };
  }

  function fmtTime(ts) {
    if (!ts) return "";
    const d = new Date(typeof ts === "number" ? (ts < 1e12 ? ts * 1000 : ts) : ts);
    return isNaN(d) ? String(ts) : d.toLocaleString();
  }

  function fmtNum(n, digits) {
    if (n === null || n === undefined || n === "") return "";
    const x = Number(n);
    if (!isFinite(x)) return String(n);
    return digits === undefined ? x.toLocaleString() : x.toFixed(digits);
  }

  function fmtBytes(n) {
    const x = Number(n) || 0;
    if (x < 1024) return x + " B";
    if (x < 1024 * 1024) return (x / 1024).toFixed(1) + " KiB";
    return (x / 1024 / 1024).toFixed(1) + " MiB";
  }

  function statusBadge(status) {
    const s = String(status || "unknown");
    return el("span", { class: "status " + s.replace(/[^a-z_]/gi, ""), text: s });
  }

  // Fill a <select> with options [{value, label}], keeping the current choice when it still exists.
  function fillSelect(select, options, keep) {
    const current = keep === undefined ? select.value : keep;
    clear(select);
    for (const o of options) select.append(el("option", { value: o.value, text: o.label || o.value }));
    if (options.some((o) => o.value === current)) select.value = current;
  }

  function qs(sel) {
    return document.querySelector(sel);
  }

  function init() {
    const logout = document.getElementById("logout");
    const who = document.getElementById("who");
    if (getKey()) {
      logout.hidden = false;
      who.textContent = "key " + getKey().slice(0, 14) + "…";
      if (location.pathname !== "/login") {
        api("/api/whoami", { noRedirect: true }).then((w) => {
          who.textContent = "project " + w.project_id + (w.admin ? " · admin" : "") + " · key " + getKey().slice(0, 14) + "…";
        }).catch(() => null);
      }
    }
    logout.addEventListener("click", () => {
      setKey("");
      location.assign("/login");
    });
  }
  document.addEventListener("DOMContentLoaded", init);

  return { getKey, setKey, authHeaders, api, fetchBlob, items, safeHref, el, clear, queryTerms, highlight,
           sse, upload, setProgress, flash, guard, fmtTime, fmtNum, fmtBytes, statusBadge, fillSelect, qs,
           ApiError, toLogin };
})();
