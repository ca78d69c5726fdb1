// Chat playground: streams /v1/chat/completions (SSE) and shows the answer's citations beside it.
"use strict";
(() => {
  const { api, items, el, clear, qs, guard, flash, authHeaders, sse, safeHref, fillSelect, toLogin, ApiError } = Ladder;
  const conv = qs("#conversation");
  const input = qs("#chat-input");
  const sendBtn = qs("#send");
  const stopBtn = qs("#stop");
  let history = [];
  let controller = null;

  async function loadModels(select) {
    const models = items(await api("/v1/models")).map((m) => m.id);
    const bots = models.filter((id) => id.startsWith("bot:"));
    const others = models.filter((id) => !id.startsWith("bot:"));
    const want = new URLSearchParams(location.search).get("model");
    fillSelect(qs("#model-select"), [...bots, ...others].map((id) => ({ value: id })), want || undefined);
    fillSelect(qs("#bot-model"), others.map((id) => ({ value: id })));
    if (select) qs("#model-select").value = select;
  }

  async function loadKbs() {
    const box = clear(qs("#bot-kbs"));
    let kbs = [];
    try {
      kbs = items(await api("/api/kbs"), "knowledge_bases");
    } catch (e) {
      box.append(el("span", { class: "muted", text: "knowledge bases unavailable: " + e.message }));
      return;
    }
    if (!kbs.length) box.append(el("span", { class: "muted", text: "none yet" }));
    for (const kb of kbs) {
      box.append(el("label", {}, el("input", { type: "checkbox", value: kb.name || kb.id }), kb.name || kb.id));
    }
  }

  // Citations may ride on the top-level object, a message or a delta, depending on the response kind.
  function citationsOf(obj) {
    if (!obj) return null;
    if (Array.isArray(obj.citations)) return obj.citations;
    const ch = obj.choices && obj.choices[0];
    if (ch && ch.message && Array.isArray(ch.message.citations)) return ch.message.citations;
    if (ch && ch.delta && Array.isArray(ch.delta.citations)) return ch.delta.citations;
    return null;
  }

  function where(c) {
    const parts = [];
    const page = c.page ?? (c.metadata && c.metadata.page);
    if (page !== undefined && page !== null && page !== "") parts.push("p. " + page);
    const heading = c.heading ?? c.heading_path ?? c.section;
    if (Array.isArray(heading) ? heading.length : heading) parts.push(Array.isArray(heading) ? heading.join(" › ") : heading);
    return parts.join(" · ");
  }

  function renderCitations(list) {
    const ol = clear(qs("#citations"));
    qs("#no-citations").hidden = !!(list && list.length);
    (list || []).forEach((c, i) => {
      const n = c.index ?? c.marker ?? c.number ?? i + 1;
      const name = c.doc_name ?? c.document_name ?? c.document ?? c.filename ?? c.title ?? c.doc_id ?? "source";
      const url = safeHref(c.url ?? (c.metadata && (c.metadata.url || c.metadata.source_url)));
      const head = url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer", class: "src", text: name })
                       : el("span", { class: "src", text: String(name) });
      const w = where(c);
      ol.append(el("li", { value: Number.isInteger(Number(n)) ? Number(n) : undefined, dataset: { n: String(n) } },
        head, w ? el("span", { class: "muted", text: " — " + w }) : null,
        el("blockquote", { class: "quote", text: c.quote ?? c.text ?? c.snippet ?? "" })));
    });
  }

  // Final rendering of an answer: markers like [1] become superscripts, everything else stays text.
  function renderAnswer(node, text, cited) {
    clear(node);
    const known = new Set((cited || []).map((c, i) => String(c.index ?? c.marker ?? c.number ?? i + 1)));
    let last = 0;
    for (const m of text.matchAll(/\[(\d{1,3})\]/g)) {
      if (!known.has(m[1])) continue;
      node.append(document.createTextNode(text.slice(last, m.index)));
      node.append(el("sup", { class: "cite", title: "source " + m[1], text: "[" + m[1] + "]" }));
      last = m.index + m[0].length;
    }
    node.append(document.createTextNode(text.slice(last)));
  }

  function bubble(role, text) {
    const node = el("div", { class: "msg " + role, text: text || "" });
    conv.append(node);
    conv.scrollTop = conv.scrollHeight;
    return node;
  }

  function busy(on) {
    sendBtn.disabled = on;
    stopBtn.hidden = !on;
  }

  async function send(text) {
    const model = qs("#model-select").value;
    if (!model) throw new Error("pick a chatbot or a model first");
    history.push({ role: "user", content: text });
    bubble("user", text);
    const answer = bubble("assistant streaming", "");
    answer.dataset.model = model;
    const textNode = document.createTextNode("");
    answer.append(textNode);
    controller = new AbortController();
    busy(true);
    let full = "";
    let cites = null;
    let usage = null;
    try {
      const r = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: authHeaders({ "Content-Type": "application/json", Accept: "text/event-stream" }),
        body: JSON.stringify({ model, messages: history, stream: true, stream_options: { include_usage: true } }),
        signal: controller.signal,
      });
      if (!r.ok) {
        let body = null;
        try { body = await r.json(); } catch (_) { body = null; }
        if (r.status === 401) toLogin();
        throw new ApiError(r.status, (body && body.error && body.error.message) || "HTTP " + r.status, body);
      }
      for await (const chunk of sse(r)) {
        if (chunk.error) throw new Error(chunk.error.message || "the stream failed");
        const c = citationsOf(chunk);
        if (c) { cites = c; renderCitations(cites); }
        if (chunk.usage) usage = chunk.usage;
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && typeof delta.content === "string" && delta.content) {
          full += delta.content;
          textNode.data = full;
          conv.scrollTop = conv.scrollHeight;
        }
      }
      history.push({ role: "assistant", content: full });
      renderAnswer(answer, full, cites);
      if (!cites) renderCitations([]);
      answer.dataset.done = "1";
      qs("#chat-usage").textContent = usage
        ? usage.prompt_tokens + " prompt + " + usage.completion_tokens + " completion tokens" : "";
    } catch (e) {
      if (e.name === "AbortError") {
        history.push({ role: "assistant", content: full });
        answer.dataset.done = "1";
      } else {
        history.pop();
        answer.classList.add("error");
        answer.textContent = e.message;
      }
    } finally {
      answer.classList.remove("streaming");
      busy(false);
      controller = null;
    }
  }

  qs("#chat-form").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || controller) return;
    input.value = "";
    await send(text);
  }));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      qs("#chat-form").requestSubmit();
    }
  });
  stopBtn.addEventListener("click", () => controller && controller.abort());
  qs("#new-chat").addEventListener("click", () => {
    history = [];
    clear(conv);
    renderCitations([]);
  });
  qs("#model-select").addEventListener("change", () => {
    history = [];
    clear(conv);
    renderCitations([]);
  });

  qs("#bot-form").addEventListener("submit", guard(async (e) => {
    e.preventDefault();
    const name = qs("#bot-name").value.trim();
    const kbs = [...qs("#bot-kbs").querySelectorAll("input:checked")].map((i) => i.value);
    await api("/api/bots", {
      method: "POST",
      json: { name, config: { model: qs("#bot-model").value, system_prompt: qs("#bot-system").value, kbs } },
    });
    flash("chatbot " + name + " created", true);
    await loadModels("bot:" + name);
  }));

  guard(async () => {
    await loadModels();
    await loadKbs();
  })();
})();
