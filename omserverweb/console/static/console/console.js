// The console page: inventory tree, module form, preview, run, live results.
import { api } from "./api.js";
import { renderParamForm } from "./params.js";
import { JobView } from "./results.js";

const gettext = window.gettext ?? ((s) => s);
const ngettext = window.ngettext ?? ((one, many, n) => (n === 1 ? one : many));
const fmt = (s, values) => s.replace(/%\((\w+)\)s/g, (_, key) => String(values[key]));
const data = JSON.parse(document.getElementById("console-data").textContent);
const $ = (id) => document.getElementById(id);
const selected = new Map(); // server id -> hostname
let paramForm = renderParamForm($("param-form"), []);
let view = null;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  node.append(...children);
  return node;
}

function serverCheckbox(server) {
  const box = el("input", { type: "checkbox", value: server.id, disabled: !server.enabled });
  box.dataset.hostname = server.hostname;
  box.addEventListener("change", () => {
    if (box.checked) selected.set(server.id, server.hostname);
    else selected.delete(server.id);
    update();
  });
  const label = el("label", { className: "server" }, box, " ", server.hostname, " ",
    el("span", { className: "muted", textContent: server.lan_ip }));
  label.dataset.search = `${server.hostname} ${server.lan_ip}`.toLowerCase();
  return label;
}

function buildTree() {
  const root = $("tree");
  for (const fn of data.tree) {
    const fnNode = el("details", { open: true, className: "function" }, el("summary", { textContent: fn.name }));
    for (const app of fn.apps) {
      const all = el("input", { type: "checkbox", title: gettext("Select all servers of this category") });
      const servers = el("div", { className: "servers" }, ...app.servers.map(serverCheckbox));
      all.addEventListener("change", () => {
        for (const box of servers.querySelectorAll("input:not(:disabled)")) {
          if (box.closest("label").hidden) continue;
          box.checked = all.checked;
          box.dispatchEvent(new Event("change"));
        }
      });
      const appNode = el("details", { open: true, className: "app" },
        el("summary", {}, all, " ", app.name, " ", el("span", { className: "muted", textContent: `(${app.servers.length})` })),
        servers);
      appNode.dataset.app = app.id;
      fnNode.append(appNode);
    }
    root.append(fnNode);
  }
  $("server-search").addEventListener("input", (event) => {
    const needle = event.target.value.trim().toLowerCase();
    for (const label of root.querySelectorAll("label.server")) {
      label.hidden = Boolean(needle) && !label.dataset.search.includes(needle);
    }
  });
}

function buildModules() {
  const picker = $("module-picker");
  for (const m of data.modules) picker.append(new Option(`${m.id} ${m.name}`, m.id));
  picker.addEventListener("change", () => {
    const module = currentModule();
    $("module-caption").textContent = module?.caption ?? "";
    paramForm = renderParamForm($("param-form"), module?.params ?? []);
    update();
  });
  $("param-form").addEventListener("input", update);
}

const currentModule = () => data.modules.find((m) => String(m.id) === $("module-picker").value);

function update() {
  $("selected-count").textContent = fmt(
    ngettext("%(n)s server selected", "%(n)s servers selected", selected.size), { n: selected.size });
  const module = currentModule();
  $("run").disabled = !module || selected.size === 0;
  const preview = $("preview");
  preview.hidden = $("run").disabled;
  if (preview.hidden) return;
  const values = paramForm.read() ?? {};
  preview.replaceChildren(
    el("div", {}, el("strong", { textContent: gettext("Module") + ": " }), `${module.id} ${module.name}`),
    el("div", {}, el("strong", { textContent: gettext("Parameters") + ": " }), paramForm.describe(values) || "—"),
    el("div", {}, el("strong", { textContent: fmt(ngettext("%(n)s host", "%(n)s hosts", selected.size), { n: selected.size }) + ": " }),
      [...selected.values()].join(", ")),
  );
}

async function run(servers, params, module) {
  $("run-error").textContent = "";
  $("run").disabled = true; // one click, one job
  try {
    const job = await api("jobs/", { method: "POST", body: { module: module.id, servers, params } }).finally(update);
    view?.stop();
    view = new JobView($("results"), job.id, {
      onRerun: (hosts) => run(hosts, params, module),
    });
    if (job.error) $("run-error").textContent = job.error;
    await view.poll();
  } catch (error) {
    $("run-error").textContent = error.message;
    paramForm.showErrors(error.body);
  }
}

$("run").addEventListener("click", async () => {
  const module = currentModule();
  const params = paramForm.read();
  if (!module || params === null || selected.size === 0) return;
  if (selected.size > data.confirmAbove &&
      !window.confirm(fmt(ngettext("Run %(module)s on %(n)s host?", "Run %(module)s on %(n)s hosts?", selected.size),
        { module: module.name, n: selected.size }))) {
    return;
  }
  await run([...selected.values()], params, module);
});

$("clear").addEventListener("click", () => {
  for (const box of $("tree").querySelectorAll("input[type=checkbox]")) box.checked = false;
  selected.clear();
  view?.stop();
  $("results").replaceChildren();
  $("run-error").textContent = "";
  update();
});

buildTree();
buildModules();
update();
