// Execution analytics from /api/executions/stats/: status breakdown, runs per day, stage
// durations over time (with the slowest stage) and queue time (created → started). Every chart
// has a table with the same numbers. Re-drawn when the period or workflow filter changes.
(function () {
  const COLORS = {
    succeeded: "#1a7f37", failed: "#cf222e", error: "#8250df", running: "#0969da",
    pending: "#8c959f", deployment_pending: "#bf8700", approval_pending: "#d4a72c",
    approval_rejected: "#bc4c00", terminating: "#57606a", terminated: "#24292f",
    termination_failed: "#a40e26",
  };
  const PALETTE = ["#0969da", "#1a7f37", "#bf8700", "#8250df", "#cf222e", "#57606a", "#bc4c00", "#1b7c83"];
  const form = document.getElementById("filters");
  const charts = {};
  const fmt = (s) => (s === null || s === undefined ? "–" : `${Number(s).toFixed(1)} s`);

  function table(id, head, rows) {
    const el = document.getElementById(id);
    el.replaceChildren();
    const thead = el.createTHead().insertRow();
    for (const h of head) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = h;
      thead.appendChild(th);
    }
    const body = el.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      for (const cell of row) tr.insertCell().textContent = String(cell);
    }
    if (!rows.length) body.insertRow().insertCell().textContent = "No data in this period.";
  }

  function draw(id, config) {
    charts[id]?.destroy();
    charts[id] = new Chart(document.getElementById(id), {...config, options: {animation: false, ...config.options}});
  }

  async function load() {
    const params = new URLSearchParams(new FormData(form));
    const response = await fetch(`/api/executions/stats/?${params}`, {
      credentials: "same-origin", headers: {Accept: "application/json"},
    });
    const data = await response.json();
    const statuses = Object.keys(data.by_status).filter((s) => data.by_status[s] > 0);
    const rate = data.success_rate === null ? "–" : `${Math.round(data.success_rate * 100)}%`;
    const ongoing = data.total - data.ended;
    document.getElementById("summary").textContent =
      `${data.total} runs (${data.ended} ended${ongoing ? `, ${ongoing} not yet` : ""}) · ` +
      `success rate ${rate} of ended runs (${data.by_status.succeeded} succeeded) · ` +
      `average duration ${fmt(data.average_duration_seconds)} · average queue time ${fmt(data.queue_average_seconds)}`;
    document.body.dataset.statsTotal = data.total;

    draw("by-status", {
      type: "doughnut",
      data: {labels: statuses, datasets: [{data: statuses.map((s) => data.by_status[s]),
        backgroundColor: statuses.map((s) => COLORS[s])}]},
      options: {plugins: {title: {display: true, text: "By status"}}},
    });
    table("by-status-table", ["Status", "Runs"], statuses.map((s) => [s, data.by_status[s]]));

    draw("by-day", {
      type: "bar",
      data: {labels: data.by_day.map((d) => d.day), datasets: statuses.map((s) => ({
        label: s, data: data.by_day.map((d) => d[s] || 0), backgroundColor: COLORS[s]}))},
      options: {scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}},
        plugins: {title: {display: true, text: "Runs per day"}}},
    });
    table("by-day-table", ["Day", ...statuses], data.by_day.map((d) => [d.day, ...statuses.map((s) => d[s] || 0)]));

    const names = Object.keys(data.stage_by_day);
    const days = [...new Set(names.flatMap((n) => Object.keys(data.stage_by_day[n])))].sort();
    draw("stages", {
      type: "line",
      data: {labels: days, datasets: names.map((n, i) => ({label: n, borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: PALETTE[i % PALETTE.length], data: days.map((d) => data.stage_by_day[n][d] ?? null)}))},
      options: {scales: {y: {beginAtZero: true, title: {display: true, text: "seconds"}}},
        plugins: {title: {display: true, text: "Average stage duration per day"}}},
    });
    document.getElementById("slowest").textContent = data.slowest_stage
      ? `Slowest stage: ${data.slowest_stage.name}, ${fmt(data.slowest_stage.average_seconds)} on average`
      : "No stage finished in this period.";
    table("stages-table", ["Day", ...names], days.map((d) => [d, ...names.map((n) => fmt(data.stage_by_day[n][d]))]));

    draw("queue", {
      type: "line",
      data: {labels: data.queue_by_day.map((d) => d.day), datasets: [{label: "queue time",
        borderColor: "#57606a", data: data.queue_by_day.map((d) => d.average_seconds)}]},
      options: {scales: {y: {beginAtZero: true, title: {display: true, text: "seconds"}}},
        plugins: {title: {display: true, text: "Average queue time (created → started) per day"}}},
    });
    table("queue-table", ["Day", "Average queue time"], data.queue_by_day.map((d) => [d.day, fmt(d.average_seconds)]));
    document.body.dataset.statsReady = String(Date.now());
  }
  form.addEventListener("change", load);
  load();
})();
