// Log in: keep the key in localStorage once the server accepts it.
"use strict";
(() => {
  const { api, setKey, qs } = Ladder;

  function nextPath() {
    const next = new URLSearchParams(location.search).get("next") || "/";
    // only same-site paths: "/x", never "//evil" or "javascript:"
    return /^\/(?!\/)/.test(next) && !next.startsWith("/login") ? next : "/";
  }

  qs("#login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = qs("#api-key").value.trim();
    const out = qs("#login-error");
    out.textContent = "";
    setKey(key);
    try {
      await api("/v1/models", { noRedirect: true });
      location.assign(nextPath());
    } catch (err) {
      setKey("");
      out.textContent = err.status === 401 ? "That key was not accepted: " + err.message : err.message;
    }
  });
})();
