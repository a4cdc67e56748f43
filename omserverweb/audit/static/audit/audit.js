// Live tail of the audit page: polls for events newer than the last one shown
// and prepends them; every value is placed with textContent.
const POLL_MS = 3000;
const host = document.getElementById("audit-live");
const body = document.getElementById("events");
const live = document.getElementById("live");
const badge = document.getElementById("alert-count");
let after = Number(host.dataset.after || 0);

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function row(event) {
  const tr = document.createElement("tr");
  if (event.alerts.length) tr.className = "alert";
  const command = cell("", "mono");
  for (const name of event.alerts) {
    const mark = document.createElement("span");
    mark.className = "badge status-failed";
    mark.textContent = name;
    command.append(mark, " ");
  }
  command.append(event.command);
  tr.append(
    cell(event.time.replace("T", " ").slice(0, 19)),
    cell(event.host),
    cell(event.user),
    cell(event.source),
    cell(event.cwd, "mono"),
    command,
  );
  return tr;
}

async function poll() {
  if (!live.checked) return;
  const query = new URLSearchParams(new FormData(document.getElementById("audit-filter")));
  query.delete("page");
  query.set("after", String(after));
  try {
    const response = await fetch(`${host.dataset.url}?${query}`, { credentials: "same-origin" });
    if (!response.ok) return;
    const { events } = await response.json();
    if (!events.length) return;
    body.querySelector("tr.empty")?.remove();
    for (const event of events) {
      body.prepend(row(event));
      after = Math.max(after, event.id);
      if (event.alerts.length) badge.textContent = String(Number(badge.textContent) + 1);
    }
    live.title = gettext("updated") + " " + new Date().toLocaleTimeString();
  } catch {
    live.title = gettext("live tail paused: server unreachable");
  }
}

if (host.dataset.follow) setInterval(poll, POLL_MS);
