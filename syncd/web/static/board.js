// syncd board: live numbers over server-sent events, and list filters. No dependencies.
(function () {
  "use strict";
  var STATE_LABEL = { ok: "✓ OK", lagging: "! Lagging", down: "✕ Down" };
  var LIVE_LABEL = { live: "live", offline: "offline — numbers may be stale", connecting: "connecting…",
                     editing: "live · list paused while you edit" };

  // Mirrors dur/ago/utc in syncd/web/board.py so server- and client-rendered text agree.
  function dur(s) {
    if (!s || s < 0) return "—";
    if (s < 90) return Math.round(s) + " s";
    if (s < 5400) return Math.round(s / 60) + " min";
    if (s < 172800) return Math.round(s / 3600) + " h";
    return Math.round(s / 86400) + " d";
  }
  function ago(s) {
    if (s === null || s === undefined) return "never";
    return s < 0.5 ? "just now" : dur(s) + " ago";
  }
  // The store keeps microseconds; not every browser parses more than milliseconds.
  function parseIso(iso) { return Date.parse(String(iso).replace(/(\.\d{3})\d+/, "$1")); }
  function utc(iso) {
    if (!iso) return "never";
    return new Date(parseIso(iso)).toISOString().replace("T", " ").slice(0, 19) + " UTC";
  }
  var FORMAT = { ago: ago, dur: dur, utc: utc, error: function (v) { return v || ""; },
                 plain: function (v) { return String(v); } };

  var version = document.body.dataset.version;
  var serverNow = parseIso(document.body.dataset.now);
  var busy = false;

  function live() { return document.getElementById("live"); }

  // Never swap the page under someone who is typing or has changed a form.
  function editing() {
    var root = live(), el = document.activeElement;
    if (el && root.contains(el) && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName)) return true;
    var fields = root.querySelectorAll("input:not([type=hidden]), select, textarea");
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.tagName === "SELECT") {
        var initial = 0;  // with no option marked selected, the browser starts on the first
        for (var j = 0; j < f.options.length; j++) if (f.options[j].defaultSelected) { initial = j; break; }
        if (f.selectedIndex !== initial) return true;
      } else if (f.value !== f.defaultValue) return true;
    }
    return false;
  }

  // The store changed: fetch this page again and replace its live part (no reload, no flash).
  function refresh() {
    if (editing()) { setLive("editing"); return; }  // the next tick tries again
    if (busy) return;
    busy = true;
    fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (resp) { return resp.ok ? resp.text() : null; })
      .then(function (html) {
        if (html === null || editing()) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.getElementById("live");
        if (!fresh) return;
        live().replaceWith(document.adoptNode(fresh));
        version = doc.body.dataset.version;
        applyFilter();
        relTimes();
      })
      .catch(function () { /* offline: the header says so; retried on the next tick */ })
      .then(function () { busy = false; });
  }

  function relTimes() {
    var times = document.querySelectorAll("time[data-rel]");
    for (var i = 0; i < times.length; i++) {
      times[i].textContent = ago((serverNow - parseIso(times[i].getAttribute("datetime"))) / 1000);
    }
  }

  function setLive(state) {
    var el = document.getElementById("live-state");
    el.dataset.state = state;
    el.textContent = LIVE_LABEL[state];
    document.body.classList.toggle("stale", state === "offline");
  }

  function onTick(ev) {
    var d = JSON.parse(ev.data);
    serverNow = parseIso(d.now);
    setLive("live");
    var asof = document.getElementById("asof");
    asof.setAttribute("datetime", d.now);
    asof.textContent = utc(d.now);
    var bad = Object.keys(d.channels).filter(function (n) { return d.channels[n].state !== "ok"; });
    var pill = document.getElementById("overall");
    pill.className = "pill " + (bad.length ? "bad" : "ok");
    pill.textContent = bad.length ? "Degraded: " + bad.map(function (n) { return n + " " + d.channels[n].state; }).join(", ")
                                  : "All channels OK";
    Object.keys(d.channels).forEach(function (name) {
      var ch = d.channels[name];
      var tile = document.querySelector('[data-channel="' + CSS.escape(name) + '"]');
      if (!tile) return;
      tile.dataset.state = ch.state;
      tile.className = tile.className.replace(/\bstate-\S+/, "state-" + ch.state);
      var badge = tile.querySelector("[data-role=state]");
      badge.className = "badge state-" + ch.state;
      badge.textContent = STATE_LABEL[ch.state] || ch.state;
      var fields = tile.querySelectorAll("[data-field]");
      for (var i = 0; i < fields.length; i++) {
        var f = fields[i];
        f.textContent = FORMAT[f.dataset.format || "plain"](ch[f.dataset.field]);
        if (f.dataset.field === "dead") f.classList.toggle("warn", ch.dead > 0);
      }
    });
    var totals = document.querySelectorAll("[data-total]");
    for (var i = 0; i < totals.length; i++) {
      var v = d.totals[totals[i].dataset.total];
      if (v === undefined) continue;
      totals[i].textContent = v;
      if (totals[i].classList.contains("count")) totals[i].classList.toggle("zero", !v);
    }
    relTimes();
    if (String(d.version) !== String(version)) refresh();
  }

  function applyFilter() {
    var input = document.querySelector("input[data-filter]");
    var table = input && document.querySelector(input.dataset.filter);
    if (!table) return;
    var q = input.value.trim().toLowerCase();
    var rows = table.tBodies[0].rows;
    for (var i = 0; i < rows.length; i++) rows[i].hidden = q !== "" && rows[i].dataset.search.indexOf(q) < 0;
  }

  document.addEventListener("input", function (ev) { if (ev.target.matches("input[data-filter]")) applyFilter(); });
  document.addEventListener("change", function (ev) {
    if (ev.target.matches("select[data-autosubmit]")) ev.target.form.requestSubmit();
  });

  if (window.EventSource) {
    var source = new EventSource("/board/events");
    source.addEventListener("tick", onTick);
    source.onerror = function () { setLive("offline"); };  // EventSource reconnects by itself
  }
})();
