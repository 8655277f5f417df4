// The live dashboard: one websocket (/ws/dashboard/) says when a run of the user's projects
// was created, changed status or finished a stage; the page then reloads its two parts from the
// server (same filters, same cursor) and the "Waiting for me" count. Reconnects on its own.
(function () {
  const rows = document.getElementById("workflow-rows");
  const runs = document.getElementById("runs");
  const count = document.querySelector("[data-testid='waiting-count']");
  const live = document.getElementById("live-state");
  let delay = 500;
  let timer = 0;
  let inflight = false;
  let again = false;

  function partialUrl(part) {
    const params = new URLSearchParams(location.search);
    params.set("partial", part);
    return `${location.pathname}?${params}`;
  }

  async function refresh() {
    if (inflight) { again = true; return; }
    inflight = true;
    try {
      const [w, r] = await Promise.all(
        ["workflows", "runs"].map((part) =>
          fetch(partialUrl(part), {credentials: "same-origin"}).then((res) => (res.ok ? res.text() : null)))
      );
      if (w !== null) rows.innerHTML = w;
      if (r !== null) runs.innerHTML = r;
      document.body.dataset.refreshed = String(Date.now());
    } catch (err) {
      live.textContent = "Could not refresh: " + err.message;
    } finally {
      inflight = false;
      if (again) { again = false; schedule(); }
    }
  }

  // At most one refresh per 300 ms however many runs move at once.
  function schedule() {
    if (!timer) timer = setTimeout(() => { timer = 0; refresh(); }, 300);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/dashboard/`);
    ws.onopen = () => {
      delay = 500;
      live.textContent = "Live";
      document.body.dataset.live = "true";
    };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "changed") {
        count.textContent = String(msg.waiting);
        schedule();
      }
    };
    ws.onclose = () => {
      live.textContent = "Reconnecting…";
      document.body.dataset.live = "false";
      setTimeout(connect, delay = Math.min(delay * 2, 10000));
      schedule(); // whatever happened while away
    };
  }
  connect();
})();
