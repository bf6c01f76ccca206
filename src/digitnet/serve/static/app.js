// digitnet's browser page: draw (pointer events: mouse, touch, pen) and read live, or read an
// uploaded image. Everything it loads comes from this server (no CDN; see app.py's CSP).
"use strict";

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ API calls

const TOKEN_KEY = "digitnet-token";

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: "Bearer " + token } : {};
}

function setStatus(text, isError) {
  const el = $("status");
  el.textContent = text || "";
  el.classList.toggle("error", Boolean(isError));
}

// POST/GET ``path``; resolves to the JSON answer, or null after showing the error.
async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = Object.assign({}, opts.headers || {}, authHeaders());
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (err) {
    setStatus("cannot reach the server: " + err.message, true);
    return null;
  }
  let body = null;
  try {
    body = await resp.json();
  } catch (err) {
    body = { error: "the server answered " + resp.status + " without JSON" };
  }
  if (resp.status === 401) {
    $("token-form").classList.remove("hidden");
    setStatus(body.error || "this server needs a token", true);
    return null;
  }
  if (!resp.ok) {
    setStatus(body.error || "error " + resp.status, true);
    return null;
  }
  setStatus("");
  return body;
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
  $("token-form").classList.add("hidden");
  loadModel();
  readNow();
});

async function loadModel() {
  const info = await api("/v1/model");
  if (!info) return;
  const acc = info.test_accuracy == null ? "" :
    ", " + (100 * info.test_accuracy).toFixed(2) + "% on the MNIST test set";
  const trained = info.train_images ? " (trained on " + info.train_images.toLocaleString("en")
    + " images)" : "";
  $("model-info").textContent = info.name + " model" + acc + trained + ", " + info.backend;
}

// ------------------------------------------------------------------ showing a reading

function digitProbs(digit) {
  const probs = new Array(10).fill(0);
  for (const [d, p] of digit.top) probs[d] = p;
  return probs;
}

function buildBars() {
  const bars = $("bars");
  for (let d = 0; d < 10; d++) {
    const row = document.createElement("div");
    row.className = "bar";
    row.dataset.digit = String(d);
    row.innerHTML = '<span class="label"></span><span class="track"><span class="fill">' +
      "</span></span><span class=\"pct\"></span>";
    row.querySelector(".label").textContent = String(d);
    bars.appendChild(row);
  }
}

function showBars(probs) {
  const best = probs.indexOf(Math.max(...probs));
  for (const row of $("bars").children) {
    const d = Number(row.dataset.digit);
    const p = probs[d];
    row.querySelector(".fill").style.width = (100 * p).toFixed(1) + "%";
    row.querySelector(".pct").textContent = (100 * p).toFixed(1) + "%";
    row.classList.toggle("best", p > 0 && d === best);
  }
}

function chip(digit, index, onSelect) {
  const el = document.createElement("button");
  el.type = "button";
  el.className = "chip" + (digit.low_confidence ? " low" : "");
  el.dataset.index = String(index);
  if (digit.input) {
    const img = document.createElement("img");
    img.src = digit.input;
    img.alt = "";
    el.appendChild(img);
  }
  el.appendChild(document.createTextNode(digit.digit + " · " +
    (100 * digit.confidence).toFixed(1) + "%"));
  el.title = "alternatives: " + digit.top.slice(1, 4)
    .map(([d, p]) => d + " " + (100 * p).toFixed(1) + "%").join(", ");
  el.addEventListener("click", () => onSelect(index));
  return el;
}

