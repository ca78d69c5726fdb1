// Evals and ladder climbs: start them, poll their tasks, show results and the climb's report (sandboxed).
"use strict";
(() => {
  const { api, items, el, clear, qs, guard, flash, fetchBlob, fmtTime, fmtNum, statusBadge, fillSelect } = Ladder;
  const CLIMBS = "ladder.climbs"; // the server has no climb list yet: remember the ones started here
  const DONE = new Set(["succeeded", "failed", "cancelled"]);
  let showing = null;
  let timer = null;

  const knownClimbs = () => { try { return JSON.parse(localStorage.getItem(CLIMBS) || "[]"); } catch (_) { return []; } };
  function rememberClimb(task) {
    const list = knownClimbs().filter((c) => c.id !== task.id);
    list.unshift({ id: task.id, status: task.status, created_at: task.created_at });
    localStorage.setItem(CLIMBS, JSON.stringify(list.slice(0, 50)));
  }

  // "accuracy 0.812 [0.750, 0.870]" from {headline: "accuracy", value, ci}.
  function headline(x) {
    if (!x || typeof x.headline !== "string" || typeof x.value !== "number") return "";
    const ci = Array.isArray(x.ci) && x.ci.length === 2 && x.ci.every((v) => typeof v === "number")
      ? " [" + fmtNum(x.ci[0], 3) + ", " + fmtNum(x.ci[1], 3) + "]" : "";
    return x.headline + " " + fmtNum(x.value, 3) + ci;
  }

  async function loadChoices() {
    const [bots, files, models] = await Promise.all([api("/api/bots"), api("/v1/files"), api("/v1/models")]);
    fillSelect(qs("#eval-bot"), items(bots).map((b) => ({ value: b.name })));
    const fopts = items(files).map((f) => ({ value: f.id, label: f.filename + " (" + f.id + ")" }));
    for (const s of ["#eval-file", "#climb-train", "#climb-test"]) fillSelect(qs(s), fopts);
    fillSelect(qs("#climb-model"), [{ value: "", label: "(default)" },
      ...items(models).map((m) => m.id).filter((id) => !id.startsWith("bot:")).map((id) => ({ value: id }))]);
  }

  async function loadEvals() {
    const body = await api("/api/evals");
    const tbody = clear(qs("#eval-table tbody"));
    const tasks = items(body, "tasks").length ? body.tasks : [];
    const runIds = new Set(tasks.map((t) => t.run_id).filter(Boolean));
    const byId = new Map(items(body).map((r) => [r.id, r]));
    const runs = items(body).filter((r) => !runIds.has(r.id));
    if (!tasks.length && !runs.length) tbody.append(el("tr", {}, el("td", { colspan: 5, class: "muted", text: "none yet" })));
    for (const t of tasks) {
      tbody.append(el("tr", { class: "selectable", dataset: { id: t.id }, onclick: guard(() => show("eval", t.id)) },
        el("td", { text: t.id }), el("td", { text: t.bot || "" }), el("td", {}, statusBadge(t.status)),
        el("td", { text: t.error ? t.error.message : headline(byId.get(t.run_id)) }), el("td", { text: fmtTime(t.created_at) })));
    }
    // runs stored by earlier server processes or the CLI: summary only (no detail endpoint for them)
    for (const r of runs) {
      tbody.append(el("tr", { dataset: { id: r.id } }, el("td", { text: r.id }), el("td", { text: r.pipeline || "" }),
        el("td", {}, statusBadge("succeeded")), el("td", { text: headline(r) }), el("td", { text: fmtTime(r.created_at) })));
    }
  }

  function loadClimbs() {
    const tbody = clear(qs("#climb-table tbody"));
    const list = knownClimbs();
    if (!list.length) tbody.append(el("tr", {}, el("td", { colspan: 3, class: "muted", text: "none started from this browser" })));
    for (const c of list) {
      tbody.append(el("tr", { class: "selectable", dataset: { id: c.id }, onclick: guard(() => show("climb", c.id)) },
        el("td", { text: c.id }), el("td", {}, statusBadge(c.status)), el("td", { text: fmtTime(c.created_at) })));
    }
  }

  // "eval prompt: 12 / 40" from a running task's {stage, done, total}; nothing once it has ended.
  function progressText(task) {
    const p = task.progress;
    if (DONE.has(task.status) || !p || typeof p.done !== "number") return null;
    const of = typeof p.total === "number" ? " / " + p.total : "";
    return (typeof p.stage === "string" ? p.stage + ": " : "") + p.done + of;
  }

  // A climb's rung tasks: "prompt succeeded; few-shot fixed k=4 running 16 / 40".
  function rungsText(task) {
    if (!Array.isArray(task.rungs) || !task.rungs.length) return null;
    return task.rungs.map((r) => {
      const p = r.progress || {};
      return r.name + " " + r.status + (r.status === "running" && typeof p.done === "number" ? " " + p.done + " / " + p.total : "");
    }).join("; ");
  }

  function kv(pairs) {
    const dl = clear(qs("#report-kv"));
    for (const [k, v] of pairs) {
      if (v === undefined || v === null || v === "") continue;
      dl.append(el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : typeof v === "object" ? JSON.stringify(v) : String(v)));
    }
  }

  // The scalar fields of a summary (metrics, latency, cost), whatever the part that wrote it put there.
  function scalars(obj, prefix) {
    const out = [];
    for (const [k, v] of Object.entries(obj || {})) {
      if (typeof v === "number") out.push([prefix + k, fmtNum(v, Number.isInteger(v) ? undefined : 4)]);
      else if (typeof v === "string" && v.length < 300) out.push([prefix + k, v]);
      else if (v && typeof v === "object" && !Array.isArray(v) && prefix === "") out.push(...scalars(v, k + "."));
    }
    return out;
  }

  function showItems(rows) {
    const table = qs("#report-items");
    const tbody = clear(table.querySelector("tbody"));
    table.hidden = !rows || !rows.length;
    for (const r of (rows || []).slice(0, 50)) {
      tbody.append(el("tr", {}, el("td", { text: r.idx }), el("td", { text: r.output }),
        el("td", { text: r.passed ? "yes" : "no" }), el("td", { class: "num", text: fmtNum(r.latency_ms, 0) })));
    }
  }

  async function show(kind, id) {
    clearTimeout(timer);
    showing = { kind, id };
    const path = (kind === "climb" ? "/api/climbs/" : "/api/evals/") + encodeURIComponent(id);
    const task = await api(path);
    if (kind === "climb") { rememberClimb(task); loadClimbs(); }
    const detail = qs("#report-detail");
    detail.hidden = false;
    detail.dataset.status = task.status;
    qs("#report-title").textContent = (kind === "climb" ? "Climb " : "Eval ") + task.id;
    const res = task.results || {};
    const summary = kind === "climb" ? res.summary : res;
    kv([["status", statusBadge(task.status)], ["progress", progressText(task)], ["rungs", rungsText(task)], ["chatbot", task.bot], ["headline", headline(summary)],
      ["error", task.error && task.error.message], ["created", fmtTime(task.created_at)], ["finished", fmtTime(task.finished_at)],
      ...scalars(summary || {}, "").filter(([k]) => !["headline", "value", "report_dir", "id"].includes(k))]);
    showItems(kind === "eval" ? res.items : null);
    const frame = qs("#report-frame");
    if (kind === "climb" && task.status === "succeeded") {
      const blob = await fetchBlob(path + "/report").catch(() => null);
      if (blob) {
        // sandbox="" (in the template): no scripts, no same-origin access, no top navigation.
        frame.srcdoc = await blob.text();
        frame.hidden = false;
      }
    } else {
      frame.hidden = true;
    }
    if (!DONE.has(task.status)) {
      timer = setTimeout(guard(async () => {
        if (showing && showing.id === id) await show(kind, id);
      }), 1500);
    } else if (kind === "eval") {
      await loadEvals();
    }
  }

  qs("#eval-form").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const task = await api("/api/evals", { method: "POST", json: { bot: qs("#eval-bot").value, test_file: qs("#eval-file").value } });
    flash("started eval " + task.id, true);
    await loadEvals();
    await show("eval", task.id);
  }));

  qs("#climb-form").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const body = { train_file: qs("#climb-train").value, test_file: qs("#climb-test").value, tune: qs("#climb-tune").checked };
    if (qs("#climb-model").value) body.model = qs("#climb-model").value;
    if (qs("#climb-target").value.trim()) body.target = qs("#climb-target").value.trim();
    const task = await api("/api/climbs", { method: "POST", json: body });
    rememberClimb(task);
    loadClimbs();
    flash("started climb " + task.id, true);
    await show("climb", task.id);
  }));

  qs("#climb-lookup").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    await show("climb", qs("#climb-id").value.trim());
  }));

  loadClimbs();
  guard(async () => {
    await Promise.all([loadChoices(), loadEvals()]);
    const params = new URLSearchParams(location.search);
    if (params.get("climb")) await show("climb", params.get("climb"));
    else if (params.get("eval")) await show("eval", params.get("eval"));
  })();
})();
