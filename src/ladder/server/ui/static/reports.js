// Eval runs and ladder climbs: lists, details, the report page (sandboxed) and its plots.
"use strict";
(() => {
  const { api, items, el, clear, qs, guard, fetchBlob, fmtTime, fmtNum, statusBadge } = Ladder;
  const KINDS = {
    climb: { list: "/api/climbs", one: (id) => "/api/climbs/" + encodeURIComponent(id) },
    eval: { list: "/api/evals", one: (id) => "/api/evals/" + encodeURIComponent(id) },
  };
  let objectUrls = [];

  // Same-origin API paths only: a report's plot list must not send the key anywhere else.
  const localPath = (p) => (typeof p === "string" && /^\/(?!\/)/.test(p) ? p : null);

  // "accuracy 0.812 [0.750, 0.870]" from {headline: "accuracy", value, ci}, or whatever score there is.
  function headline(x) {
    if (typeof x.headline === "string" && typeof x.value === "number") {
      const ci = Array.isArray(x.ci) && x.ci.length === 2 && x.ci.every((v) => typeof v === "number")
        ? " [" + fmtNum(x.ci[0], 3) + ", " + fmtNum(x.ci[1], 3) + "]" : "";
      return x.headline + " " + fmtNum(x.value, 3) + ci;
    }
    const v = x.headline ?? x.score ?? (x.metrics && (x.metrics.headline ?? x.metrics.accuracy));
    if (v && typeof v === "object") return v.value != null ? fmtNum(v.value, 3) : "";
    return typeof v === "number" ? fmtNum(v, 3) : (v ?? "");
  }

  function recommendation(x) {
    const r = x.recommendation ?? x.recommended_rung ?? "";
    return typeof r === "object" && r ? (r.rung ?? r.name ?? "") : r;
  }

  async function loadList(kind) {
    const table = qs(kind === "climb" ? "#climb-table tbody" : "#eval-table tbody");
    const tbody = clear(table);
    let rows = [];
    try {
      rows = items(await api(KINDS[kind].list), kind === "climb" ? "climbs" : "evals");
    } catch (e) {
      tbody.append(el("tr", {}, el("td", { colspan: 5, class: "muted", text: "unavailable: " + e.message })));
      return;
    }
    if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: 5, class: "muted", text: "none yet" })));
    for (const x of rows) {
      const cells = kind === "climb"
        ? [el("td", { text: x.name || x.id }), el("td", {}, statusBadge(x.status)), el("td", { text: recommendation(x) }),
           el("td", { text: fmtTime(x.created_at) })]
        : [el("td", { text: x.name || x.id }), el("td", { text: x.pipeline || x.bot || "" }), el("td", {}, statusBadge(x.status)),
           el("td", { class: "num", text: headline(x) }), el("td", { text: fmtTime(x.created_at) })];
      tbody.append(el("tr", { class: "selectable", dataset: { id: x.id }, onclick: guard(() => show(kind, x.id)) }, cells));
    }
  }

  async function show(kind, id) {
    for (const u of objectUrls) URL.revokeObjectURL(u);
    objectUrls = [];
    const x = await api(KINDS[kind].one(id));
    qs("#report-detail").hidden = false;
    qs("#report-title").textContent = (kind === "climb" ? "Climb " : "Eval ") + (x.name || x.id);
    const dl = clear(qs("#report-kv"));
    const pairs = [["id", x.id], ["status", x.status], ["pipeline", x.pipeline], ["task", x.task],
      ["headline", headline(x)], ["recommendation", recommendation(x)], ["reasoning", x.reasoning ?? x.explanation],
      ["created", fmtTime(x.created_at)], ["finished", fmtTime(x.finished_at)],
      ["error", x.error && (x.error.message || x.error)]];
    for (const [k, v] of pairs) {
      if (v === undefined || v === null || v === "") continue;
      dl.append(el("dt", { text: k }), el("dd", { text: typeof v === "object" ? JSON.stringify(v) : v }));
    }
    const plots = clear(qs("#report-plots"));
    for (const p of x.plots || []) {
      const path = localPath(typeof p === "string" ? p : p && p.url);
      if (!path) continue;
      const blob = await fetchBlob(path).catch(() => null);
      if (!blob || !/^image\/(png|svg\+xml|jpeg|gif|webp)$/.test(blob.type)) continue;
      const u = URL.createObjectURL(blob);
      objectUrls.push(u);
      plots.append(el("img", { src: u, alt: typeof p === "string" ? p.split("/").pop() : (p.name || "plot") }));
    }
    const frame = qs("#report-frame");
    frame.hidden = true;
    const reportPath = localPath(x.report_url) || KINDS[kind].one(id) + "/report";
    if (x.status && !["succeeded", "completed", "done", "finished"].includes(x.status)) return;
    const blob = await fetchBlob(reportPath).catch(() => null);
    if (blob) {
      // sandbox="" (set in the template): no scripts, no same-origin access, no navigation of this page.
      frame.srcdoc = await blob.text();
      frame.hidden = false;
    }
  }

  guard(async () => {
    await Promise.all([loadList("climb"), loadList("eval")]);
    const params = new URLSearchParams(location.search);
    if (params.get("climb")) await show("climb", params.get("climb"));
    else if (params.get("eval")) await show("eval", params.get("eval"));
  })();
})();
