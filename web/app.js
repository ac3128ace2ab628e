// The demo page's main thread: reads the settings (form or URL: ?steps=&hidden=&backend=&batch=&data=
// &sweepSteps=&budgets=&autostart=0), starts the training Worker and draws what it reports. Everything
// shown is also kept in `window.pixelflyDemo` (the page's test reads it there).

const $ = (id) => document.getElementById(id);
const COLORS = { dense: "#555", pixelfly: "#d62728" };

const state = {
  state: "idle",
  backend: null,
  data: null,
  models: null,
  losses: { dense: [], pixelfly: [] },
  accuracy: { dense: [], pixelfly: [] },
  speed: null,
  sweep: [],
  error: null,
};
globalThis.pixelflyDemo = state;

function setState(s, text) {
  state.state = s;
  document.body.dataset.state = s;
  $("status").textContent = text;
}

function fmt(n) {
  return n >= 1e9
    ? `${(n / 1e9).toFixed(2)} G`
    : n >= 1e6
    ? `${(n / 1e6).toFixed(2)} M`
    : n >= 1e3
    ? `${(n / 1e3).toFixed(1)} k`
    : `${n}`;
}

function esc(s) {
  return String(s).replace(/[<>&"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;" })[c]);
}

/** A small SVG line chart: series of [x, y] points. */
function lineChart({ series, xLabel, yLabel, width = 520, height = 300, markers = false, integerX = false }) {
  const pts = series.flatMap((s) => s.points);
  if (pts.length === 0) return "";
  let x0 = Math.min(...pts.map((p) => p[0])), x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = Math.min(...pts.map((p) => p[1])), y1 = Math.max(...pts.map((p) => p[1]));
  if (!(x1 > x0)) [x0, x1] = [x0 - 1, x0 + 1];
  if (!(y1 > y0)) [y0, y1] = [y0 - 1, y0 + 1];
  const pad = (y1 - y0) * 0.06;
  y0 -= pad;
  y1 += pad;
  const L = 52, R = 12, T = 26, B = 38, w = width - L - R, h = height - T - B;
  const sx = (x) => L + ((x - x0) / (x1 - x0)) * w, sy = (y) => T + h - ((y - y0) / (y1 - y0)) * h;
  // enough decimals that the five y ticks differ
  const digits = Math.min(6, Math.max(2, Math.ceil(-Math.log10((y1 - y0) / 4)) + 1));
  const nice = (v) => Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(digits);
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" font-size="11" font-family="sans-serif">`,
    `<rect x="${L}" y="${T}" width="${w}" height="${h}" fill="#fff" stroke="#999"/>`,
  ];
  const xTicks = new Set();
  for (let k = 0; k <= 4; k++) {
    const yv = y0 + ((y1 - y0) * k) / 4;
    let xv = x0 + ((x1 - x0) * k) / 4;
    out.push(`<line x1="${L}" x2="${L + w}" y1="${sy(yv)}" y2="${sy(yv)}" stroke="#eee"/>`);
    out.push(`<text x="${L - 4}" y="${sy(yv) + 4}" text-anchor="end">${nice(yv)}</text>`);
    if (integerX) xv = Math.round(xv);
    if (xTicks.has(xv)) continue; // integer steps: no repeated tick
    xTicks.add(xv);
    out.push(
      `<text x="${sx(xv)}" y="${T + h + 14}" text-anchor="middle">${integerX ? xv : xv.toFixed(2)}</text>`,
    );
  }
  out.push(`<text x="${L + w / 2}" y="${height - 6}" text-anchor="middle">${esc(xLabel)}</text>`);
  out.push(
    `<text x="12" y="${T + h / 2}" text-anchor="middle" transform="rotate(-90 12 ${T + h / 2})">${
      esc(yLabel)
    }</text>`,
  );
  series.forEach((s, i) => {
    if (s.points.length > 1) {
      const d = s.points.map(([x, y], k) => `${k ? "L" : "M"}${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(
        "",
      );
      out.push(
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5" class="series-${esc(s.name)}"/>`,
      );
    }
    if (markers || s.points.length === 1) {
      for (const [x, y] of s.points) {
        out.push(`<circle cx="${sx(x)}" cy="${sy(y)}" r="3.5" fill="${s.color}"/>`);
      }
    }
    // the legend sits above the plot, where no point can hide under it
    out.push(`<rect x="${L + i * 150}" y="6" width="10" height="10" fill="${s.color}"/>`);
    out.push(`<text x="${L + 14 + i * 150}" y="15">${esc(s.name)}</text>`);
  });
  out.push("</svg>");
  return out.join("");
}