function showDrawnReading(obj) {
  const digits = obj ? obj.digits : [];
  $("reading-text").textContent = obj && obj.text ? obj.text : "-";
  $("reading-message").textContent = !obj ? "Draw something: the reading updates as you draw."
    : obj.message || (digits.some((d) => d.low_confidence) ? "dashed: read with low confidence"
      : "");
  const chips = $("digit-chips");
  chips.replaceChildren();
  const select = (i) => {
    for (const c of chips.children) c.classList.toggle("selected", Number(c.dataset.index) === i);
    showBars(digitProbs(digits[i]));
    $("net-input").src = digits[i].input;
    $("net-input").classList.remove("hidden");
  };
  digits.forEach((d, i) => chips.appendChild(chip(d, i, select)));
  if (digits.length) {
    select(0);
  } else {
    showBars(new Array(10).fill(0));
    $("net-input").classList.add("hidden");
  }
}

// ------------------------------------------------------------------ the drawing pad

const pad = $("pad");
const ctx = pad.getContext("2d");
const strokes = [];  // each: {width, points: [[x, y], ...]}, in canvas pixels
let current = null;  // the stroke being drawn, and the pointer drawing it
let activePointer = null;
let version = 0;  // bumped by every change, so a late answer for an old drawing is dropped

function penWidth() {
  return Number($("pen-width").value);
}

function paintStroke(s) {
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#000";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = s.width;
  const pts = s.points;
  if (pts.length === 1) {
    ctx.beginPath();
    ctx.arc(pts[0][0], pts[0][1], s.width / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  ctx.moveTo(pts[0][0], pts[0][1]);
  for (let i = 1; i < pts.length; i++) ctx.lineTo(pts[i][0], pts[i][1]);
  ctx.stroke();
}

function repaint() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  for (const s of strokes) paintStroke(s);
  $("undo").disabled = strokes.length === 0;
  $("clear").disabled = strokes.length === 0;
}

function point(ev) {
  const r = pad.getBoundingClientRect();
  return [(ev.clientX - r.left) * pad.width / r.width, (ev.clientY - r.top) * pad.height / r.height];
}

pad.addEventListener("pointerdown", (ev) => {
  if (activePointer !== null || (ev.pointerType === "mouse" && ev.button !== 0)) return;
  ev.preventDefault();
  activePointer = ev.pointerId;
  pad.setPointerCapture(ev.pointerId);
  // A pen's pressure scales its width (0.5 is what browsers report for "pressed" mice).
  const pressure = ev.pointerType === "pen" && ev.pressure > 0 ? ev.pressure / 0.5 : 1;
  current = { width: Math.max(2, penWidth() * Math.min(pressure, 1.6)), points: [point(ev)] };
  strokes.push(current);
  version++;
  repaint();
  scheduleRead();
});

pad.addEventListener("pointermove", (ev) => {
  if (ev.pointerId !== activePointer || !current) return;
  ev.preventDefault();
  const events = typeof ev.getCoalescedEvents === "function" ? ev.getCoalescedEvents() : [];
  for (const e of events.length ? events : [ev]) current.points.push(point(e));
  version++;
  repaint();
  scheduleRead();
});

function endStroke(ev) {
  if (ev.pointerId !== activePointer) return;
  activePointer = null;
  current = null;
  readNow();
}
pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

$("pen-width").addEventListener("input", () => {
  $("pen-width-value").textContent = $("pen-width").value;
});

function undo() {
  if (!strokes.length || current) return;
  strokes.pop();
  version++;
  repaint();
  readNow();
}

$("undo").addEventListener("click", undo);
$("clear").addEventListener("click", () => {
  strokes.length = 0;
  version++;
  repaint();
  readNow();
});
$("single").addEventListener("change", readNow);
document.addEventListener("keydown", (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "z") {
    ev.preventDefault();
    undo();
  }
});

// Live reading: at most one request in flight and one every READ_EVERY_MS while drawing;
// the latest drawing is always read last.
const READ_EVERY_MS = 150;
let inFlight = false;
let wanted = false;
let timer = null;
let lastSent = 0;

function scheduleRead() {
  wanted = true;
  pump();
}

function readNow() {
  lastSent = 0;
  scheduleRead();
}

