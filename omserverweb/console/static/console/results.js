// Live results of one job: each host's steps as they run and end, progress,
// identical outputs grouped, diffs, re-run.
// Output is always placed with textContent or as text nodes, so whatever a host prints stays text.
import { api } from "./api.js";

const gettext = window.gettext ?? ((s) => s);
const ngettext = window.ngettext ?? ((one, many, n) => (n === 1 ? one : many));
const fmt = (s, values) => s.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
// Statuses and their labels come from the server's one vocabulary (console/context_processors.py).
const STATUSES = JSON.parse(document.getElementById("om-statuses").textContent);
const ACTIVE = new Set(STATUSES.active);
const PREVIEW_CHARS = 64 * 1024; // render more only on request: a 1 MiB output stays cheap
const POLL_MS = 400; // live lines show within the 2 s target; polling, not one worker per viewer
const RETRY_MAX_MS = 15_000; // a failing poll is retried, each time later, up to this

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const statusLabel = (status) => STATUSES.labels[status] ?? status;

function badge(status) {
  return el("span", { className: `badge status-${status}`, textContent: statusLabel(status) });
}

function truncatedBadge() {
  return el("span", { className: "badge status-partial", textContent: gettext("truncated") });
}

export function lineDiff(base, other, limit = 4_000_000) {
  // Longest-common-subsequence diff of lines; refuses inputs too large to diff quickly.
  const a = base.split("\n");
  const b = other.split("\n");
  if (a.length * b.length > limit) return null;
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) {
      out.push(["  ", a[i]]);
      i++;
      j++;
    } else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) {
      out.push(["+ ", b[j++]]);
    } else {
      out.push(["- ", a[i++]]);
    }
  }
  return out;
}

// What a step shows once it ended.
const outputText = (step) => [step.stdout, step.stderr].filter(Boolean).join("\n");
const stillRunning = (row) => !row || ACTIVE.has(row.status);

function timing(row) {
  const rc = row.rc ?? "—";
  return stillRunning(row) ? "" : `rc=${rc} · ${row.duration.toFixed(2)} s`;
}

