// Execution analytics: status breakdown (doughnut) and runs per day (stacked bars), from
// /api/executions/stats/, re-drawn when the period or workflow filter changes.
(function () {
  const COLORS = {
    succeeded: "#1a7f37", failed: "#cf222e", error: "#8250df", running: "#0969da",
    pending: "#8c959f", deployment_pending: "#bf8700", approval_pending: "#d4a72c",
    approval_rejected: "#bc4c00", terminating: "#57606a", terminated: "#24292f",
    termination_failed: "#a40e26",
  };
  const form = document.getElementById("filters");
  let statusChart, dayChart;

  async function load() {
    const params = new URLSearchParams(new FormData(form));
    const response = await fetch(`/api/executions/stats/?${params}`, {
      credentials: "same-origin", headers: {Accept: "application/json"},
    });
    const data = await response.json();
    const statuses = Object.keys(data.by_status).filter((s) => data.by_status[s] > 0);
    const rate = data.success_rate === null ? "–" : `${Math.round(data.success_rate * 100)}%`;
    const avg = data.average_duration_seconds === null ? "–" : `${data.average_duration_seconds.toFixed(1)} s`;
    document.getElementById("summary").textContent =
      `${data.total} runs · success rate ${rate} · average duration ${avg}`;
    document.body.dataset.statsTotal = data.total;

    statusChart?.destroy();
    statusChart = new Chart(document.getElementById("by-status"), {
      type: "doughnut",
      data: {labels: statuses, datasets: [{data: statuses.map((s) => data.by_status[s]),
        backgroundColor: statuses.map((s) => COLORS[s])}]},
      options: {animation: false, plugins: {title: {display: true, text: "By status"}}},
    });
    dayChart?.destroy();
    dayChart = new Chart(document.getElementById("by-day"), {
      type: "bar",
      data: {labels: data.by_day.map((d) => d.day), datasets: statuses.map((s) => ({
        label: s, data: data.by_day.map((d) => d[s] || 0), backgroundColor: COLORS[s]}))},
      options: {animation: false, scales: {x: {stacked: true}, y: {stacked: true, beginAtZero: true}},
        plugins: {title: {display: true, text: "Runs per day"}}},
    });
  }
  form.addEventListener("change", load);
  load();
})();
