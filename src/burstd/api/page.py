"""The status page: one HTML document with its style and script inline, nothing fetched from
elsewhere (clusters are often cut off from CDNs, and a status page must work when things are
bad). The script reads ``/status`` every 5 seconds and redraws; every value is set as text,
never as HTML, so nothing in a pod name or a reason can inject markup."""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>burstd</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2430; background: #fbfbfd; }
  h1 { font-size: 1.4em; margin: 0 0 .3em; }
  h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #e3e6ec;
           vertical-align: top; }
  th { background: #f0f2f6; font-weight: 600; }
  .pill { display: inline-block; padding: 0 .5em; border-radius: .8em; font-weight: 600; }
  .ok { background: #d8f3dc; color: #1b4332; } .bad { background: #ffd6d6; color: #7a0c0c; }
  .muted { color: #6b7280; } .num { text-align: right; font-variant-numeric: tabular-nums; }
  #summary span { margin-right: 1.2em; }
  #error { color: #7a0c0c; }
</style>
</head>
<body>
<h1>burstd</h1>
<div id="summary" class="muted">loading…</div>
<div id="error"></div>
<h2>Borrowed capacity</h2>
<table id="units"><thead><tr><th>unit</th><th>target</th><th>rule</th><th>phase</th>
<th class="num">GPUs</th><th>node</th><th class="num">age</th><th class="num">in phase</th>
<th class="num">cost/h</th></tr></thead><tbody></tbody></table>
<h2>Pending demand</h2>
<table id="rules"><thead><tr><th>rule</th><th class="num">pods</th><th class="num">GPUs</th>
<th>trigger</th><th>why</th><th>pending pods</th><th class="num">units</th>
<th class="num">GPUs held</th></tr></thead>
<tbody></tbody></table>
<h2>Targets</h2>
<table id="targets"><thead><tr><th>target</th><th>provider</th><th class="num">units</th>
<th class="num">GPUs</th><th>state</th><th>problems, last error</th></tr></thead>
<tbody></tbody></table>
<h2>Recent decisions</h2>
<table id="decisions"><thead><tr><th>time</th><th>rule</th><th>kind</th><th>units</th>
<th>reason</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const token = new URLSearchParams(location.hash.slice(1)).get("token");
function dur(s) {
  if (s === null || s === undefined) return "";
  s = Math.max(0, Math.round(s));
  const h = Math.floor(s / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
  return (h ? h + "h" : "") + (h || m ? m + "m" : "") + (h ? "" : r + "s");
}
function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls; return td;
}
function pill(row, ok, text) {
  const span = document.createElement("span");
  span.className = "pill " + (ok ? "ok" : "bad"); span.textContent = text;
  row.insertCell().appendChild(span);
}
function fill(id, items, draw, empty) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  if (!items.length) {
    const row = body.insertRow(); const td = cell(row, empty, "muted");
    td.colSpan = document.querySelectorAll("#" + id + " th").length; return;
  }
  for (const item of items) draw(body.insertRow(), item);
}
function render(s) {
  const summary = document.getElementById("summary");
  summary.replaceChildren();
  for (const [text, ok] of [
    [s.ready ? "ready" : "not ready: " + s.readiness, s.ready],
    [s.rules.valid ? "rules valid" : "rules invalid", s.rules.valid]]) {
    const span = document.createElement("span");
    span.className = "pill " + (ok ? "ok" : "bad"); span.textContent = text;
    summary.appendChild(span);
  }
  for (const text of [
    "rules " + (s.rules.digest || "?") + (s.rules.dry_run ? " (dry run)" : ""),
    "cost " + s.cost.per_hour.toFixed(2) + "/h",
    "so far " + s.cost.so_far.toFixed(2),
    "borrowed " + s.budget.gpus + " GPU"
      + (s.budget.max_gpus !== null ? " of " + s.budget.max_gpus : ""),
    "updated " + new Date(s.now * 1000).toLocaleTimeString()]) {
    const span = document.createElement("span"); span.textContent = text; summary.appendChild(span);
  }
  fill("units", s.units, (r, u) => {
    cell(r, u.id); cell(r, u.target); cell(r, u.rule); cell(r, u.phase); cell(r, u.gpus, "num");
    cell(r, u.node); cell(r, dur(u.age_s), "num"); cell(r, dur(u.phase_age_s), "num");
    cell(r, u.cost_per_hour.toFixed(2), "num");
  }, "nothing borrowed");
  fill("rules", s.rule_status, (r, x) => {
    cell(r, x.name); cell(r, x.pending_pods, "num"); cell(r, x.pending_gpus.toFixed(2), "num");
    pill(r, !x.fired, x.fired ? "fired" : "quiet"); cell(r, x.why);
    cell(r, x.pending.join(", ") + (x.pending_pods > x.pending.length ? ", …" : ""), "muted");
    cell(r, x.units, "num"); cell(r, x.gpus, "num");
  }, "no rules");
  fill("targets", s.targets, (r, t) => {
    cell(r, t.name); cell(r, t.provider); cell(r, t.units, "num"); cell(r, t.gpus, "num");
    const state = t.held_back ? "held back" : t.in_backoff ? "backoff " + dur(t.backoff_left_s)
      : t.problems.length ? "problem" : "ok";
    pill(r, state === "ok", state);
    cell(r, [t.held_back, ...t.problems, t.last_error].filter(x => x).join("; "), "muted");
  }, "no targets");
  fill("decisions", s.decisions, (r, d) => {
    cell(r, new Date(d.at * 1000).toLocaleTimeString()); cell(r, d.rule);
    cell(r, d.kind + (d.acted ? "" : " (recorded)")); cell(r, d.units.join(", "));
    cell(r, d.reason);
  }, "no decisions yet");
}
async function refresh() {
  try {
    const r = await fetch("status", {headers: token ? {Authorization: "Bearer " + token} : {},
                                     cache: "no-store"});
    if (!r.ok) throw new Error("/status answered " + r.status);
    render(await r.json());
    document.getElementById("error").textContent = "";
  } catch (e) {
    document.getElementById("error").textContent = "cannot load status: " + e.message;
  }
}
refresh();
setInterval(refresh, 5000);
</script>
</body>
</html>
"""
