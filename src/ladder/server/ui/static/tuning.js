// Datasets and fine-tuning jobs over the OpenAI-compatible endpoints, with a live loss curve.
"use strict";
(() => {
  const { api, items, el, clear, qs, guard, flash, upload, setProgress, fmtTime, fmtBytes, fmtNum, statusBadge, fillSelect } = Ladder;
  const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
  let selected = null;
  let pollTimer = null;

  async function loadFiles() {
    const files = items(await api("/v1/files"));
    const tbody = clear(qs("#file-table tbody"));
    if (!files.length) tbody.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "no files yet" })));
    for (const f of files) {
      tbody.append(el("tr", { dataset: { id: f.id } },
        el("td", {}, el("div", { text: f.filename }), el("div", { class: "muted", text: f.id })),
        el("td", { class: "num", text: fmtBytes(f.bytes) }), el("td", { text: f.status || f.purpose || "" }),
        el("td", {}, el("button", { type: "button", class: "danger", text: "Delete", onclick: guard(async () => {
          await api("/v1/files/" + encodeURIComponent(f.id), { method: "DELETE" });
          await loadFiles();
        }) }))));
    }
    const tuneFiles = files.filter((f) => !f.purpose || f.purpose === "fine-tune");
    const opts = tuneFiles.map((f) => ({ value: f.id, label: f.filename + " (" + f.id + ")" }));
    fillSelect(qs("#job-file"), opts);
    fillSelect(qs("#job-valid"), [{ value: "", label: "(none)" }, ...opts]);
  }

  async function loadModels() {
    const models = items(await api("/v1/models")).map((m) => m.id).filter((id) => !id.startsWith("bot:"));
    fillSelect(qs("#job-model"), models.map((id) => ({ value: id })));
  }

  async function loadJobs() {
    const jobs = items(await api("/v1/fine_tuning/jobs?limit=50"));
    const tbody = clear(qs("#job-table tbody"));
    if (!jobs.length) tbody.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "no jobs yet" })));
    for (const j of jobs) {
      tbody.append(el("tr", { class: "selectable" + (selected === j.id ? " selected" : ""), dataset: { id: j.id },
        onclick: guard(() => selectJob(j.id)) },
        el("td", { text: j.id }), el("td", { text: j.fine_tuned_model || j.model }),
        el("td", {}, statusBadge(j.status)), el("td", { text: fmtTime(j.created_at) })));
    }
    return jobs;
  }

  function kv(dl, pairs) {
    clear(dl);
    for (const [k, v] of pairs) {
      if (v === undefined || v === null || v === "") continue;
      dl.append(el("dt", { text: k }), el("dd", {}, v instanceof Node ? v : String(v)));
    }
  }

  // Loss per step from `metrics` events (OpenAI's shape: data.step, data.train_loss, data.valid_loss).
  function lossSeries(events) {
    const train = [];
    const valid = [];
    for (const ev of events) {
      const d = ev.data || {};
      if (ev.type !== "metrics" && d.train_loss === undefined && d.loss === undefined) continue;
      const step = Number(d.step ?? d.step_number);
      const tl = Number(d.train_loss ?? d.loss);
      if (isFinite(step) && isFinite(tl)) train.push([step, tl]);
      const vl = Number(d.valid_loss ?? d.eval_loss);
      if (isFinite(step) && d.valid_loss != null && isFinite(vl)) valid.push([step, vl]);
    }
    train.sort((a, b) => a[0] - b[0]);
    valid.sort((a, b) => a[0] - b[0]);
    return { train, valid };
  }

  function drawLoss(canvas, series) {
    const ctx = canvas.getContext("2d");
    const W = canvas.width;
    const H = canvas.height;
    const pad = { l: 48, r: 12, t: 14, b: 28 };
    ctx.clearRect(0, 0, W, H);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7280";
    const pts = [...series.train, ...series.valid];
    canvas.dataset.points = String(series.train.length);
    if (!pts.length) {
      ctx.fillText("the loss curve appears once training reports metrics", pad.l, H / 2);
      return;
    }
    let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
    let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    const sx = (x) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
    const sy = (y) => H - pad.b - ((y - y0) / (y1 - y0)) * (H - pad.t - pad.b);
    ctx.strokeStyle = "#e5e7eb";
    ctx.beginPath();
    for (let i = 0; i <= 4; i++) {
      const y = y0 + ((y1 - y0) * i) / 4;
      ctx.moveTo(pad.l, sy(y));
      ctx.lineTo(W - pad.r, sy(y));
      ctx.fillText(y.toFixed(3), 4, sy(y) + 4);
    }
    ctx.stroke();
    ctx.fillText("step " + x0, pad.l, H - 8);
    ctx.fillText("step " + x1, W - pad.r - 50, H - 8);
    const line = (data, color) => {
      if (!data.length) return;
      ctx.strokeStyle = color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      data.forEach(([x, y], i) => (i ? ctx.lineTo(sx(x), sy(y)) : ctx.moveTo(sx(x), sy(y))));
      ctx.stroke();
      if (data.length === 1) ctx.fillRect(sx(data[0][0]) - 2, sy(data[0][1]) - 2, 4, 4);
      ctx.lineWidth = 1;
    };
    line(series.train, "#1d4ed8");
    line(series.valid, "#d97706");
    ctx.fillStyle = "#1d4ed8";
    ctx.fillText("train loss", W - pad.r - 130, pad.t);
    if (series.valid.length) { ctx.fillStyle = "#d97706"; ctx.fillText("valid loss", W - pad.r - 65, pad.t); }
  }

  async function refreshJob() {
    if (!selected) return;
    const id = encodeURIComponent(selected);
    const [job, evBody, ckBody] = await Promise.all([
      api("/v1/fine_tuning/jobs/" + id),
      api("/v1/fine_tuning/jobs/" + id + "/events?limit=1000"),
      api("/v1/fine_tuning/jobs/" + id + "/checkpoints?limit=100").catch(() => null),
    ]);
    const detail = qs("#job-detail");
    detail.hidden = false;
    detail.dataset.status = job.status;
    qs("#job-title").textContent = job.id;
    const hp = job.hyperparameters || (job.method && job.method.supervised && job.method.supervised.hyperparameters) || {};
    kv(qs("#job-kv"), [
      ["status", statusBadge(job.status)], ["base model", job.model], ["tuned model", job.fine_tuned_model],
      ["training file", job.training_file], ["epochs", hp.n_epochs], ["trained tokens", fmtNum(job.trained_tokens)],
      ["created", fmtTime(job.created_at)], ["finished", fmtTime(job.finished_at)],
      ["error", job.error && job.error.message],
    ]);
    const model = job.fine_tuned_model;
    if (model && job.status === "succeeded") {
      qs("#job-kv").append(el("dt", { text: "try it" }),
        el("dd", {}, el("a", { href: "/chat?model=" + encodeURIComponent(model), text: "chat with " + model })));
    }
    qs("#job-cancel").hidden = TERMINAL.has(job.status);
    const events = items(evBody);
    const ol = clear(qs("#job-events"));
    // newest first, as the API returns them
    for (const ev of events) {
      ol.append(el("li", { class: ev.level || "" }, el("span", { class: "muted", text: fmtTime(ev.created_at) + " " }), ev.message || ""));
    }
    drawLoss(qs("#loss-chart"), lossSeries(events));
    const ul = clear(qs("#job-checkpoints"));
    for (const c of items(ckBody)) {
      const m = c.metrics || {};
      ul.append(el("li", { text: "step " + c.step_number + (m.train_loss != null ? " · train loss " + Number(m.train_loss).toFixed(4) : "") +
        " · " + (c.fine_tuned_model_checkpoint || c.id) }));
    }
    return job;
  }

  async function selectJob(id) {
    selected = id;
    for (const tr of qs("#job-table tbody").children) tr.classList.toggle("selected", tr.dataset.id === id);
    await poll();
  }

  async function poll() {
    clearTimeout(pollTimer);
    let job = null;
    try {
      job = await refreshJob();
    } catch (e) {
      flash(e.message);
    }
    if (job && !TERMINAL.has(job.status)) {
      pollTimer = setTimeout(poll, 1000);
    } else if (job) {
      await loadJobs().catch(() => null);
      await loadModels().catch(() => null);
    }
  }

  qs("#file-upload").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const f = qs("#train-file").files[0];
    if (!f) return;
    const form = new FormData();
    form.append("purpose", "fine-tune");
    form.append("file", f, f.name);
    const box = qs("#file-progress");
    try {
      const out = await upload("/v1/files", form, (loaded, total) =>
        setProgress(box, loaded / total, "uploading " + f.name + " " + Math.round((100 * loaded) / total) + "%"));
      setProgress(box, 1, "uploaded " + f.name);
      flash("uploaded " + f.name + " as " + out.id, true);
      qs("#train-file").value = "";
      await loadFiles();
      qs("#job-file").value = out.id;
    } finally {
      setTimeout(() => { box.hidden = true; }, 1500);
    }
  }));

  qs("#job-form").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const body = {
      training_file: qs("#job-file").value,
      model: qs("#job-model").value,
      method: { type: "supervised", supervised: { hyperparameters: { n_epochs: Number(qs("#job-epochs").value) || 1 } } },
    };
    const valid = qs("#job-valid").value;
    if (valid) body.validation_file = valid;
    const suffix = qs("#job-suffix").value.trim();
    if (suffix) body.suffix = suffix;
    const seed = qs("#job-seed").value;
    if (seed !== "") body.seed = Number(seed);
    const job = await api("/v1/fine_tuning/jobs", { method: "POST", json: body });
    flash("started " + job.id, true);
    await loadJobs();
    await selectJob(job.id);
  }));

  qs("#job-cancel").addEventListener("click", guard(async () => {
    if (!selected) return;
    await api("/v1/fine_tuning/jobs/" + encodeURIComponent(selected) + "/cancel", { method: "POST" });
    await poll();
  }));

  guard(async () => {
    await Promise.all([loadFiles(), loadModels()]);
    const jobs = await loadJobs();
    const active = jobs.find((j) => !TERMINAL.has(j.status));
    if (active) await selectJob(active.id);
  })();
})();
