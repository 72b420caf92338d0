// reportgen explorer: the map of explore.html, drawn on a canvas from the data that
// explore/points.js assigns to window.REPORTGEN_EXPLORER (a fetch() of local JSON is blocked
// under file://). Every thumbnail is a cell of one sprite image. No request leaves the folder.
(function () {
  "use strict";
  var D = window.REPORTGEN_EXPLORER;
  var root = document.getElementById("explorer");
  if (!D || !root) return;
  var P = D.points, N = P.x.length;
  var canvas = document.getElementById("map"), ctx = canvas.getContext("2d");
  var tip = document.getElementById("tip"), count = document.getElementById("count");
  var legend = document.getElementById("legend"), status = document.getElementById("status");
  var $ = function (id) { return document.getElementById(id); };
  var sprite = new Image(), spriteOk = false;
  var view = {zoom: 1, x: 0, y: 0}, drawn = [], hover = -1, focus = -1, size = 0, frame = 0;
  var PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
    "#ff9da7", "#9c755f", "#bab0ac", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8"];
  var RIGHT = "#1f77b4", WRONG = "#e8590c";

  function pct(v) { return (100 * v).toFixed(1) + " %"; }
  function name(c) { return c >= 0 ? D.classes[c] : "(no label)"; }
  function viridis(t) {  // five stops of viridis, interpolated
    var s = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
    var f = Math.max(0, Math.min(1, t)) * 4, k = Math.min(3, Math.floor(f)), u = f - k;
    var c = s[k].map(function (v, j) { return Math.round(v + (s[k + 1][j] - v) * u); });
    return "rgb(" + c.join(",") + ")";
  }
  function category(mode, k) {  // [code, label] of point k under a categorical mode
    if (mode === "true") return [P.t[k], name(P.t[k])];
    if (mode === "pred") return [P.p[k], name(P.p[k])];
    if (mode === "right") return P.t[k] === P.p[k] ? [0, "right"] : [1, "wrong"];
    if (mode === "split") return [P.s[k], D.splits[P.s[k]]];
    var e = D.extra[mode];
    return [e.codes[k], e.names[e.codes[k]]];
  }
  function colour(mode, k) {
    if (mode === "conf") return viridis(P.c[k]);
    if (mode === "right") return P.t[k] === P.p[k] ? RIGHT : WRONG;
    var code = category(mode, k)[0];
    return code < 0 ? "#888888" : PALETTE[code % PALETTE.length];
  }

  // -- filters ---------------------------------------------------------------------------
  function filters() {  // the controls' values, read once a drawing
    var f = {extra: []};
    ["f-split", "f-true", "f-pred", "f-right"].forEach(function (id) {
      var el = $(id);
      f[id] = el ? el.value : "all";
    });
    f.lo = +$("f-cmin").value / 100; f.hi = +$("f-cmax").value / 100;
    $("o-cmin").textContent = $("f-cmin").value; $("o-cmax").textContent = $("f-cmax").value;
    for (var key in D.extra) {
      var el = $("f-x-" + key);
      if (el && el.value !== "all") f.extra.push([D.extra[key].codes, +el.value]);
    }
    return f;
  }
  function passes(f, k) {
    if (f["f-split"] !== "all" && P.s[k] !== +f["f-split"]) return false;
    if (f["f-true"] !== "all" && P.t[k] !== +f["f-true"]) return false;
    if (f["f-pred"] !== "all" && P.p[k] !== +f["f-pred"]) return false;
    if (f["f-right"] !== "all" && (P.t[k] === P.p[k]) !== (f["f-right"] === "right")) return false;
    if (P.c[k] < f.lo || P.c[k] > f.hi) return false;
    for (var j = 0; j < f.extra.length; j++) if (f.extra[j][0][k] !== f.extra[j][1]) return false;
    return true;
  }

  // -- drawing: the points into an offscreen canvas when something changes; hover and focus
  // only copy it and mark their point, so 5,000 thumbnails are not redrawn on every move.
  var base = document.createElement("canvas"), bctx = base.getContext("2d"), dirty = true;
  function resize() {
    var box = canvas.parentElement.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    size = Math.max(240, Math.min(box.width, window.innerHeight * 0.8));
    canvas.style.width = canvas.style.height = size + "px";
    canvas.width = canvas.height = base.width = base.height = Math.round(size * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    bctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    dirty = true;
  }
  function screen(k) {  // point k in CSS pixels of the canvas (thumbnails kept inside)
    var span = Math.max(size - thumb() - 16, size / 2) * view.zoom;
    return [(P.x[k] - 0.5) * span + size / 2 + view.x,
            (P.y[k] - 0.5) * span + size / 2 + view.y];
  }
  // The slider's size is for an 800 px map; a smaller map (a phone) draws them smaller.
  function thumb() { return Math.max(4, Math.round(+$("f-size").value * Math.max(0.4, Math.min(1, size / 800)))); }
  var scaled = null;
  function scaledSprite(s, dpr) {  // the sprite at s CSS px a cell, made once a size
    var px = Math.max(1, Math.round(s * dpr)), cols = D.sprite.cols;
    var rows = Math.ceil(N / cols);
    if (scaled && scaled.px === px) return scaled;
    if (cols * px > 4096 || rows * px > 4096) return null;  // too large to keep: scale each
    var c = document.createElement("canvas"), g = c.getContext("2d");
    c.width = cols * px; c.height = rows * px;
    g.drawImage(sprite, 0, 0, cols * D.sprite.side, rows * D.sprite.side, 0, 0, c.width, c.height);
    scaled = {canvas: c, px: px};
    return scaled;
  }
  function drawBase() {
    var mode = $("colour").value, s = thumb(), dots = !spriteOk || $("f-dots").checked;
    var cols = D.sprite.cols, side = D.sprite.side, f = filters();
    var dpr = window.devicePixelRatio || 1, cells = dots ? null : scaledSprite(s, dpr);
    bctx.clearRect(0, 0, size, size);
    drawn = [];
    for (var k = 0; k < N; k++) if (passes(f, k)) drawn.push(k);
    drawn.forEach(function (k) {
      var xy = screen(k), x = xy[0] - s / 2, y = xy[1] - s / 2;
      if (x > size || y > size || x + s < 0 || y + s < 0) return;
      bctx.fillStyle = colour(mode, k);
      if (dots) { bctx.fillRect(x + s / 4, y + s / 4, s / 2, s / 2); return; }
      bctx.fillRect(x - 3, y - 3, s + 6, s + 6);
      if (cells) {  // a 1:1 copy of a cell already at this size: fast without a GPU
        x = Math.round(x * dpr) / dpr; y = Math.round(y * dpr) / dpr;
        bctx.drawImage(cells.canvas, (k % cols) * cells.px, Math.floor(k / cols) * cells.px,
                       cells.px, cells.px, x, y, cells.px / dpr, cells.px / dpr);
      } else {
        bctx.drawImage(sprite, (k % cols) * side, Math.floor(k / cols) * side, side, side,
                       x, y, s, s);
      }
    });
    canvas.setAttribute("data-drawn", drawn.length);
    count.textContent = "Showing " + drawn.length.toLocaleString("en") + " of " +
      N.toLocaleString("en") + " points.";
    drawLegend(mode);
    dirty = false;
  }
  function draw() {
    frame = 0;
    if (dirty) drawBase();
    var s = thumb();
    ctx.clearRect(0, 0, size, size);
    ctx.drawImage(base, 0, 0, size, size);
    [hover, focus].forEach(function (k) {
      if (k < 0 || drawn.indexOf(k) < 0) return;
      var xy = screen(k);
      ctx.lineWidth = 2; ctx.strokeStyle = "#000"; ctx.strokeRect(xy[0] - s / 2 - 4, xy[1] - s / 2 - 4, s + 8, s + 8);
      ctx.strokeStyle = "#fff"; ctx.strokeRect(xy[0] - s / 2 - 6, xy[1] - s / 2 - 6, s + 12, s + 12);
    });
  }
  function mark() { if (!frame) frame = requestAnimationFrame(draw); }  // hover, focus
  function redraw() { dirty = true; mark(); }  // filters, colours, view

  function drawLegend(mode) {
    var items = [];
    if (mode === "conf") {
      items = [0, 0.25, 0.5, 0.75, 1].map(function (v) { return [viridis(v), pct(v)]; });
    } else {
      var seen = {};
      drawn.forEach(function (k) {
        var c = category(mode, k);
        if (!(c[1] in seen)) seen[c[1]] = [colour(mode, k), c[1], 0];
        seen[c[1]][2] += 1;
      });
      items = Object.keys(seen).sort().map(function (key) {
        return [seen[key][0], seen[key][1] + " (" + seen[key][2] + ")"];
      });
    }
    legend.textContent = "";
    items.forEach(function (it) {
      var li = document.createElement("li"), sw = document.createElement("span");
      sw.className = "swatch"; sw.style.background = it[0];
      li.appendChild(sw); li.appendChild(document.createTextNode(it[1]));
      legend.appendChild(li);
    });
  }

  // -- finding points --------------------------------------------------------------------
  function nearest(px, py) {
    var best = -1, bestD = Math.pow(Math.max(thumb(), 8) * 0.75, 2);
    drawn.forEach(function (k) {
      var xy = screen(k), d = Math.pow(xy[0] - px, 2) + Math.pow(xy[1] - py, 2);
      if (d <= bestD) { best = k; bestD = d; }
    });
    return best;
  }
  function describe(k) {
    var s = P.f[k] + " (" + D.splits[P.s[k]] + "): ";
    if (P.t[k] >= 0) s += "true " + name(P.t[k]) + ", ";
    return s + "predicted " + name(P.p[k]) + ", confidence " + pct(P.c[k]);
  }
  function showTip(k, px, py) {
    if (k < 0) { tip.hidden = true; return; }
    tip.textContent = describe(k);
    tip.hidden = false;
    var left = Math.min(px + 14, size - tip.offsetWidth - 4);
    tip.style.left = Math.max(0, left) + "px";
    tip.style.top = (py + 14 + tip.offsetHeight > size ? py - 14 - tip.offsetHeight : py + 14) + "px";
  }
  function pointer(e) {
    var r = canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  // -- the detail dialog -----------------------------------------------------------------
  function spriteCell(k, px) {  // the thumbnail of k enlarged to px pixels, on a canvas
    var c = document.createElement("canvas"), g = c.getContext("2d"), side = D.sprite.side;
    c.width = c.height = px;
    g.imageSmoothingEnabled = false;
    if (spriteOk) g.drawImage(sprite, (k % D.sprite.cols) * side,
                              Math.floor(k / D.sprite.cols) * side, side, side, 0, 0, px, px);
    return c;
  }
  function mapOverlay(k, px) {  // GradCAM at the layer's resolution over the thumbnail
    var M = D.maps, row = P.m[k], c = spriteCell(k, px), g = c.getContext("2d");
    var raw = atob(M.data), off = row * M.h * M.w, m = document.createElement("canvas");
    m.width = M.w; m.height = M.h;
    var mg = m.getContext("2d"), img = mg.createImageData(M.w, M.h);
    for (var j = 0; j < M.w * M.h; j++) {
      var rgb = M.lut[raw.charCodeAt(off + j)];
      img.data[4 * j] = rgb[0]; img.data[4 * j + 1] = rgb[1]; img.data[4 * j + 2] = rgb[2];
      img.data[4 * j + 3] = 255;
    }
    mg.putImageData(img, 0, 0);
    g.globalAlpha = 0.45; g.imageSmoothingEnabled = true;
    g.drawImage(m, 0, 0, px, px);
    return c;
  }
  function figure(node, caption) {
    var f = document.createElement("figure"), cap = document.createElement("figcaption");
    cap.textContent = caption;
    f.appendChild(node); f.appendChild(cap);
    return f;
  }
  function picture(src, alt) {
    var img = document.createElement("img");
    img.src = src; img.alt = alt;
    return img;
  }
  function open(k) {
    var dlg = $("detail"), views = $("detail-views"), links = $("detail-links");
    $("detail-title").textContent = P.f[k];
    $("detail-text").textContent = describe(k);
    views.textContent = ""; links.textContent = "";
    var labelled = P.t[k] >= 0 ? "true " + name(P.t[k]) + ", " : "";
    var alt = P.f[k] + ", " + labelled + "predicted " + name(P.p[k]);
    if (P.img[k]) views.appendChild(figure(picture(P.img[k], "Image " + alt), "image"));
    else views.appendChild(figure(spriteCell(k, 192), "image (the map's thumbnail: no " +
                                  "full-size file of it in this site)"));
    if (P.cam[k]) {
      views.appendChild(figure(picture(P.cam[k], "GradCAM for the predicted class, " + alt),
                               "GradCAM: " + name(P.p[k])));
    } else if (D.maps && P.m[k] >= 0) {
      views.appendChild(figure(mapOverlay(k, 192), "GradCAM: " + name(P.p[k]) + " (at the " +
                               "layer's " + D.maps.w + "×" + D.maps.h + " resolution, drawn here)"));
    }
    if (P.camt[k]) views.appendChild(figure(picture(P.camt[k], "GradCAM for the true class, " +
                                                    alt), "GradCAM: " + name(P.t[k])));
    if (!P.cam[k] && !(D.maps && P.m[k] >= 0)) {
      var none = document.createElement("p");
      none.className = "muted";
      none.textContent = P.s[k] === 0 ? "No GradCAM of this image in this report." :
        "No GradCAM: training images are not explained (the test set is).";
      views.appendChild(none);
    }
    [[P.t[k], "true"], [P.p[k], "predicted"]].forEach(function (c) {
      if (c[0] < 0 || !D.pages[c[0]]) return;
      var li = document.createElement("li"), a = document.createElement("a");
      a.href = D.pages[c[0]];
      a.textContent = "Class page of " + name(c[0]) + " (" + c[1] + ")";
      li.appendChild(a); links.appendChild(li);
    });
    dlg.showModal();
  }

  // -- keyboard: arrows move between drawn points, Enter opens one -----------------------
  function step(dx, dy) {
    if (!drawn.length) return;
    if (focus < 0 || drawn.indexOf(focus) < 0) { focus = drawn[0]; return; }
    var from = screen(focus), best = -1, score = Infinity;
    drawn.forEach(function (k) {
      if (k === focus) return;
      var xy = screen(k), a = (xy[0] - from[0]) * dx + (xy[1] - from[1]) * dy;
      var b = Math.abs((xy[0] - from[0]) * dy) + Math.abs((xy[1] - from[1]) * dx);
      if (a > 0 && a + 2 * b < score) { score = a + 2 * b; best = k; }
    });
    if (best >= 0) focus = best;
  }
  canvas.addEventListener("keydown", function (e) {
    var dirs = {ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1]};
    if (dirs[e.key]) {
      e.preventDefault();
      step(dirs[e.key][0], dirs[e.key][1]);
      status.textContent = focus >= 0 ? describe(focus) : "";
      mark();
    } else if ((e.key === "Enter" || e.key === " ") && focus >= 0) {
      e.preventDefault();
      open(focus);
    } else if (e.key === "+" || e.key === "=" || e.key === "-") {
      zoomAt(size / 2, size / 2, e.key === "-" ? 1 / 1.25 : 1.25);
    }
  });

  // -- pointer: hover, click, drag to pan, wheel to zoom ----------------------------------
  var drag = null;
  canvas.addEventListener("mousemove", function (e) {
    var xy = pointer(e);
    if (drag) {
      view.x = drag.vx + xy[0] - drag.x; view.y = drag.vy + xy[1] - drag.y;
      drag.moved = drag.moved || Math.abs(xy[0] - drag.x) + Math.abs(xy[1] - drag.y) > 4;
      redraw(); return;
    }
    var k = nearest(xy[0], xy[1]);
    if (k !== hover) { hover = k; mark(); }
    showTip(k, xy[0], xy[1]);
    canvas.style.cursor = k >= 0 ? "pointer" : "grab";
  });
  canvas.addEventListener("mouseleave", function () { hover = -1; drag = null; tip.hidden = true; mark(); });
  canvas.addEventListener("mousedown", function (e) {
    var xy = pointer(e);
    drag = {x: xy[0], y: xy[1], vx: view.x, vy: view.y, moved: false};
  });
  canvas.addEventListener("mouseup", function (e) {
    var moved = drag && drag.moved, xy = pointer(e);
    drag = null;
    if (moved) return;
    var k = nearest(xy[0], xy[1]);
    if (k >= 0) { focus = k; open(k); }
  });
  function zoomAt(px, py, f) {
    var z = Math.max(1, Math.min(40, view.zoom * f));
    f = z / view.zoom;
    view.x = (view.x - (px - size / 2)) * f + (px - size / 2);
    view.y = (view.y - (py - size / 2)) * f + (py - size / 2);
    view.zoom = z;
    if (z === 1) { view.x = 0; view.y = 0; }
    redraw();
  }
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var xy = pointer(e);
    zoomAt(xy[0], xy[1], e.deltaY < 0 ? 1.25 : 1 / 1.25);
  }, {passive: false});
  $("zoom-in").addEventListener("click", function () { zoomAt(size / 2, size / 2, 1.5); });
  $("zoom-out").addEventListener("click", function () { zoomAt(size / 2, size / 2, 1 / 1.5); });
  $("zoom-reset").addEventListener("click", function () { view = {zoom: 1, x: 0, y: 0}; redraw(); });

  root.querySelectorAll("select, input").forEach(function (el) {
    el.addEventListener("input", redraw);
    el.addEventListener("change", redraw);
  });
  $("detail").addEventListener("click", function (e) { if (e.target === $("detail")) $("detail").close(); });
  $("detail").addEventListener("close", function () { canvas.focus(); });
  window.addEventListener("resize", function () { resize(); redraw(); });
  sprite.onload = function () { spriteOk = true; redraw(); };
  sprite.onerror = function () { status.textContent = "The thumbnails could not be loaded: points are drawn as dots."; };
  sprite.src = D.sprite.src;
  // Where point k is drawn (CSS pixels of the canvas), and its detail: for tests and scripts.
  window.reportgenExplorer = {pointAt: screen, open: open,
                              drawNow: function () { dirty = true; draw(); return drawn.length; }};
  resize();
  draw();
})();