function saveAs(text, name) {
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/plain" })), download: name });
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function button(label, onClick) {
  const node = el("button", { type: "button", textContent: label });
  node.addEventListener("click", onClick);
  return node;
}

function outputBlock(text, fileName) {
  // An ended step's output: its first 64 KiB, the rest on Expand; Copy and Download take all.
  const pre = el("pre", { className: "output" });
  const long = text.length > PREVIEW_CHARS;
  pre.textContent = long ? text.slice(0, PREVIEW_CHARS) : text;
  const tools = el("div", { className: "tools" });
  if (long || text.split("\n", 21).length > 20) {
    pre.classList.add("collapsed");
    const more = button(gettext("Expand"), () => {
      pre.textContent = text;
      pre.classList.toggle("collapsed");
      more.textContent = pre.classList.contains("collapsed") ? gettext("Expand") : gettext("Collapse");
    });
    tools.append(more);
  }
  tools.append(
    button(gettext("Copy"), () => navigator.clipboard?.writeText(text)),
    button(gettext("Download"), () => saveAs(text, fileName)),
  );
  return [tools, pre];
}

class LiveOutput {
  // What a running step prints, appended as it arrives; its first 64 KiB is shown.
  constructor() {
    this.pre = el("pre", { className: "output live" });
    this.note = el("p", { className: "muted", hidden: true, textContent: gettext("Showing the first 64 KiB while the step runs.") });
    this.shown = 0;
  }

  append(stream, text) {
    const room = PREVIEW_CHARS - this.shown;
    if (text.length > room) this.note.hidden = false;
    const piece = text.slice(0, Math.max(room, 0));
    if (!piece) return;
    const pre = this.pre;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 2;
    pre.append(stream === "stderr" ? el("span", { className: "stderr", textContent: piece }) : piece);
    this.shown += piece.length;
    if (atEnd) pre.scrollTop = pre.scrollHeight; // follow the end only if the reader was there
  }
}

class StepView {
  // One step on one host: a <details> whose summary is its action and how it ended.
  constructor(hostName, number) {
    this.hostName = hostName;
    this.number = number;
    this.row = null; // null until the step's row arrives (its live output may come first)
    this.chosen = false; // the reader opened or closed it: left as they chose
    this.summary = el("summary");
    this.body = el("div", { className: "step-body" });
    this.node = el("details", { className: "step" }, this.summary, this.body);
    this.node.dataset.step = number;
    this.summary.addEventListener("click", () => {
      this.chosen = true;
    });
    this.live = null;
    this.renderSummary();
  }

  get ended() {
    return !stillRunning(this.row);
  }

  update(row) {
    // A running row opens the live view; an ended row replaces what was shown live.
    this.row = row;
    this.node.className = `step status-${row.status}`;
    this.renderSummary();
    if (this.ended) this.showEnd();
    else if (!this.live) this.startLive();
  }

  appendLive(stream, text) {
    if (this.ended) return; // a piece the step's ended row already holds
    if (!this.live) this.startLive();
    this.live.append(stream, text);
  }

  setOpen(isLast) {
    if (this.chosen) return;
    const row = this.row;
    this.node.open = !this.ended || isLast || row.status !== "ok" || row.truncated;
  }

  text() {
    // What grouping and diffs compare: the action line, then the output.
    const row = this.row ?? {};
    return [`${this.number}. ${row.action ?? ""}`, outputText(row)].filter(Boolean).join("\n");
  }

  renderSummary() {
    const row = this.row;
    this.summary.replaceChildren(el("span", { className: "step-number", textContent: `${this.number}.` }));
    if (!row) return;
    this.summary.append(
      el("code", { className: "action", textContent: row.action }),
      badge(row.status),
      el("span", { className: "muted", textContent: timing(row) }),
    );
    if (row.truncated) this.summary.append(truncatedBadge());
  }

  startLive() {
    this.live = new LiveOutput();
    this.body.replaceChildren(this.live.pre, this.live.note);
  }

  showEnd() {
    this.live = null;
    const [tools, pre] = outputBlock(outputText(this.row), `${this.hostName}-step${this.number}.txt`);
    this.body.replaceChildren(tools, pre);
  }
}

class HostView {
  // One host of the job: its status, why it ended when no step says, and its steps in order.
  constructor(name) {
    this.name = name;
    this.row = null; // null until the host's row arrives
    this.steps = new Map();
    this.head = el("div", { className: "host-head" });
    this.error = el("p", { className: "host-error error", hidden: true });
    this.stepList = el("div", { className: "steps" });
    this.node = el("article", { className: "host-result", id: `host-${name}` }, this.head, this.error, this.stepList);
    this.renderHead();
  }

  get finished() {
    return !stillRunning(this.row);
  }

  update(row) {
    this.row = row;
    this.node.className = `host-result status-${row.status}`;
    this.error.textContent = row.error;
    this.error.hidden = !row.error;
    this.renderHead();
  }

  step(number) {
    // The step's view, made and put in its place on first mention.
    let step = this.steps.get(number);
    if (step) return step;
    step = new StepView(this.name, number);
    const later = [...this.steps.values()].find((other) => other.number > number);
    this.stepList.insertBefore(step.node, later?.node ?? null);
    this.steps.set(number, step);
    this.refreshOpen();
    return step;
  }

  refreshOpen() {
    const last = Math.max(...this.steps.keys());
    for (const step of this.steps.values()) step.setOpen(step.number === last);
  }

  text() {
    const steps = [...this.steps.values()].sort((a, b) => a.number - b.number);
    return [this.row?.error, ...steps.map((step) => step.text())].filter(Boolean).join("\n");
  }

  renderHead() {
    const row = this.row;
    this.head.replaceChildren(el("strong", { className: "host", textContent: this.name }));
    if (!row) return;
    this.head.append(badge(row.status), el("span", { className: "muted", textContent: timing(row) }));
    if (row.truncated) this.head.append(truncatedBadge());
    const download = button(gettext("Download all"), () => saveAs(this.text(), `${this.name}.txt`));
    // in the head row: a floated toolbar would narrow the output's first lines
    this.head.append(el("div", { className: "tools" }, download));
  }
}

function groupHosts(hosts) {
  const groups = new Map();
  for (const host of hosts) {
    const key = `${host.row.status}\u0000${host.text()}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(host);
  }
  return [...groups.values()].sort((x, y) => y.length - x.length);
}

function diffBlock(base, other) {
  const diff = lineDiff(base, other);
  const pre = el("pre", { className: "diff" });
  if (diff === null) {
    pre.textContent = gettext("Outputs too large to diff here; download them to compare.");
    return pre;
  }
  for (const [mark, line] of diff) {
    pre.append(el("span", { className: mark === "+ " ? "add" : mark === "- " ? "del" : "", textContent: `${mark}${line}\n` }));
  }
  return pre;
}

export class JobView {
  constructor(pane, jobId, { onStatus, onFinished, onRerun } = {}) {
    this.pane = pane;
    this.jobId = jobId;
    this.hosts = new Map();
    this.after = 0;
    this.onStatus = onStatus;
    this.onFinished = onFinished;
    this.onRerun = onRerun;
    this.stopped = false;
    this.shownStatus = null;
    this.pane.replaceChildren();
    this.header = el("div", { className: "job-head" });
    this.trouble = el("p", { className: "poll-trouble error", role: "status", hidden: true });
    this.summary = el("div", { className: "summary" });
    this.hostList = el("div", { className: "hosts" });
    this.pane.append(this.header, this.trouble, this.summary, this.hostList);
  }

  stop() {
    this.stopped = true;
  }

  async poll() {
    // Asks for what changed since the cursor: again at once while the answer was cut,
    // every POLL_MS while the job runs, later and later while the server does not answer.
    let failures = 0;
    while (!this.stopped) {
      let data;
      try {
        data = await api(`jobs/${this.jobId}/results/?after=${this.after}`);
      } catch (error) {
        failures += 1;
        this.showTrouble(error);
        await sleep(Math.min(POLL_MS * 2 ** failures, RETRY_MAX_MS));
        continue;
      }
      if (this.stopped) break;
      failures = 0;
      this.trouble.hidden = true;
      this.apply(data);
      if (data.more) continue;
      if (!ACTIVE.has(data.status)) {
        this.onFinished?.(data.status);
        return data.status;
      }
      await sleep(POLL_MS);
    }
    return null;
  }

  showTrouble(error) {
    this.trouble.textContent = fmt(gettext("The server did not answer (%(error)s); trying again."), { error: error.message });
    this.trouble.hidden = false;
  }

  apply(data) {
    // Every row in the order it was written, so a step's ended row comes after its live output.
    const writes = [
      ...data.results.map((row) => ({ seq: row.seq, apply: () => this.host(row.host).update(row) })),
      ...data.steps.map((row) => ({ seq: row.seq, apply: () => this.applyStep(row) })),
      ...data.output.map((row) => ({ seq: row.seq, apply: () => this.applyOutput(row) })),
    ].sort((a, b) => a.seq - b.seq);
    for (const write of writes) write.apply();
    this.after = data.cursor;
    this.renderHeader(data);
    if (data.results.length || data.status !== this.shownStatus) {
      // Redrawn only when a host changed: an open diff stays open while the job runs.
      this.renderSummary(data.status);
    }
    if (data.status !== this.shownStatus) this.onStatus?.(data.status);
    this.shownStatus = data.status;
  }

  host(name) {
    let host = this.hosts.get(name);
    if (!host) {
      host = new HostView(name);
      this.hosts.set(name, host);
      this.hostList.append(host.node);
    }
    return host;
  }

  applyStep(row) {
    const host = this.host(row.host);
    host.step(row.number).update(row);
    host.refreshOpen();
  }

  applyOutput(piece) {
    this.host(piece.host).step(piece.step).appendLive(piece.stream, piece.text);
  }

  renderHeader({ status, total, finished }) {
    const link = el("a", { href: `/jobs/${this.jobId}/`, textContent: `#${this.jobId}` });
    this.header.replaceChildren(
      el("span", {}, gettext("Job"), " ", link),
      badge(status),
      el("progress", { max: Math.max(total, 1), value: finished }),
      el("span", { className: "progress-text", textContent: fmt(ngettext("%(done)s of %(total)s host", "%(done)s of %(total)s hosts", total), { done: finished, total }) }),
    );
  }

  renderSummary(status) {
    // Hosts the module is done with, grouped by what their blocks show.
    const finished = [...this.hosts.values()].filter((host) => host.finished);
    const groups = groupHosts(finished);
    this.summary.replaceChildren();
    if (!groups.length) return;
    const [majority, ...others] = groups;
    const majorityText = majority[0].text();
    this.summary.append(
      el("p", {}, badge(majority[0].row.status), " ",
        fmt(ngettext("%(n)s host: identical output", "%(n)s hosts: identical output", majority.length), { n: majority.length })),
    );
    for (const group of others) {
      const names = group.map((host) => host.name).join(", ");
      const row = el("details", { className: "differs" },
        el("summary", {}, badge(group[0].row.status), " ",
          fmt(ngettext("%(n)s host differs: %(hosts)s", "%(n)s hosts differ: %(hosts)s", group.length), { n: group.length, hosts: names })));
      row.addEventListener("toggle", () => {
        if (row.open && !row.querySelector("pre")) row.append(diffBlock(majorityText, group[0].text()));
      });
      this.summary.append(row);
    }
    this.appendRerun(status, finished, others);
  }

  appendRerun(status, finished, others) {
    const failed = finished.filter((host) => host.row.status !== "ok").map((host) => host.name);
    const differing = others.flat().map((host) => host.name);
    const rerunHosts = [...new Set([...failed, ...differing])];
    if (ACTIVE.has(status) || !rerunHosts.length || !this.onRerun) return;
    const rerun = button(
      fmt(ngettext("Re-run on the failed or differing host", "Re-run on the %(n)s failed or differing hosts", rerunHosts.length), { n: rerunHosts.length }),
      () => this.onRerun(rerunHosts),
    );
    rerun.className = "rerun-subset";
    this.summary.append(rerun);
  }
}