function pump() {
  if (inFlight || !wanted || timer !== null) return;
  const wait = READ_EVERY_MS - (Date.now() - lastSent);
  if (wait > 0) {
    timer = setTimeout(() => { timer = null; pump(); }, wait);
    return;
  }
  wanted = false;
  inFlight = true;
  lastSent = Date.now();
  readDrawing().finally(() => {
    inFlight = false;
    pump();
  });
}

async function readDrawing() {
  const sent = version;
  if (!strokes.length) {
    showDrawnReading(null);
    return;
  }
  const blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
  const single = $("single").checked ? "&single=true" : "";
  const obj = await api("/v1/read?top_k=10&inputs=true" + single, {
    method: "POST", body: blob, headers: { "Content-Type": "image/png" },
  });
  // A drawing changed since it was sent has another read coming: show only the latest.
  if (obj && sent === version) showDrawnReading(obj);
}

// ------------------------------------------------------------------ reading an image

const view = $("upload-view");

function drawBoxes(img, obj, selected) {
  const maxW = Math.min(640, view.parentElement.clientWidth || 640);
  const scale = Math.min(1, maxW / img.naturalWidth, 480 / img.naturalHeight);
  view.width = Math.max(1, Math.round(img.naturalWidth * scale));
  view.height = Math.max(1, Math.round(img.naturalHeight * scale));
  const v = view.getContext("2d");
  v.drawImage(img, 0, 0, view.width, view.height);
  v.font = "bold 16px system-ui, sans-serif";
  v.textBaseline = "bottom";
  obj.digits.forEach((d, i) => {
    const [x, y, w, h] = d.box.map((n) => n * scale);
    v.lineWidth = i === selected ? 3 : 2;
    v.strokeStyle = d.low_confidence ? "#e8710a" : "#0f9d58";
    v.strokeRect(x, y, w, h);
    const label = String(d.digit);
    v.fillStyle = v.strokeStyle;
    v.fillRect(x, Math.max(0, y - 18), v.measureText(label).width + 8, 18);
    v.fillStyle = "#fff";
    v.fillText(label, x + 4, Math.max(18, y));
  });
  view.classList.remove("hidden");
}

async function readFile(file) {
  if (!file) return;
  $("upload-text").textContent = "";
  $("upload-message").textContent = "reading " + file.name + "...";
  $("upload-chips").replaceChildren();
  const form = new FormData();
  form.append("file", file, file.name);
  const obj = await api("/v1/read?top_k=10&inputs=true", { method: "POST", body: form });
  if (!obj) {
    $("upload-message").textContent = "";
    view.classList.add("hidden");
    return;
  }
  $("upload-text").textContent = obj.text || "-";
  $("upload-message").textContent = obj.message || (obj.digits.length + " digit(s) in " +
    file.name);
  const img = new Image();
  const url = URL.createObjectURL(file);
  img.onload = () => {
    const select = (i) => {
      for (const c of $("upload-chips").children) {
        c.classList.toggle("selected", Number(c.dataset.index) === i);
      }
      drawBoxes(img, obj, i);
    };
    obj.digits.forEach((d, i) => $("upload-chips").appendChild(chip(d, i, select)));
    drawBoxes(img, obj, -1);
    URL.revokeObjectURL(url);
  };
  img.onerror = () => {
    // Read by the server, but this browser cannot show the format (TIFF in most browsers).
    obj.digits.forEach((d, i) => $("upload-chips").appendChild(chip(d, i, () => {})));
    view.classList.add("hidden");
    URL.revokeObjectURL(url);
  };
  img.src = url;
}

$("file").addEventListener("change", (ev) => readFile(ev.target.files[0]));
const drop = $("drop");
drop.addEventListener("dragover", (ev) => {
  ev.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (ev) => {
  ev.preventDefault();
  drop.classList.remove("over");
  readFile(ev.dataTransfer.files[0]);
});
drop.addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" || ev.key === " ") $("file").click();
});

// ------------------------------------------------------------------ start

buildBars();
repaint();
showDrawnReading(null);
loadModel();
