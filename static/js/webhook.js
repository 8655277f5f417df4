// The workflow page's webhook card: the URL to paste into each provider with its steps, the
// matching rules, a button that makes a new secret (shown once), and the recent deliveries.
(function () {
  const card = document.getElementById("webhook");
  if (!card) return;
  const get = (url) => fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
  const el = (tag, text) => { const e = document.createElement(tag); e.textContent = text; return e; };

  function render(info) {
    document.getElementById("webhook-help").textContent = info.matching_help;
    document.getElementById("webhook-note").textContent = info.secret_note;
    const list = document.getElementById("webhook-providers");
    list.innerHTML = "";
    for (const p of info.providers) {
      const li = el("li", "");
      li.appendChild(el("strong", `${p.name}: `));
      li.appendChild(el("code", p.url));
      li.appendChild(el("div", `${p.where} — ${p.steps.join("; ")}`)).className = "muted";
      list.appendChild(li);
    }
    if (info.secret) document.getElementById("webhook-secret").textContent = info.secret;
  }

  async function deliveries() {
    const response = await get(card.dataset.deliveries);
    if (!response.ok) return;
    const data = await response.json();
    const list = document.getElementById("webhook-deliveries");
    list.innerHTML = "";
    for (const d of (data.results || data).slice(0, 10)) {
      list.appendChild(el("li", `${d.received_at} ${d.provider} ${d.event} ${d.branch || d.tag || ""} ${(d.commit_sha || "").slice(0, 12)} — ${d.summary}`));
    }
    if (!list.children.length) list.appendChild(el("li", "No deliveries yet."));
  }

  document.getElementById("webhook-rotate").addEventListener("click", async () => {
    if (!confirm("Make a new secret? The current one stops working at once.")) return;
    const response = await fetch(card.dataset.rotate, {
      method: "POST", credentials: "same-origin",
      headers: {Accept: "application/json", "X-CSRFToken": window.CSRF_TOKEN},
    });
    const data = await response.json().catch(() => ({}));
    document.getElementById("webhook-note").textContent = response.ok ? "" : (data.detail || response.statusText);
    if (response.ok) render(data);
  });

  get(card.dataset.api).then((r) => r.json()).then(render);
  deliveries();
})();