/** Exponential moving average of the per-step losses, the curve drawn. */
function smooth(losses, a = 0.1) {
  let m;
  return losses.map(([x, y]) => [x, m = m === undefined ? y : m + a * (y - m)]);
}

let drawPending = false;
function draw() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    $("curve").innerHTML = lineChart({
      xLabel: "step",
      yLabel: "training loss (moving average)",
      integerX: true,
      series: ["dense", "pixelfly"].map((m) => ({
        name: m,
        color: COLORS[m],
        points: smooth(state.losses[m]),
      })),
    });
    for (const m of ["dense", "pixelfly"]) {
      const l = state.losses[m], a = state.accuracy[m];
      if (l.length) $(`${m}-loss`).textContent = smooth(l).at(-1)[1].toFixed(4);
      if (a.length) $(`${m}-acc`).textContent = `${(100 * a.at(-1)[1]).toFixed(2)}%`;
    }
    if (state.speed) {
      $("dense-ms").textContent = state.speed.dense.toFixed(1);
      $("pixelfly-ms").textContent = state.speed.pixelfly.toFixed(1);
      $("speedup").textContent = `${(state.speed.dense / state.speed.pixelfly).toFixed(2)}x`;
    }
  });
}

function drawSweep() {
  const rows = state.sweep.map((r) =>
    `<tr><td>${r.budget === "dense" ? "dense" : r.budget.toFixed(2)}</td><td>${fmt(r.params)}</td>` +
    `<td>${r.ms.toFixed(1)}</td><td>${r.speedup.toFixed(2)}x</td><td>${
      (100 * r.accuracy).toFixed(2)
    }%</td></tr>`
  );
  document.querySelector("#sweep tbody").innerHTML = rows.join("");
  const fly = state.sweep.filter((r) => r.budget !== "dense"),
    dense = state.sweep.find((r) => r.budget === "dense");
  $("sweep-chart").innerHTML = lineChart({
    xLabel: "speed-up over dense (time per step)",
    yLabel: "test accuracy (%)",
    markers: true,
    series: [
      {
        name: "pixelfly (budgets)",
        color: COLORS.pixelfly,
        points: fly.map((r) => [r.speedup, 100 * r.accuracy]),
      },
      ...(dense ? [{ name: "dense", color: COLORS.dense, points: [[1, 100 * dense.accuracy]] }] : []),
    ],
  });
}

function params() {
  const q = new URLSearchParams(location.search), f = new FormData($("controls"));
  const num = (k, d) => (f.has(k) ? Number(f.get(k)) : q.has(k) ? Number(q.get(k)) : d);
  const steps = Math.max(4, Math.floor(num("steps", 300)));
  return {
    steps,
    hidden: num("hidden", 1024),
    batch: num("batch", 128),
    lr: num("lr", 1e-3),
    seed: num("seed", 0),
    backend: f.get("backend") ?? q.get("backend") ?? "auto",
    threads: q.get("threads") ?? "auto",
    data: q.get("data") ?? "auto",
    train: num("train", 60000),
    test: num("test", 2000),
    evalEvery: Math.max(1, Math.floor(num("evalEvery", Math.ceil(steps / 5)))),
    sweepSteps: Math.floor(num("sweepSteps", Math.ceil(steps / 3))),
    budgets: (q.get("budgets") ?? "0.15,0.25,0.5,0.7").split(",").map(Number),
  };
}

