// Log in: keep the key in localStorage once the server accepts it.
"use strict";
(() => {
  const { api, setKey, qs } = Ladder;

  // Where to go once logged in: `next` only when the browser's own URL parser puts it on this origin.
  // A pattern test on the string cannot be sound: the parser drops tabs and newlines, reads "\" as
  // "/", decodes "%2e" as "." and strips leading spaces, so "/\evil", "/\t/evil" and " //evil" all
  // mean the host "evil". The absolute href is used, not pathname + search: "/.//evil" has the
  // pathname "//evil", which a second parse would read as a host again.
  function nextUrl() {
    const raw = new URLSearchParams(location.search).get("next");
    if (!raw) return "/";
    let url;
    try {
      url = new URL(raw, location.origin);
    } catch (_) {
      return "/";
    }
    if (url.origin !== location.origin || url.pathname === "/login") return "/";
    return url.href;
  }

  qs("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = qs("#api-key").value.trim();
    const out = qs("#login-error");
    out.textContent = "";
    setKey(key);
    try {
      await api("/v1/models", { noRedirect: true });
      location.assign(nextUrl());
    } catch (err) {
      setKey("");
      out.textContent = err.status === 401 ? "That key was not accepted: " + err.message : err.message;
    }
  });
})();
