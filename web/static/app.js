/* osmon dashboard: live refresh from the JSON API, a sortable host table, the tag filter.
 *
 * Loaded as a file (the Content-Security-Policy forbids inline script).  Pages describe what
 * to refresh with data attributes; host data is only ever written with textContent, never as
 * markup.  Formats mirror web/formats.py so a refreshed value looks like the server's.
 *   body[data-api]          JSON to poll every data-interval seconds
 *   [data-bind=path]        element text = format(value at path), data-format names the format
 *                           (data-item: the path of the item shown after it, e.g. a mount)
 *   [data-level=path]       element class level-<ok|warning|critical>
 *   [data-show-if=path]     element shown only when the value is true
 *   table[data-rows=path]   tbody rebuilt from an array; th[data-key|data-format|data-level|
 *                           data-item|data-since (the time an "ago" column counts from)]
 *   img[data-chart]         reloaded (with &v=<newest sample>) when the value at the path
 *                           body[data-chart-key] (the newest sample's ts) moves away from
 *                           body[data-chart-ts] (its value when the page was made)
 *   [data-ts]               "42 s ago" text kept current between refreshes (data-ts-from:
 *                           the path of the timestamp to follow on refresh)
 *   th[data-format=spark]   the column's cells are sparklines, drawn from {cpu, memory:
 *                           [[t, percent], ...], label} (web/sparklines.py draws the same)
 */