let worker;
function start() {
  worker?.terminate();
  Object.assign(state, {
    backend: null,
    data: null,
    models: null,
    losses: { dense: [], pixelfly: [] },
    accuracy: { dense: [], pixelfly: [] },
    speed: null,
    sweep: [],
    error: null,
  });
  for (const id of ["curve", "masks", "sweep-chart", "backend", "data"]) $(id).innerHTML = "";
  document.querySelector("#sweep tbody").innerHTML = "";
  for (const m of ["dense", "pixelfly"]) {
    for (const k of ["params", "flops", "ms", "loss", "acc"]) $(`${m}-${k}`).textContent = "";
  }
  $("speedup").textContent = "-";
  const p = params();
  $("sweep-note").textContent = p.sweepSteps > 0
    ? `Each model trains ${p.sweepSteps} steps on the same batches, all stepping in turn so that they are timed under ` +
      `the same load; ms/step is the median. Budgets: ${p.budgets.join(", ")}.`
    : "No sweep (sweepSteps=0).";
  setState("starting", `starting: ${p.steps} steps of batch ${p.batch}, hidden ${p.hidden}`);
  worker = new Worker("./worker.js", { type: "module" });
  worker.onerror = (e) => {
    state.error = e.message || "the Worker failed to load";
    setState("error", `error: ${state.error}`);
  };
  worker.onmessage = ({ data: m }) => {
    switch (m.type) {
      case "backend":
        state.backend = m;
        $("backend").textContent = `backend: ${m.name}${m.variant ? ` (${m.variant})` : ""}` +
          (m.name === "wasm" ? `, ${m.threads} thread${m.threads > 1 ? "s" : ""}` : "") +
          `; page ${m.isolated ? "is" : "is not"} cross-origin isolated` +
          (m.notes.length ? `. ${m.notes.join("; ")}` : "");
        break;
      case "data":
        state.data = m;
        $("data").textContent = `data: ${m.source}, ${m.train} train / ${m.test} test examples`;
        setState("training", "training dense and Pixelfly side by side");
        break;
      case "models":
        state.models = m;
        for (const k of ["dense", "pixelfly"]) {
          $(`${k}-params`).textContent = fmt(m[k].params);
          $(`${k}-flops`).textContent = fmt(m[k].flops);
        }
        $("masks").innerHTML = m.masks.map((k) =>
          `<figure data-nnz="${k.nnz}">${k.svg}<figcaption>${esc(k.name)}: ${k.nnz} of ${
            k.rows * k.cols
          } tiles kept</figcaption></figure>`
        ).join("");
        break;
      case "step":
        state.losses[m.model].push([m.step, m.loss]);
        draw();
        break;
      case "speed":
        state.speed = { dense: m.dense, pixelfly: m.pixelfly };
        draw();
        break;
      case "eval":
        state.accuracy[m.model].push([m.step, m.accuracy]);
        draw();
        break;
      case "sweep-step":
        setState("sweep", `budget sweep: step ${m.step} of ${m.of} (every budget steps in turn)`);
        break;
      case "sweep":
        state.sweep.push(m);
        drawSweep();
        break;
      case "done":
        setState("done", "done");
        worker.terminate();
        break;
      case "error":
        state.error = m.message;
        setState("error", `error: ${m.message}`);
        worker.terminate();
        break;
    }
  };
  worker.postMessage(p);
}

$("controls").addEventListener("submit", (e) => {
  e.preventDefault();
  start();
});
const q = new URLSearchParams(location.search);
for (const k of ["steps", "hidden", "backend"]) if (q.has(k)) $(`in-${k}`).value = q.get(k);
if (q.get("autostart") !== "0") start();
else setState("idle", "press Train");
