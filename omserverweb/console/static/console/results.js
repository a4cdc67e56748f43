// Live host results of one job: progress, identical outputs grouped, diffs, re-run.
// Output is always placed with textContent, so whatever a host prints stays text.
import { api } from "./api.js";

const gettext = window.gettext ?? ((s) => s);
const ngettext = window.ngettext ?? ((one, many, n) => (n === 1 ? one : many));
const fmt = (s, values) => s.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
// Statuses and their labels come from the server's one vocabulary (console/context_processors.py).
const STATUSES = JSON.parse(document.getElementById("om-statuses").textContent);
const ACTIVE = new Set(STATUSES.active);
const PREVIEW_CHARS = 64 * 1024; // render more only on request: a 1 MiB output stays cheap
const POLL_MS = 400;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

export const statusLabel = (status) => STATUSES.labels[status] ?? status;

function badge(status) {
  return el("span", { className: `badge status-${status}`, textContent: statusLabel(status) });
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

// What a host block shows, and so what grouping and diffs compare.
const outputText = (result) => [result.stdout, result.stderr].filter(Boolean).join("\n");

function groupResults(results) {
  const groups = new Map();
  for (const r of results) {
    const key = `${r.status}\u0000${outputText(r)}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  return [...groups.values()].sort((x, y) => y.length - x.length);
}

function outputBlock(result) {
  const text = outputText(result);
  const pre = el("pre", { className: "output" });
  const long = text.length > PREVIEW_CHARS;
  pre.textContent = long ? text.slice(0, PREVIEW_CHARS) : text;
  const tools = el("div", { className: "tools" });
  if (long || text.split("\n", 21).length > 20) {
    pre.classList.add("collapsed");
    const more = el("button", { type: "button", textContent: gettext("Expand") });
    more.addEventListener("click", () => {
      pre.textContent = text;
      pre.classList.toggle("collapsed");
      more.textContent = pre.classList.contains("collapsed") ? gettext("Expand") : gettext("Collapse");
    });
    tools.append(more);
  }
  const copy = el("button", { type: "button", textContent: gettext("Copy") });
  copy.addEventListener("click", () => navigator.clipboard?.writeText(text));
  const download = el("button", { type: "button", textContent: gettext("Download") });
  download.addEventListener("click", () => {
    const link = el("a", {
      href: URL.createObjectURL(new Blob([text], { type: "text/plain" })),
      download: `${result.host}.txt`,
    });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  });
  tools.append(copy, download);
  return [tools, pre];
}

function hostBlock(result) {
  const head = el(
    "div",
    { className: "host-head" },
    el("strong", { className: "host", textContent: result.host }),
    badge(result.status),
    el("span", { className: "muted", textContent: `rc=${result.rc ?? "—"} · ${result.duration.toFixed(2)} s` }),
  );
  if (result.truncated) head.append(el("span", { className: "badge status-partial", textContent: gettext("truncated") }));
  const [tools, pre] = outputBlock(result);
  head.append(tools); // in the head row: a floated toolbar would narrow the output's first lines
  return el("article", { className: `host-result status-${result.status}`, id: `host-${result.host}` }, head, pre);
}

export class JobView {
  constructor(pane, jobId, { onFinished, onRerun } = {}) {
    this.pane = pane;
    this.jobId = jobId;
    this.results = new Map();
    this.blocks = new Map();
    this.after = 0;
    this.onFinished = onFinished;
    this.onRerun = onRerun;
    this.stopped = false;
    this.shownStatus = null;
    this.pane.replaceChildren();
    this.header = el("div", { className: "job-head" });
    this.summary = el("div", { className: "summary" });
    this.hosts = el("div", { className: "hosts" });
    this.pane.append(this.header, this.summary, this.hosts);
  }

  stop() {
    this.stopped = true;
  }

  async poll() {
    while (!this.stopped) {
      const data = await api(`jobs/${this.jobId}/results/?after=${this.after}`);
      const changed = data.results;
      for (const r of changed) {
        this.results.set(r.host, r);
        this.after = Math.max(this.after, r.seq);
      }
      this.render(data.status, data.total, changed);
      if (data.more) continue; // the rest of what is there already, at once
      if (!ACTIVE.has(data.status)) {
        this.onFinished?.(data.status);
        return data.status;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    return null;
  }

  render(status, total, changed) {
    const done = this.results.size;
    const link = el("a", { href: `/jobs/${this.jobId}/`, textContent: `#${this.jobId}` });
    const bar = el("progress", { max: Math.max(total, 1), value: done });
    this.header.replaceChildren(
      el("span", {}, gettext("Job"), " ", link),
      badge(status),
      bar,
      el("span", { className: "progress-text", textContent: fmt(gettext("%(done)s of %(total)s hosts"), { done, total }) }),
    );
    if (changed.length || status !== this.shownStatus) {
      // Redrawn only when something changed: an open diff stays open while the job runs.
      this.renderSummary(status);
      this.shownStatus = status;
    }
    for (const result of changed) {
      // Only what changed is redrawn, in order of arrival, so expanded blocks stay open.
      const block = hostBlock(result);
      const old = this.blocks.get(result.host);
      if (old) old.replaceWith(block);
      else this.hosts.append(block);
      this.blocks.set(result.host, block);
    }
  }

  renderSummary(status) {
    const groups = groupResults([...this.results.values()]);
    this.summary.replaceChildren();
    if (!groups.length) return;
    const [majority, ...others] = groups;
    const majorityText = outputText(majority[0]);
    this.summary.append(
      el("p", {}, badge(majority[0].status), " ",
        fmt(ngettext("%(n)s host: identical output", "%(n)s hosts: identical output", majority.length), { n: majority.length })),
    );
    for (const group of others) {
      const hosts = group.map((r) => r.host).join(", ");
      const row = el("details", { className: "differs" },
        el("summary", {}, badge(group[0].status), " ",
          fmt(ngettext("%(n)s host differs: %(hosts)s", "%(n)s hosts differ: %(hosts)s", group.length), { n: group.length, hosts })));
      row.addEventListener("toggle", () => {
        if (!row.open || row.querySelector("pre")) return;
        const diff = lineDiff(majorityText, outputText(group[0]));
        const pre = el("pre", { className: "diff" });
        if (diff === null) {
          pre.textContent = gettext("Outputs too large to diff here; download them to compare.");
        } else {
          for (const [mark, line] of diff) {
            pre.append(el("span", { className: mark === "+ " ? "add" : mark === "- " ? "del" : "", textContent: `${mark}${line}\n` }));
          }
        }
        row.append(pre);
      });
      this.summary.append(row);
    }
    const failed = [...this.results.values()].filter((r) => r.status !== "ok").map((r) => r.host);
    const differing = others.flat().map((r) => r.host);
    const rerunHosts = [...new Set([...failed, ...differing])];
    if (!ACTIVE.has(status) && rerunHosts.length && this.onRerun) {
      const button = el("button", {
        type: "button",
        className: "rerun-subset",
        textContent: fmt(ngettext("Re-run on the failed or differing host", "Re-run on the %(n)s failed or differing hosts", rerunHosts.length), { n: rerunHosts.length }),
      });
      button.addEventListener("click", () => this.onRerun(rerunHosts));
      this.summary.append(button);
    }
  }
}
