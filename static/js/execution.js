// Live execution page: replays the log from the last sequence number seen, then streams lines and
// status changes over the websocket; reconnects (losing nothing) if the connection drops.
(function () {
  const run = window.EXECUTION;
  const log = document.getElementById("log");
  const statusEl = document.getElementById("run-status");
  const reasonEl = document.getElementById("run-reason");
  const stagesEl = document.getElementById("stages");
  let after = -1;
  let ended = false;
  let delay = 500;

  function renderStages(stages) {
    stagesEl.innerHTML = "";
    for (const s of stages) {
      const li = document.createElement("li");
      li.className = "stage stage-" + s.status;
      li.dataset.stage = s.id;
      li.textContent = s.name + " ";
      const span = document.createElement("span");
      span.className = "muted";
      span.textContent = s.status + (s.error ? " — " + s.error : "");
      li.appendChild(span);
      stagesEl.appendChild(li);
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/executions/${run.id}/?after=${after}`);
    ws.onopen = () => { delay = 500; };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "log") {
        if (msg.seq <= after) return;
        after = msg.seq;
        const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 5;
        log.appendChild(document.createTextNode(msg.text));
        if (atBottom) log.scrollTop = log.scrollHeight;
      } else if (msg.type === "status") {
        statusEl.textContent = msg.status_display;
        statusEl.className = "status status-" + msg.status;
        reasonEl.textContent = msg.reason || "";
        // The queue place is the page's as loaded; once a worker took the run it is gone.
        if (msg.status !== "pending") document.getElementById("run-queue")?.remove();
        renderStages(msg.stages);
      } else if (msg.type === "end") {
        ended = true;
        document.body.dataset.runEnded = msg.status;
      }
    };
    ws.onclose = () => {
      if (!ended) setTimeout(connect, delay = Math.min(delay * 2, 5000));
    };
  }

  async function act(name) {
    const urls = {
      terminate: ["terminate", {}],
      deploy: ["deploy", {}],
      rerun: ["rerun", {from_failed: false}],
      "rerun-failed": ["rerun", {from_failed: true}],
    };
    const [path, body] = urls[name];
    const response = await fetch(`/api/executions/${run.id}/${path}/`, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": run.csrf, Accept: "application/json"},
      body: JSON.stringify(body),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      alert(data.detail || `${response.status} ${response.statusText}`);
    } else if (path === "rerun") {
      location.href = `/executions/${data.id}/`;
    }
  }

  document.getElementById("actions").addEventListener("click", (event) => {
    const name = event.target.dataset.action;
    if (name) act(name);
  });
  const approval = document.getElementById("approval");
  if (approval) {
    approval.addEventListener("click", async (event) => {
      const decision = event.target.dataset.decision;
      if (!decision) return;
      const response = await fetch(`/api/approvals/${approval.dataset.request}/${decision}/`, {
        method: "POST",
        credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": run.csrf, Accept: "application/json"},
        body: JSON.stringify({comment: document.getElementById("approval-comment").value}),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) alert(data.detail || `${response.status} ${response.statusText}`);
      else approval.textContent = `Decision recorded: ${data.status} (${data.approvals} of ${data.required}).`;
    });
  }
  connect();
})();
