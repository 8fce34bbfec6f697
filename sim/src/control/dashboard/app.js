// avs-sim dashboard: plain JavaScript over the control API, no framework.
//
// - The journal timeline is a server-sent event stream
//   (/api/journal/stream) starting with the newest MAX_ROWS entries,
//   reopened when a filter changes.
// - A second, unfiltered stream of new entries only (tail=0) says when
//   something changed; the other panels then reload their JSON (at most
//   a few times a second), so nothing is polled on a timer.
// - Everything shown is set with textContent: journal bodies are data,
//   never markup.
"use strict";

/** Rows kept in the timeline; older ones are dropped from the page. */
const MAX_ROWS = 500;
/** Shortest gap between two reloads of the panels, in milliseconds. */
const REFRESH_GAP_MS = 250;

const $ = (id) => document.getElementById(id);

/** An element with a class and text, or children. */
function el(tag, cls, content) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (Array.isArray(content)) content.forEach((c) => c && e.append(c));
  else if (content !== undefined && content !== null) e.textContent = String(content);
  return e;
}

async function getJson(path) {
  const resp = await fetch(path, { headers: { accept: "application/json" } });
  const body = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error((body && body.error) || `${resp.status} ${resp.statusText}`);
  return body;
}

function setStatus(text, ok) {
  const s = $("status");
  s.textContent = text;
  s.className = ok ? "pill ok" : "pill bad";
}

/** "12:34:56.789" from an RFC 3339 time. */
function clockTime(ts) {
  const m = /T(\d\d:\d\d:\d\d(?:\.\d{1,3})?)/.exec(ts || "");
  return m ? m[1] : ts || "";
}

// ---------------------------------------------------------------- timeline

let timelineSource = null;
let rowCount = 0;

/** The event or directive name an AVS entry carries, if any. */
function headerName(entry) {
  const b = entry.body || {};
  const h = (b.event && b.event.header) || (b.directive && b.directive.header) || b.header;
  return h && h.namespace && h.name ? `${h.namespace}.${h.name}` : "";
}

function timelineRow(entry) {
  const details = el("details", `entry face-${entry.face} kind-${entry.kind}`);
  details.dataset.id = entry.id;
  const name = headerName(entry);
  details.append(
    el("summary", null, [
      el("span", "id", `#${entry.id}`),
      el("span", "time", clockTime(entry.ts)),
      el("span", `face badge face-${entry.face}`, entry.face),
      el("span", "kind", entry.kind.replace(/_/g, " ")),
      el("span", "device", entry.device || ""),
      el("span", "summary", name && !entry.summary.includes(name) ? `${name} · ${entry.summary}` : entry.summary),
    ]),
  );
  const pre = el("pre", "json");
  // Rendered on first open: a long timeline stays cheap.
  details.addEventListener("toggle", () => {
    if (details.open && !pre.textContent) pre.textContent = JSON.stringify(entry, null, 2);
  });
  details.append(pre);
  return details;
}

function addEntry(entry) {
  const list = $("timeline");
  list.append(timelineRow(entry));
  rowCount++;
  while (rowCount > MAX_ROWS && list.firstChild) {
    list.firstChild.remove();
    rowCount--;
  }
  $("timeline-count").textContent = `${rowCount} shown, newest #${entry.id}`;
  if ($("follow").checked) list.scrollTop = list.scrollHeight;
}

function openTimeline() {
  if (timelineSource) timelineSource.close();
  $("timeline").replaceChildren();
  rowCount = 0;
  const params = new URLSearchParams({ tail: MAX_ROWS });
  if ($("filter-device").value) params.set("device", $("filter-device").value);
  if ($("filter-face").value) params.set("face", $("filter-face").value);
  const source = new EventSource(`/api/journal/stream?${params}`);
  source.addEventListener("entry", (e) => addEntry(JSON.parse(e.data)));
  source.onopen = () => setStatus("live", true);
  source.onerror = () => setStatus("disconnected: retrying…", false);
  timelineSource = source;
}

// ---------------------------------------------------------------- devices

