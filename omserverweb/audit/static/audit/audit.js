// Live tail of the audit page: polls for events above the server's cursor and
// prepends those not shown yet (the cursor trails behind batches that may still
// commit, so an event written late is not missed); every value is placed with
// textContent.
const POLL_MS = 3000;
const host = document.getElementById("audit-live");
const body = document.getElementById("events");
const live = document.getElementById("live");
const badge = document.getElementById("alert-count");
let after = Number(host.dataset.after || 0);
const shown = new Set([...body.querySelectorAll("tr[data-id]")].map((tr) => Number(tr.dataset.id)));

function cell(text, className) {
  const td = document.createElement("td");
  if (className) td.className = className;
  td.textContent = text;
  return td;
}

function row(event) {
  const tr = document.createElement("tr");
  tr.dataset.id = event.id;
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
    const { events, cursor } = await response.json();
    for (const event of events) {
      if (shown.has(event.id)) continue;
      shown.add(event.id);
      body.querySelector("tr.empty")?.remove();
      body.prepend(row(event));
      if (event.alerts.length) badge.textContent = String(Number(badge.textContent) + 1);
    }
    after = cursor;
    for (const id of shown) if (id <= after) shown.delete(id); // never sent again
    live.title = gettext("updated") + " " + new Date().toLocaleTimeString();
  } catch {
    live.title = gettext("live tail paused: server unreachable");
  }
}

if (host.dataset.follow) setInterval(poll, POLL_MS);
