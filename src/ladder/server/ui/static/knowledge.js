// Knowledge bases: list, create, delete; documents with upload progress; search preview with highlights.
"use strict";
(() => {
  const { api, items, el, clear, qs, guard, flash, upload, setProgress, queryTerms, highlight, fmtTime, fmtNum } = Ladder;
  const E = {
    kbs: "/api/kbs",
    kb: (id) => "/api/kbs/" + encodeURIComponent(id),
    docs: (id) => "/api/kbs/" + encodeURIComponent(id) + "/documents",
    doc: (id, d) => "/api/kbs/" + encodeURIComponent(id) + "/documents/" + encodeURIComponent(d),
    cancelIngest: (id, t) => "/api/kbs/" + encodeURIComponent(id) + "/ingests/" + encodeURIComponent(t) + "/cancel",
    search: (id) => "/api/kbs/" + encodeURIComponent(id) + "/search",
  };
  let current = null; // the selected KB object

  const ref = (kb) => kb.id || kb.name;

  async function loadKbs(selectRef) {
    const kbs = items(await api(E.kbs), "knowledge_bases");
    const ul = clear(qs("#kb-list"));
    if (!kbs.length) ul.append(el("li", { class: "muted", text: "no knowledge bases yet" }));
    for (const kb of kbs) {
      const li = el("li", { dataset: { ref: ref(kb) }, onclick: guard(() => select(kb)) },
        kb.name || kb.id, " ", el("span", { class: "muted", text: docCount(kb) }));
      ul.append(li);
    }
    const want = selectRef || (current && ref(current)) || new URLSearchParams(location.search).get("kb");
    const found = kbs.find((k) => ref(k) === want || k.name === want);
    if (found) await select(found);
    else if (!kbs.length) { current = null; qs("#kb-detail").hidden = true; }
  }

  function docCount(kb) {
    const n = kb.docs ?? kb.document_count ?? kb.n_documents;
    return typeof n === "number" ? "(" + n + " doc" + (n === 1 ? "" : "s") + ")" : "";
  }

  async function select(kb) {
    current = kb;
    for (const li of qs("#kb-list").children) li.classList.toggle("selected", li.dataset.ref === ref(kb));
    qs("#kb-detail").hidden = false;
    qs("#kb-title").textContent = kb.name || kb.id;
    clear(qs("#search-results"));
    await loadDocs();
  }

  let polling = null;  // the timer that reloads the table while ingests are queued or running

  function ingestRow(t) {
    const p = t.progress || {};
    const state = t.status === "queued" ? "queued" : (p.stage || "indexing") + (p.total ? " " + fmtNum(p.done || 0) + "/" + fmtNum(p.total) : "");
    const cancel = el("button", { type: "button", class: "danger", text: "Cancel",
      onclick: guard(async () => {
        await api(E.cancelIngest(ref(current), t.id), { method: "POST" });
        flash("cancelled indexing " + t.filename, true);
        await loadDocs();
      }) });
    return el("tr", { dataset: { id: t.id }, class: "muted" },
      el("td", { text: t.filename + " (" + state + ")" }), el("td", { class: "num", text: "" }),
      el("td", { text: fmtTime(t.created_at) }), el("td", {}, cancel));
  }

  async function loadDocs() {
    clearTimeout(polling);
    const body = await api(E.docs(ref(current)));
    const docs = items(body, "documents");
    const pending = (body && body.ingests) || [];
    const tbody = clear(qs("#doc-table tbody"));
    for (const t of pending) tbody.append(ingestRow(t));
    if (pending.length) polling = setTimeout(guard(loadDocs), 2000);
    if (!docs.length && !pending.length) tbody.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "no documents yet" })));
    for (const d of docs) {
      const del = el("button", { type: "button", class: "danger", text: "Delete",
        onclick: guard(async () => {
          await api(E.doc(ref(current), d.id), { method: "DELETE" });
          flash("deleted " + (d.name || d.filename || d.id), true);
          await loadDocs();
        }) });
      tbody.append(el("tr", { dataset: { id: d.id } },
        el("td", { text: d.name ?? d.filename ?? d.id }),
        el("td", { class: "num", text: fmtNum(d.chunks ?? d.chunk_count ?? d.n_chunks) }),
        el("td", { text: fmtTime(d.created_at) }), el("td", {}, del)));
    }
  }

  qs("#kb-create").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const name = qs("#kb-name").value.trim();
    const kb = await api(E.kbs, { method: "POST", json: { name } });
    qs("#kb-name").value = "";
    flash("knowledge base " + name + " created", true);
    await loadKbs(kb && ref(kb) ? ref(kb) : name);
  }));

  qs("#kb-delete").addEventListener("click", guard(async () => {
    if (!current) return;
    const name = current.name || current.id;
    if (!confirm("Delete knowledge base " + name + " and all its documents?")) return;
    await api(E.kb(ref(current)), { method: "DELETE" });
    current = null;
    qs("#kb-detail").hidden = true;
    flash("deleted " + name, true);
    await loadKbs();
  }));

  qs("#doc-upload").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const files = [...qs("#doc-files").files];
    if (!files.length || !current) return;
    const box = qs("#upload-progress");
    const total = files.reduce((s, f) => s + f.size, 0) || 1;
    let done = 0;
    try {
      for (const f of files) {
        const form = new FormData();
        form.append("file", f, f.name);
        const out = await upload(E.docs(ref(current)), form, (loaded) => {
          const frac = (done + loaded) / total;
          setProgress(box, frac, frac >= 1 ? "indexing " + f.name + "…" : "uploading " + f.name + " " + Math.round(frac * 100) + "%");
        });
        done += f.size;
        // A large file is queued (202, an ingest task): the table shows its progress until it is searchable.
        const queued = out && out.object === "ingest.task";
        setProgress(box, done / total, (queued ? "queued for indexing: " : "indexed ") + f.name);
      }
      flash("uploaded " + files.length + " file" + (files.length === 1 ? "" : "s"), true);
      qs("#doc-files").value = "";
    } finally {
      setTimeout(() => { box.hidden = true; }, 1500);
      await loadDocs();
    }
  }));

  qs("#search-form").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const query = qs("#search-query").value;
    const k = Number(qs("#search-k").value) || 5;
    const body = await api(E.search(ref(current)), { method: "POST", json: { query, k } });
    const hits = items(body, "results", "hits");
    const terms = queryTerms(query);
    const ol = clear(qs("#search-results"));
    if (!hits.length) ol.append(el("li", { class: "muted", text: "no matching chunks" }));
    for (const h of hits) {
      const name = h.doc_name ?? h.document_name ?? h.document ?? h.filename ?? h.doc_id ?? "";
      const heading = Array.isArray(h.heading_path) ? h.heading_path.join(" › ") : (h.heading ?? h.heading_path ?? "");
      const meta = [heading, h.page != null ? "p. " + h.page : "", h.score != null ? "score " + Number(h.score).toFixed(3) : ""]
        .filter(Boolean).join(" · ");
      ol.append(el("li", {}, el("span", { class: "src", text: name }), meta ? el("span", { class: "muted", text: " — " + meta }) : null,
        el("blockquote", { class: "quote" }, highlight(h.text ?? h.chunk ?? h.content ?? "", terms))));
    }
  }));

  guard(loadKbs)();
})();