const VERDICT_CLASS = { pass: "ok", fail: "bad", pending: "warn", not_exercised: "none" };

function ruleChip(device, rule) {
  const chip = el("button", `chip ${VERDICT_CLASS[rule.verdict] || "none"}`, rule.rule);
  chip.type = "button";
  chip.title = `${rule.description} — ${rule.verdict.replace(/_/g, " ")}`;
  chip.addEventListener("click", () => showRule(device, rule));
  return chip;
}

/** A rule's verdict, detail and evidence entries, under the table. */
async function showRule(device, rule) {
  const box = $("rule-detail");
  box.hidden = false;
  const evidence = el("div", "evidence");
  const parts = [
    el("h3", null, `${device} · ${rule.rule}: ${rule.verdict.replace(/_/g, " ")}`),
    el("p", null, rule.description),
    rule.detail ? el("p", "detail", rule.detail) : null,
    el("p", "muted", rule.evidence.length ? `evidence: journal entries ${rule.evidence.map((i) => `#${i}`).join(", ")}` : "no evidence recorded yet"),
    evidence,
  ];
  box.replaceChildren(...parts.filter(Boolean));
  for (const id of rule.evidence.slice(0, 5)) {
    try {
      const page = await getJson(`/api/journal?since=${id - 1}&limit=1`);
      const e = page.entries[0];
      if (e && e.id === id) evidence.append(timelineRow(e));
      else evidence.append(el("p", "muted", `#${id} is no longer held by the journal`));
    } catch (err) {
      evidence.append(el("p", "bad-text", String(err.message || err)));
    }
  }
}

/** A table row of one cell spanning `columns`. */
function wideRow(cls, columns, content) {
  const td = el("td", null, content);
  td.colSpan = columns;
  return el("tr", cls, [td]);
}

/** "8 pass · 1 fail · 2 not exercised" */
function tally(rules) {
  const counts = {};
  rules.forEach((r) => (counts[r.verdict] = (counts[r.verdict] || 0) + 1));
  return Object.entries(counts)
    .map(([v, n]) => `${n} ${v.replace(/_/g, " ")}`)
    .join(" · ");
}

/** Two rows per device: what it is, then its conformance rules. */
async function deviceRows(d) {
  let verdict = el("span", "muted", "…");
  let rules = null;
  try {
    const c = await getJson(`/api/devices/${encodeURIComponent(d.id)}/conformance`);
    verdict = el("span", `pill ${c.passed ? "ok" : "bad"}`, `${c.passed ? "conforms" : "breaks a rule"}: ${tally(c.rules)}`);
    rules = el("div", "chips", c.rules.map((r) => ruleChip(d.id, r)));
  } catch (err) {
    verdict = el("span", "bad-text", String(err.message || err));
  }
  const last = d.last_event ? `${d.last_event.name} at ${clockTime(d.last_event.at)}` : "—";
  const tr = el("tr", "device", [
    el("td", "device-id", d.id),
    el("td", null, d.region || "default"),
    el("td", null, d.firmware || "—"),
    el("td", null, [el("span", `pill ${d.connected ? "ok" : "bad"}`, d.connected ? "yes" : "no")]),
    el("td", null, last),
    el("td", null, [verdict]),
  ]);
  tr.dataset.device = d.id;
  return [tr, wideRow("rules", 6, [rules])];
}

/** Keep a select's options equal to `ids`, keeping the choice if it is still there. */
function syncOptions(select, ids, keepAll) {
  const chosen = select.value;
  const options = keepAll ? [el("option", null, "all")] : [];
  if (keepAll) options[0].value = "";
  ids.forEach((id) => options.push(el("option", null, id)));
  select.replaceChildren(...options);
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
}

async function loadDevices() {
  const list = await getJson("/api/devices");
  const rows = (await Promise.all(list.map(deviceRows))).flat();
  const body = $("devices").tBodies[0];
  if (rows.length) body.replaceChildren(...rows);
  else body.replaceChildren(wideRow("empty", 6, "No device yet: start one with target/release/avs-sim device --url https://127.0.0.1:8443 --token kitchen --ca certs/ca.pem (the AVS URL and CA that serve printed)"));
  const ids = list.map((d) => d.id);
  syncOptions($("filter-device"), ids, true);
  syncOptions($("composer-device"), ids, false);
}

// ---------------------------------------------------------------- composer

const PRESETS = {
  ReportSoftwareInfo: { namespace: "System", name: "ReportSoftwareInfo", payload: {} },
  ResetUserInactivity: { namespace: "System", name: "ResetUserInactivity", payload: {} },
  SetEndpoint: { namespace: "System", name: "SetEndpoint", payload: { endpoint: `https://${location.hostname}:8443` } },
  directive: {
    directive: { header: { namespace: "System", name: "ReportSoftwareInfo" }, payload: {} },
  },
  raw: { raw: "not a directive: the device should answer with ExceptionEncountered" },
};

function fillPreset() {
  $("composer-body").value = JSON.stringify(PRESETS[$("composer-preset").value], null, 2);
}

async function push(event) {
  event.preventDefault();
  const out = $("composer-result");
  const device = $("composer-device").value;
  if (!device) {
    out.className = "result bad-text";
    out.textContent = "No device to push to: connect one first.";
    return;
  }
  try {
    const resp = await fetch(`/api/devices/${encodeURIComponent(device)}/directives`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: $("composer-body").value,
    });
    const body = await resp.json().catch(() => ({}));
    out.className = resp.ok ? "result ok-text" : "result bad-text";
    out.textContent = `${resp.status} ${resp.ok ? "accepted" : "refused"}: ${JSON.stringify(body)}`;
  } catch (err) {
    out.className = "result bad-text";
    out.textContent = String(err.message || err);
  }
}

