// Usage and cost for this key's project, grouped by model, kind or day.
"use strict";
(() => {
  const { api, items, el, clear, qs, guard, fmtNum } = Ladder;

  async function load() {
    const by = qs("#usage-by").value;
    const body = await api("/api/usage?by=" + encodeURIComponent(by));
    const rows = items(body, "rows", "usage");
    qs("#usage-key").textContent = by;
    const tbody = clear(qs("#usage-table tbody"));
    let total = 0;
    if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "no usage recorded yet" })));
    for (const r of rows) {
      const cost = Number(r.cost_usd ?? r.cost ?? 0);
      total += cost;
      tbody.append(el("tr", {}, el("td", { text: r.key ?? r[by] ?? "" }),
        ...["calls", "prompt_tokens", "completion_tokens", "embedded_chunks", "trained_tokens"]
          .map((k) => el("td", { class: "num", text: fmtNum(r[k] ?? 0) })),
        el("td", { class: "num", text: "$" + cost.toFixed(6) })));
    }
    const t = body && (body.total_cost_usd ?? (body.total && body.total.cost_usd));
    qs("#usage-total").textContent = "Total: $" + Number(t ?? total).toFixed(6);
  }

  qs("#usage-by").addEventListener("change", guard(load));
  guard(load)();
})();