(function () {
  "use strict";

  var STATUSES = ["ok", "stale", "warning", "critical", "down"];
  var DASH = "\u2013";
  var body = document.body;
  var offsetMs = 0;           // server clock minus browser clock
  var lastSampleTs = null;    // newest sample the charts show
  var sortState = null;       // {key, dir} of the sortable table, once the user picked one

  body.classList.add("js");

  // -- formats (keep in step with web/formats.py) -------------------------------------------
  function num(v) { return (typeof v === "number" && isFinite(v)) ? v : null; }
  function scaled(v, base, units) {
    v = num(v);
    if (v === null) { return DASH; }
    var i = 0;
    while (Math.abs(v) >= base && i < units.length - 1) { v /= base; i += 1; }
    return i === 0 ? Math.trunc(v) + " " + units[0] : v.toFixed(1) + " " + units[i];
  }
  function ago(seconds) {
    var s = num(seconds);
    if (s === null) { return "never"; }
    s = Math.max(0, Math.floor(s));
    if (s < 120) { return s + " s ago"; }
    if (s < 7200) { return Math.floor(s / 60) + " min ago"; }
    if (s < 172800) { return Math.floor(s / 3600) + " h ago"; }
    return Math.floor(s / 86400) + " d ago";
  }
  var FORMATS = {
    percent: function (v) { return num(v) === null ? DASH : v.toFixed(1) + " %"; },
    size: function (v) { return scaled(v, 1024, ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]); },
    rate: function (v) { return scaled(v, 1000, ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"]); },
    number: function (v) { return num(v) === null ? DASH : v.toFixed(2); },
    seconds: function (v) { return num(v) === null ? DASH : v.toFixed(2) + " s"; },
    integer: function (v) { return num(v) === null ? DASH : String(Math.trunc(v)); },
    ago: ago,
    when: function (v) {
      return (typeof v === "string" && v) ? v.replace("T", " ").replace("Z", " UTC") : DASH;
    },
    duration: function (v) {
      if (num(v) === null) { return DASH; }
      var m = Math.floor(v / 60), d = Math.floor(m / 1440), h = Math.floor(m / 60) % 24;
      if (d) { return d + " d " + h + " h"; }
      return h ? h + " h " + (m % 60) + " min" : (m % 60) + " min";
    },
    items: function (v) { return (Array.isArray(v) && v.length) ? v.join("; ") : DASH; },
    reasons: function (v) {
      return (Array.isArray(v) && v.length) ? v.join("; ") : "Nothing wrong right now.";
    },
    text: function (v) {
      if (v === null || v === undefined || v === "") { return DASH; }
      return Array.isArray(v) ? v.join(" ") : String(v);
    },
    silence: function (v) {
      if (!v || typeof v !== "object") { return DASH; }
      return "until " + FORMATS.when(v.until) + " by " + v.author + ": " + v.reason;
    },
    ack: function (v) {
      if (!v || typeof v !== "object") { return DASH; }
      return v.author + ", " + FORMATS.when(v.ts) + ": " + v.reason;
    }
  };

  // -- sparklines: a host's last hour (keep in step with web/sparklines.py) ------------------
  var SVG_NS = "http://www.w3.org/2000/svg";
  var SPARK = {width: 100, height: 24, window: 3600, gap: 750, metrics: ["cpu", "memory"]};
  var sparkNow = Date.parse(body.dataset.generated) / 1000;  // the data's "now"

  function sparkPath(points, now) {
    var start = now - SPARK.window, out = [], piece = null, previous = null;
    (Array.isArray(points) ? points : []).forEach(function (p) {
      var t = num(p[0]), v = num(p[1]);
      if (t === null || v === null) { previous = null; return; }
      var x = ((t - start) / SPARK.window * SPARK.width).toFixed(1);
      var y = (SPARK.height - 1 - Math.max(0, Math.min(100, v)) / 100 *
               (SPARK.height - 2)).toFixed(1);
      if (previous === null || t - previous > SPARK.gap) { piece = []; out.push(piece); }
      piece.push(x + " " + y);
      previous = t;
    });
    return out.map(function (p) {
      return "M" + p[0] + " " + (p.length > 1 ? p.slice(1).map(function (xy) {
        return "L" + xy;
      }).join(" ") : "h2");
    }).join(" ");
  }

  function sparkSvg(value) {
    var svg = document.createElementNS(SVG_NS, "svg");
    var label = (value && typeof value.label === "string") ? value.label : "";
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 " + SPARK.width + " " + SPARK.height);
    svg.setAttribute("width", SPARK.width);
    svg.setAttribute("height", SPARK.height);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    var title = document.createElementNS(SVG_NS, "title");
    title.textContent = label;
    svg.appendChild(title);
    SPARK.metrics.forEach(function (metric) {
      var path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("class", "spark-" + metric);
      path.setAttribute("d", sparkPath(value ? value[metric] : null, sparkNow));
      svg.appendChild(path);
    });
    return svg;
  }

  function get(obj, path) {
    var parts = path.split(".");
    for (var i = 0; i < parts.length; i += 1) {
      if (obj === null || typeof obj !== "object") { return undefined; }
      obj = obj[parts[i]];
    }
    return obj;
  }

  function badge(kind, value) {
    var span = document.createElement("span");
    var text = (value === null || value === undefined) ? "" : String(value);
    span.className = "badge " + kind + "-" + text.toLowerCase().replace(/[^a-z]/g, "");
    span.textContent = text;
    return span;
  }

  /* Put `value` in `el` in the given format; `row` gives formats that need more fields, and
   * `item` (a mount point, a resource) follows the value as a label of its own. */
  function fill(el, format, value, row, item) {
    while (el.firstChild) { el.removeChild(el.firstChild); }
    if (format === "status" || format === "level" || format === "check") {
      el.appendChild(badge(format, value));
      if (format === "status" && row && row.silenced) {  // a host under a silence
        el.appendChild(document.createTextNode(" "));
        el.appendChild(badge("status", "silenced"));
      }
    } else if (format === "event") {  // a history line, and whether a silence held it
      el.textContent = FORMATS.text(value);
      if (row && row.silenced) {
        var held = document.createElement("span");
        held.className = "mount";
        held.textContent = "silenced";
        el.appendChild(document.createTextNode(" "));
        el.appendChild(held);
      }
    } else if (format === "when") {  // may wrap after the day, never inside it
      var stamp = FORMATS.when(value), cut = stamp.indexOf(" ");
      var day = document.createElement("span");
      day.className = "nobr";
      day.textContent = cut < 0 ? stamp : stamp.slice(0, cut);
      el.appendChild(day);
      if (cut >= 0) { el.appendChild(document.createTextNode(stamp.slice(cut))); }
    } else if (format === "spark") {
      el.appendChild(sparkSvg(value));
    } else if (format === "hostlink" && value) {
      var a = document.createElement("a");
      a.href = row.url || (body.dataset.root || "") + "/hosts/" + encodeURIComponent(String(value));
      a.textContent = String(value);
      el.appendChild(a);
    } else {
      el.textContent = (FORMATS[format] || FORMATS.text)(value);
    }
    if (typeof item === "string" && item && value !== null && value !== undefined) {
      var m = document.createElement("span");
      m.className = "mount";
      m.textContent = item;
      el.appendChild(document.createTextNode(" "));
      el.appendChild(m);
    }
  }

  function setLevel(el, level) {
    el.classList.remove("level-ok", "level-warning", "level-critical");
    if (typeof level === "string" && /^[a-z]+$/.test(level)) { el.classList.add("level-" + level); }
  }

  /* Another family's finding after a cell's value ("/var full in about 5 h" after the fullest
   * disk), as cells.py writes it. */
  function addMark(el, text, level) {
    if (typeof text !== "string" || !text) { return; }
    var m = document.createElement("span");
    m.className = "mark";
    setLevel(m, typeof level === "string" ? level : "ok");
    m.textContent = text;
    el.appendChild(document.createTextNode(" "));
    el.appendChild(m);
  }

  // -- tables ----------------------------------------------------------------------------------
  function columns(table) {
    return Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
      return {key: th.dataset.key, format: th.dataset.format || "text", level: th.dataset.level,
              item: th.dataset.item, mark: th.dataset.mark, markLevel: th.dataset.markLevel,
              since: th.dataset.since};
    });
  }

  function sortValue(format, value) {
    if (format === "status") { return STATUSES.indexOf(value); }
    if (value === null || value === undefined) { return ""; }
    return Array.isArray(value) ? value.join(" ") : value;
  }

  function rebuild(table, rows) {
    var cols = columns(table);
    var tbody = table.tBodies[0];
    var fresh = document.createElement("tbody");
    rows.forEach(function (row) {
      var tr = document.createElement("tr");
      cols.forEach(function (col) {
        var td = document.createElement("td");
        var value = get(row, col.key);
        fill(td, col.format, value, row, col.item ? get(row, col.item) : null);
        td.dataset.sort = String(sortValue(col.format, value));
        if (["percent", "size", "rate", "number", "seconds", "integer", "ago", "duration"]
            .indexOf(col.format) >= 0) { td.classList.add("num"); }
        if (col.level) { setLevel(td, get(row, col.level)); }
        if (col.mark) { addMark(td, get(row, col.mark), get(row, col.markLevel || "")); }
        var since = col.since ? get(row, col.since) : row.ts;  // when an "ago" counts from
        if (col.format === "ago" && since) { td.dataset.ts = since; }
        if (col.format === "spark") { td.className = "sparkline"; }
        tr.appendChild(td);
      });
      fresh.appendChild(tr);
    });
    if (!rows.length) {
      var tr = document.createElement("tr");
      var td = document.createElement("td");
      td.colSpan = cols.length;
      td.className = "empty";
      td.textContent = table.dataset.empty || "Nothing to show.";
      tr.appendChild(td);
      fresh.appendChild(tr);
    }
    table.replaceChild(fresh, tbody);
    if (table.classList.contains("sortable") && sortState) { sortTable(table); }
  }

  function compare(a, b) {
    var x = a.dataset.sort, y = b.dataset.sort;
    if (x === "" || y === "") { return (x === "") - (y === ""); }  // blanks last, both ways
    var nx = Number(x), ny = Number(y);
    if (!isNaN(nx) && !isNaN(ny)) { return nx - ny; }
    return x.localeCompare(y);
  }

  function sortTable(table) {
    var index = -1;
    Array.prototype.forEach.call(table.querySelectorAll("thead th"), function (th, i) {
      if (th.dataset.key === sortState.key) {
        index = i;
        th.setAttribute("aria-sort", sortState.dir > 0 ? "ascending" : "descending");
      } else {
        th.removeAttribute("aria-sort");
      }
    });
    if (index < 0) { return; }
    var tbody = table.tBodies[0];
    var rows = Array.prototype.filter.call(tbody.rows, function (r) { return r.cells.length > 1; });
    rows.sort(function (a, b) {
      var x = a.cells[index], y = b.cells[index];
      if (x.dataset.sort === "" || y.dataset.sort === "") { return compare(x, y); }
      return sortState.dir * compare(x, y) || compare(a.cells[1], b.cells[1]);
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    table.querySelectorAll("th button.sort").forEach(function (button) {
      button.addEventListener("click", function () {
        var key = button.parentNode.dataset.key;
        // A first click on a column sorts worst/biggest first: what an admin looks for.
        var dir = (sortState && sortState.key === key) ? -sortState.dir
          : (key === "name" || key === "tags" ? 1 : -1);
        sortState = {key: key, dir: dir};
        sortTable(table);
      });
    });
  });

  // -- the tag filter: change it and the list follows, without a submit button ------------------
  function autosubmit(select) {
    select.addEventListener("change", function () { select.form.submit(); });
  }
  var tagFilter = document.getElementById("tag-filter");
  if (tagFilter) {
    tagFilter.addEventListener("change", function () {
      var url = new URL(window.location.href);
      if (tagFilter.value) { url.searchParams.set("tag", tagFilter.value); }
      else { url.searchParams.delete("tag"); }
      window.history.replaceState(null, "", url.pathname + url.search);
      var api = new URL(body.dataset.api, window.location.href);
      if (tagFilter.value) { api.searchParams.set("tag", tagFilter.value); }
      else { api.searchParams.delete("tag"); }
      body.dataset.api = api.pathname + api.search;
      refresh();
    });
  }
  document.querySelectorAll("select[data-autosubmit]").forEach(autosubmit);

  // -- live refresh ---------------------------------------------------------------------------
  function tick() {
    var now = Date.now() + offsetMs;
    document.querySelectorAll("[data-ts]").forEach(function (el) {
      var t = Date.parse(el.dataset.ts);
      if (!isNaN(t)) { el.textContent = ago((now - t) / 1000); }
    });
  }

  function apply(data) {
    var generated = Date.parse(data.generated);
    if (!isNaN(generated)) { offsetMs = generated - Date.now(); sparkNow = generated / 1000; }
    document.querySelectorAll("[data-bind]").forEach(function (el) {
      var value = get(data, el.dataset.bind);
      if (value === undefined) { return; }
      fill(el, el.dataset.format || "text", value, {},
           el.dataset.item ? get(data, el.dataset.item) : null);
      if (el.dataset.level) { setLevel(el, get(data, el.dataset.level)); }
      if (el.dataset.tsFrom) {
        var stamp = get(data, el.dataset.tsFrom);
        if (stamp) { el.dataset.ts = stamp; } else { delete el.dataset.ts; }
      }
    });
    document.querySelectorAll("[data-show-if]").forEach(function (el) {
      var value = get(data, el.dataset.showIf);
      if (value !== undefined) { el.hidden = !value; }
    });
    document.querySelectorAll("table[data-rows]").forEach(function (table) {
      var rows = get(data, table.dataset.rows);
      if (Array.isArray(rows)) { rebuild(table, rows); }
    });
    var ts = body.dataset.chartKey ? get(data, body.dataset.chartKey) : null;
    if (ts && ts !== lastSampleTs) {
      document.querySelectorAll("img[data-chart]").forEach(function (img) {
        img.src = img.dataset.chart + "&v=" + encodeURIComponent(ts);
      });
    }
    if (ts) { lastSampleTs = ts; }
    tick();
  }

  var stateEl = document.getElementById("refresh-state");
  function say(text) { if (stateEl) { stateEl.textContent = text; } }

  var timer = null;
  function schedule() {
    var seconds = Math.max(5, Number(body.dataset.interval) || 60);
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, seconds * 1000);
  }

  function refresh() {
    if (document.hidden) { schedule(); return; }
    fetch(body.dataset.api, {credentials: "same-origin", cache: "no-store",
                             headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (response.status === 401) { throw new Error("log in again to see live data"); }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (data) { apply(data); say(""); })
      .catch(function (err) { say("Live update failed (" + err.message + "); retrying."); })
      .then(schedule);
  }

  var initial = Date.parse(body.dataset.generated);
  if (!isNaN(initial)) { offsetMs = initial - Date.now(); }
  if (body.dataset.chartTs) { lastSampleTs = body.dataset.chartTs; }
  window.setInterval(tick, 5000);
  if (body.dataset.api) {
    schedule();
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden) { refresh(); }
    });
  }
}());
