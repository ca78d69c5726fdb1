// Overview: the models this key can use.
"use strict";
(() => {
  const { api, items, el, clear, qs, fmtTime, guard } = Ladder;
  guard(async () => {
    const models = items(await api("/v1/models"));
    const tbody = clear(qs("#models-table tbody"));
    for (const m of models) {
      tbody.append(el("tr", {}, el("td", { text: m.id }), el("td", { text: m.owned_by || "" }),
        el("td", { text: fmtTime(m.created) })));
    }
  })();
})();