// ---------------------------------------------------------------- faults

async function loadFaults() {
  const faults = await getJson("/api/faults");
  const body = $("faults").tBodies[0];
  if (!faults.length) {
    body.replaceChildren(wideRow("empty", 5, "No fault rule is active."));
    return;
  }
  body.replaceChildren(
    ...faults.map((f) => {
      const clear = el("button", "danger", "Clear");
      clear.type = "button";
      clear.addEventListener("click", async () => {
        const resp = await fetch(`/api/faults/${encodeURIComponent(f.id)}`, { method: "DELETE" });
        if (!resp.ok) alert(`Could not clear ${f.id}: ${resp.status}`);
        refreshSoon();
      });
      const times = f.times ? ` (max ${f.times})` : "";
      return el("tr", null, [
        el("td", "device-id", f.id),
        el("td", "code", JSON.stringify(f.when)),
        el("td", "code", JSON.stringify(f.then)),
        el("td", null, `${f.seen} / ${f.fired}${times}`),
        el("td", null, [clear]),
      ]);
    }),
  );
}

// ---------------------------------------------------------------- smart home

async function loadSmartHome() {
  const { users } = await getJson("/api/smarthome/users");
  const box = $("smarthome");
  if (!users.length) {
    box.replaceChildren(el("p", "empty", "No user is declared ([[users]] in the config)."));
    return;
  }
  const blocks = await Promise.all(
    users.map(async (u) => {
      const home = await getJson(`/api/smarthome/users/${encodeURIComponent(u.user)}/endpoints`);
      const endpoints = home.endpoints.map((e) =>
        el("li", null, [
          el("strong", null, e.friendlyName || e.endpointId),
          el("span", "muted", ` ${e.endpointId} · ${(e.displayCategories || []).join(", ")} · from ${e.source}`),
          e.state && e.state.length ? el("div", "code", JSON.stringify(e.state)) : null,
        ]),
      );
      return el("div", "block", [
        el("h3", null, [
          el("span", null, `${u.user} `),
          el("span", "muted", `skill ${u.skill} `),
          el("span", `pill ${u.enabled ? "ok" : "bad"}`, u.enabled ? "enabled" : "disabled"),
        ]),
        endpoints.length ? el("ul", null, endpoints) : el("p", "muted", "No endpoint yet (run Discover or post AddOrUpdateReport)."),
        home.pending && home.pending.length ? el("p", "muted", `${home.pending.length} directive(s) waiting for a deferred answer`) : null,
      ]);
    }),
  );
  box.replaceChildren(...blocks);
}

