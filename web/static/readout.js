/* osmon chart readout: the time and the values under the pointer, on charts shown as <img>.
 *
 * A chart is an SVG image where no script runs (and the Content-Security-Policy allows only
 * our own files), so this runs on the page: on the first hover it reads the chart's SVG again
 * (from the browser's cache) and takes the JSON of its <metadata id="osmon-readout">, written
 * by collector/views/chart_readout.py: the time window, where it lies on the image, and the
 * very points drawn.  The pointer's x gives a time on the chart's axis; the readout shows the
 * nearest drawn point of each line.  Labels come from hosts: they are only ever text
 * (textContent), and colours are used only when they are plain #rrggbb.
 */
(function () {
  "use strict";

  var MAX_LINES = 8;          // a fleet chart of 200 hosts lists the highest 8 and a count
  var COLOR = /^#[0-9A-Fa-f]{6}$/;
  var loaded = {};            // chart URL -> Promise of its readout data (null: none)
  var METADATA = /<metadata id="osmon-readout">([^<]*)<\/metadata>/;
  var ENTITIES = {amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'"};

  function unescapeXml(text) {
    return text.replace(/&(#x[0-9A-Fa-f]+|#[0-9]+|[a-z]+);/g, function (all, name) {
      if (name[0] !== "#") { return ENTITIES.hasOwnProperty(name) ? ENTITIES[name] : all; }
      var code = name[1] === "x" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return String.fromCodePoint(code);
    });
  }

  function num(v) { return (typeof v === "number" && isFinite(v)) ? v : null; }

  function scaled(v, base, prefixes, suffix) {
    var size = Math.abs(v), i = 0;
    while (size >= base && i < prefixes.length - 1) { size /= base; i += 1; }
    return (v < 0 ? "-" : "") + Number(size.toPrecision(3)) + " " + prefixes[i] + suffix;
  }

  /* As the chart's own axis reads (collector/views/charts.py value_formatter). */
  function formatValue(unit, v) {
    if (num(v) === null) { return "\u2013"; }
    if (unit === "percent") { return v.toFixed(1) + " %"; }
    if (unit === "bytes/s") { return scaled(v, 1000, ["", "k", "M", "G", "T"], "B/s"); }
    if (unit === "bytes") { return scaled(v, 1024, ["", "Ki", "Mi", "Gi", "Ti"], "B"); }
    if (unit === "seconds") { return Number(v.toPrecision(3)) + " s"; }
    return String(Number(v.toPrecision(3)));
  }

  function two(n) { return n < 10 ? "0" + n : String(n); }

  function formatTime(seconds, bucket) {
    var d = new Date(seconds * 1000);
    var text = d.getUTCFullYear() + "-" + two(d.getUTCMonth() + 1) + "-" + two(d.getUTCDate()) +
      " " + two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + " UTC";
    if (bucket > 60) {
      var minutes = Math.round(bucket / 60);
      text += minutes % 60 === 0 ? ", " + minutes / 60 + " h" : ", " + minutes + " min";
    }
    return text;
  }

  function valid(data) {
    return data && data.v === 1 && [data.start, data.end, data.x0, data.x1, data.top,
      data.bottom, data.width, data.bucket].every(function (v) { return num(v) !== null; }) &&
      data.x1 > data.x0 && data.end > data.start && Array.isArray(data.lines);
  }

  function load(src) {
    if (!loaded[src]) {
      loaded[src] = fetch(src, {credentials: "same-origin"})
        .then(function (response) { return response.ok ? response.text() : ""; })
        .then(function (text) {
          // Read as text, not parsed as a document: the SVG's own <style> would then be an
          // inline style our policy refuses.  The element holds only escaped JSON text.
          var found = METADATA.exec(text);
          var data = found ? JSON.parse(unescapeXml(found[1])) : null;
          return valid(data) ? data : null;
        })
        .catch(function () { return null; });
    }
    return loaded[src];
  }

  /* The drawn point of `points` nearest to time t, if within half a bucket. */
  function nearest(points, t, bucket) {
    var lo = 0, hi = points.length - 1;
    if (hi < 0) { return null; }
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (points[mid][0] < t) { lo = mid + 1; } else { hi = mid; }
    }
    var best = points[lo];
    if (lo > 0 && Math.abs(points[lo - 1][0] - t) <= Math.abs(best[0] - t)) {
      best = points[lo - 1];
    }
    return Math.abs(best[0] - t) <= bucket / 2 ? best : null;
  }

  function element(tag, className, text) {
    var el = document.createElement(tag);
    el.className = className;
    if (text !== undefined) { el.textContent = text; }
    return el;
  }

  function attach(img) {
    var figure = img.parentNode;
    var line = element("div", "readout-line");
    var box = element("div", "readout");
    line.hidden = box.hidden = true;
    line.setAttribute("aria-hidden", "true");
    box.setAttribute("aria-hidden", "true");
    figure.appendChild(line);
    figure.appendChild(box);

    function hide() { line.hidden = box.hidden = true; }

    function show(data, clientX) {
      var rect = img.getBoundingClientRect();
      if (!rect.width) { hide(); return; }
      var scale = rect.width / data.width;
      var x = (clientX - rect.left) / scale;
      if (x < data.x0 || x > data.x1) { hide(); return; }
      var t = data.start + (x - data.x0) / (data.x1 - data.x0) * (data.end - data.start);
      var snap = null;
      var rows = [];
      data.lines.forEach(function (l) {
        var point = Array.isArray(l.points) ? nearest(l.points, t, data.bucket) : null;
        if (point && snap === null) { snap = point[0]; }
        rows.push({label: String(l.label), color: COLOR.test(l.color) ? l.color : "#57606a",
                   value: point ? num(point[1]) : null});
      });
      if (snap === null) { hide(); return; }
      rows.sort(function (a, b) {
        return (b.value === null ? -Infinity : b.value) - (a.value === null ? -Infinity : a.value);
      });
      while (box.firstChild) { box.removeChild(box.firstChild); }
      box.appendChild(element("div", "readout-time", formatTime(snap, data.bucket)));
      rows.slice(0, data.lines.length > MAX_LINES ? MAX_LINES : rows.length).forEach(function (r) {
        var row = element("div", "readout-row");
        var swatch = element("span", "swatch");
        swatch.style.backgroundColor = r.color;
        row.appendChild(swatch);
        row.appendChild(element("span", "readout-label", r.label));
        row.appendChild(element("span", "readout-value", formatValue(data.unit, r.value)));
        box.appendChild(row);
      });
      if (rows.length > MAX_LINES) {
        box.appendChild(element("div", "readout-more", "and " + (rows.length - MAX_LINES) +
                                " more"));
      }
      var snapX = data.x0 + (snap - data.start) / (data.end - data.start) * (data.x1 - data.x0);
      var left = img.offsetLeft + snapX * scale;
      line.style.left = left + "px";
      line.style.top = (img.offsetTop + data.top * scale) + "px";
      line.style.height = ((data.bottom - data.top) * scale) + "px";
      line.hidden = box.hidden = false;
      var room = figure.clientWidth - left - 12;
      box.style.left = (box.offsetWidth < room ? left + 8 : Math.max(0, left - box.offsetWidth - 8)) +
        "px";
      box.style.top = (img.offsetTop + data.top * scale) + "px";
    }

    function follow(event) {
      var src = img.getAttribute("src");
      load(src).then(function (data) {
        if (!data || img.getAttribute("src") !== src) { hide(); return; }
        show(data, event.clientX);
      });
    }

    img.addEventListener("pointermove", follow);
    img.addEventListener("pointerdown", follow);
    img.addEventListener("pointerleave", hide);
  }

  Array.prototype.forEach.call(document.querySelectorAll("figure img[data-chart]"), attach);
}());
