// The job detail page: live results, re-run (all or a subset), cancel.
import { api } from "./api.js";
import { JobView, statusLabel } from "./results.js";

const $ = (id) => document.getElementById(id);
const jobId = $("results").dataset.job;

async function rerun(hosts) {
  $("run-error").textContent = "";
  try {
    const job = await api(`jobs/${jobId}/rerun/`, { method: "POST", body: hosts ? { hosts } : {} });
    window.location.assign(`/jobs/${job.id}/`);
  } catch (error) {
    $("run-error").textContent = error.message;
  }
}

$("rerun").addEventListener("click", () => rerun(null));
$("cancel").addEventListener("click", async () => {
  try {
    await api(`jobs/${jobId}/cancel/`, { method: "POST" });
  } catch (error) {
    $("run-error").textContent = error.message;
  }
});

const view = new JobView($("results"), jobId, {
  onRerun: rerun,
  onStatus: (status) => {
    const badge = $("job-status");
    badge.textContent = statusLabel(status);
    badge.className = `badge status-${status}`;
  },
  onFinished: () => {
    $("cancel").hidden = true;
  },
});
view.poll();