// ---------------------------------------------------------------- SNS

/** The newest attempts shown. */
const SNS_ATTEMPTS_SHOWN = 30;

async function loadSns() {
  const [{ topics }, { deliveries }, { dead_letters: dead }] = await Promise.all([
    getJson("/api/sns/topics"),
    getJson("/api/sns/deliveries"),
    getJson("/api/sns/dead-letters"),
  ]);
  const box = $("sns");
  if (!topics.length && !deliveries.length && !dead.length) {
    box.replaceChildren(el("p", "empty", "No topic yet."));
    return;
  }
  const topicBlocks = topics.map((t) =>
    el("div", "block", [
      el("h3", null, t.name),
      el(
        "ul",
        null,
        t.subscriptions.map((s) =>
          el("li", null, [
            el("span", `pill ${s.pending ? "warn" : "ok"}`, s.pending ? "pending" : "confirmed"),
            el("span", null, ` ${s.endpoint}`),
          ]),
        ),
      ),
    ]),
  );
  const attempts = deliveries.slice(-SNS_ATTEMPTS_SHOWN).reverse().map((a) =>
    el("tr", null, [
      el("td", null, clockTime(a.time)),
      el("td", null, a.endpoint || ""),
      el("td", null, String(a.attempt ?? "")),
      el("td", null, [el("span", `pill ${a.delivered ? "ok" : "bad"}`, a.status ? `HTTP ${a.status}` : a.delivered ? "delivered" : "failed")]),
      el("td", "muted", a.error || ""),
    ]),
  );
  const letters = dead.map((d) =>
    el("li", null, [el("strong", null, d.reason || "given up"), el("span", "muted", ` ${d.endpoint} · ${d.attempts} attempts · ${d.last_error || ""}`)]),
  );
  box.replaceChildren(
    ...topicBlocks,
    el("h3", null, `Delivery attempts (${deliveries.length})`),
    attempts.length
      ? el("table", null, [el("thead", null, [el("tr", null, ["Time", "Endpoint", "Attempt", "Status", "Error"].map((h) => el("th", null, h)))]), el("tbody", null, attempts)])
      : el("p", "muted", "None yet."),
    el("h3", null, `Dead letters (${dead.length})`),
    letters.length ? el("ul", null, letters) : el("p", "muted", "None."),
  );
}

// ---------------------------------------------------------------- refresh

let refreshTimer = null;
let refreshing = false;

async function refreshAll() {
  refreshing = true;
  const loads = [loadDevices(), loadFaults(), loadSmartHome(), loadSns()];
  const results = await Promise.allSettled(loads);
  const failed = results.find((r) => r.status === "rejected");
  if (failed) setStatus(`error: ${failed.reason.message || failed.reason}`, false);
  refreshing = false;
}

/** Reload the panels soon, once for a burst of changes. */
function refreshSoon() {
  if (refreshTimer !== null) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    if (refreshing) return refreshSoon();
    await refreshAll();
  }, REFRESH_GAP_MS);
}

/** An unfiltered stream of new entries only: each means a panel may have changed. */
function watchChanges() {
  const changes = new EventSource("/api/journal/stream?tail=0");
  changes.addEventListener("entry", refreshSoon);
}

window.addEventListener("DOMContentLoaded", async () => {
  $("composer-preset").addEventListener("change", fillPreset);
  $("composer").addEventListener("submit", push);
  $("filter-device").addEventListener("change", openTimeline);
  $("filter-face").addEventListener("change", openTimeline);
  $("clear-timeline").addEventListener("click", () => {
    $("timeline").replaceChildren();
    rowCount = 0;
  });
  fillPreset();
  openTimeline();
  watchChanges();
  await refreshAll();
});
