// The browser app of a cnnkeras export: runs its .tflite files with LiteRT.js (LiteRT compiled
// to WebAssembly) on photos or the camera. Everything it needs is read from the export folder:
// preprocess.json (the record the Python side writes: input size, scale, offset, quantization),
// labels.txt and golden/expected.json. The preprocessing below is cnnkeras/data/_pipeline.py's,
// line for line, so that the page gives the Python runtime's scores.
import { Tensor, loadAndCompile, loadLiteRt } from "./runtime/litert.js";

const f32 = Math.fround;
const $ = (id) => document.getElementById(id);
const app = { record: null, labels: [], model: null, variant: null, lastSelfTest: null };
window.app = app;

// ---- preprocessing, as the pipeline does it ------------------------------------------------

function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// OpenCV's fixed-point bilinear weights (initInterTab2D): 32x32 sub-pixel positions, the four
// neighbours' weights in 1/32768, rounded and corrected to sum to 32768 (_bilinear_table).
const BILINEAR = (() => {
  const table = new Int32Array(32 * 32 * 4);
  for (let fy = 0; fy < 32; fy++) {
    for (let fx = 0; fx < 32; fx++) {
      const vy = [f32(1 - fy / 32), f32(fy / 32)];
      const vx = [f32(1 - fx / 32), f32(fx / 32)];
      const w = [];
      for (const a of vy) for (const b of vx) w.push(roundHalfEven(f32(f32(a * b) * 32768)));
      const excess = w.reduce((s, v) => s + v, 0) - 32768;
      if (excess) w[w.indexOf(excess > 0 ? Math.max(...w) : Math.min(...w))] -= excess;
      table.set(w, (fy * 32 + fx) * 4);
    }
  }
  return table;
})();

// Where MediaPipe samples the source for each output row and column, in 1/32 of a pixel
// (_phone_positions: OpenCV's inverse by cofactors, per column block of warpPerspective).
function phonePositions(srcH, srcW, height, width) {
  const m00 = width / srcW;
  const m11 = height / srcH;
  const det = m00 * m11;
  const inverse = 1 / det;
  const scale = 32 / (det * inverse);
  const block = Math.min(Math.floor(1024 / Math.min(16, height)), width);
  const fx = new Int32Array(width);
  const fy = new Int32Array(height);
  for (let x = 0; x < width; x++) {
    const start = Math.floor(x / block) * block;
    fx[x] = roundHalfEven((m11 * inverse * start + m11 * inverse * (x - start)) * scale);
  }
  for (let y = 0; y < height; y++) fy[y] = roundHalfEven(m00 * inverse * y * scale);
  return [fy, fx];
}

// MediaPipe Tasks' resize (bilinear, pixel corners, no antialiasing, whole grey levels).
function phoneResize(pixels, srcH, srcW, channels, height, width) {
  const [py, px] = phonePositions(srcH, srcW, height, width);
  const out = new Uint8Array(height * width * channels);
  for (let y = 0; y < height; y++) {
    const y0 = Math.min(py[y] >> 5, srcH - 1);
    const y1 = Math.min(y0 + 1, srcH - 1);
    for (let x = 0; x < width; x++) {
      const x0 = Math.min(px[x] >> 5, srcW - 1);
      const x1 = Math.min(x0 + 1, srcW - 1);
      const w = ((py[y] & 31) * 32 + (px[x] & 31)) * 4;
      const corners = [(y0 * srcW + x0), (y0 * srcW + x1), (y1 * srcW + x0), (y1 * srcW + x1)];
      for (let c = 0; c < channels; c++) {
        let total = 0;
        for (let k = 0; k < 4; k++) total += BILINEAR[w + k] * pixels[corners[k] * channels + c];
        out[(y * width + x) * channels + c] = Math.min(255, Math.max(0, (total + 16384) >> 15));
      }
    }
  }
  return out;
}

// RGBA from the browser -> the model's channels (tf.image.rgb_to_grayscale for a grey input).
function toChannels(rgba, count, channels) {
  const out = new Uint8Array(count * channels);
  const inv = f32(1 / 255);
  const luma = [f32(0.2989), f32(0.587), f32(0.114)];
  for (let i = 0; i < count; i++) {
    if (channels === 3) {
      out.set(rgba.subarray(i * 4, i * 4 + 3), i * 3);
    } else {
      let grey = 0;
      for (let c = 0; c < 3; c++) grey = f32(grey + f32(f32(rgba[i * 4 + c] * inv) * luma[c]));
      out[i] = Math.min(255, Math.trunc(f32(grey * 255.5)));
    }
  }
  return out;
}

// The input tensor's data: pixel * scale + offset in float32, quantized for an integer file.
function modelInput(rgba, srcH, srcW) {
  const prep = app.record.preprocessing;
  let pixels = toChannels(rgba, srcH * srcW, prep.channels);
  if (srcH !== prep.height || srcW !== prep.width) {
    pixels = phoneResize(pixels, srcH, srcW, prep.channels, prep.height, prep.width);
  }
  const scale = f32(prep.scale);
  const offset = f32(prep.offset);
  const x = new Float32Array(pixels.length);
  for (let i = 0; i < x.length; i++) x[i] = f32(f32(pixels[i] * scale) + offset);
  const q = app.quantization.input;
  if (q.dtype === "float32") return x;
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    out[i] = Math.min(255, Math.max(0, roundHalfEven(f32(f32(x[i] / q.scale) + q.zero_point))));
  }
  return out;
}

// ---- running the model ---------------------------------------------------------------------

// One model call at a time: the camera loop, chosen photos and a file switch share the model.
let queue = Promise.resolve();
function serially(task) {
  const result = queue.then(task, task);
  queue = result.catch(() => {});
  return result;
}

function classifyPixels(rgba, height, width) {
  const prep = app.record.preprocessing;
  const data = modelInput(rgba, height, width);
  return serially(async () => {
    const input = new Tensor(data, [1, prep.height, prep.width, prep.channels]);
    const start = performance.now();
    const [output] = await app.model.run([input]);
    const raw = output.toTypedArray();
    const ms = performance.now() - start;
    input.delete();
    output.delete();
    const q = app.quantization.output;
    const scores = Array.from(raw, (v) => (q.dtype === "float32" ? v : f32((v - q.zero_point) * q.scale)));
    return { scores, ms };
  });
}

function pixelsOf(source, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(source, 0, 0);
  return context.getImageData(0, 0, width, height).data;
}

// A photo as the phone stores it: decoded by the browser, turned upright by its EXIF
// orientation as the pipeline does, colours untouched.
async function decode(blob) {
  const bitmap = await createImageBitmap(blob, {
    colorSpaceConversion: "none",
    premultiplyAlpha: "none",
    imageOrientation: "from-image",
  });
  const { width, height } = bitmap;
  const pixels = pixelsOf(bitmap, width, height);
  bitmap.close();
  return [pixels, height, width];
}

async function classifyBlob(blob) {
  const [pixels, height, width] = await decode(blob);
  return { ...(await classifyPixels(pixels, height, width)), size: `${width}x${height}` };
}

async function useVariant(variant) {
  setBusy(true);
  try {
    const file = `model_${variant}.tflite`;
    const quantization = app.record.variants[variant];
    if (quantization.input.dtype !== "float32" && quantization.input.dtype !== "uint8") {
      throw new Error(
        `${file} takes ${quantization.input.dtype} input, which LiteRT.js does not; ` +
          "export with --int-io uint8",
      );
    }
    const response = await fetch(file);
    if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    let model;
    try {
      model = await loadAndCompile(bytes, { accelerator: "wasm" });
    } catch (error) {
      throw new Error(`LiteRT.js could not load ${file} (${bytes.length} bytes): ${error.message || error}`);
    }
    await serially(() => {
      if (app.model) app.model.delete();
      Object.assign(app, { model, variant, quantization });
    });
    $("error").hidden = true;
    document.body.dataset.state = "ready";
    say(`${file} loaded (${(bytes.length / 1024).toFixed(0)} KiB), running in LiteRT.js (WebAssembly, CPU)`);
  } finally {
    setBusy(false);
  }
}

// ---- what the page shows -------------------------------------------------------------------

function say(text) {
  $("status").textContent = text;
}

function fail(error) {
  const box = $("error");
  box.textContent = String(error.message || error);
  box.hidden = false;
  document.body.dataset.state = "error";
}

function setBusy(busy) {
  for (const id of ["variant", "photos", "snap", "camera", "selftest"]) $(id).disabled = busy;
}

function element(tag, attributes = {}, text = "") {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text) node.textContent = text;
  return node;
}

function ranking(scores, k) {
  return scores.map((s, i) => [s, i]).sort((a, b) => b[0] - a[0]).slice(0, k);
}

function renderScores(target, { scores, ms }) {
  target.replaceChildren();
  const threshold = app.record.score_threshold?.score;
  const top = ranking(scores, Math.min(5, scores.length));
  if (threshold !== undefined && top[0][0] < threshold) {
    target.append(element("div", { class: "unknown" }, `unknown (top score below ${threshold.toFixed(2)})`));
  }
  top.forEach(([score, index], rank) => {
    const row = element("div", { class: rank === 0 ? "row top" : "row" });
    row.append(element("span", { class: "name", title: app.labels[index] }, app.labels[index]));
    const bar = element("div", { class: "bar" });
    bar.append(element("span", { style: `width: ${(100 * score).toFixed(1)}%` }));
    row.append(bar, element("span", {}, score.toFixed(3)));
    target.append(row);
  });
  target.append(element("div", { class: "meta" }, `${ms.toFixed(1)} ms · model_${app.variant}.tflite`));
}

async function classifyFiles(files) {
  setBusy(true);
  try {
    for (const file of files) {
      const card = element("div", { class: "card" });
      const image = element("img", { alt: file.name, title: file.name });
      image.src = URL.createObjectURL(file);
      const result = element("div", { class: "result" });
      card.append(image, result);
      $("results").prepend(card);
      try {
        renderScores(result, await classifyBlob(file));
      } catch (error) {
        result.append(element("div", { class: "fail" }, `${file.name}: could not read the image (${error.message || error})`));
      }
    }
    say(`${files.length} photo(s) classified with model_${app.variant}.tflite`);
  } finally {
    setBusy(false);
  }
}

// How far a score may lie from the Python runtime's: float files 1e-4; one quantization step
// for an integer output; a dynamic-range file quantizes its activations while it runs, and a
// value on a rounding edge may flip a step in one runtime and not the other (1.6e-3 seen).
function tolerance(variant, output) {
  if (output.dtype !== "float32") return output.scale * 1.01;
  return variant === "dynamic" ? 1e-2 : 1e-4;
}

// The export's golden images, run here and compared with the Python runtime's scores: the top
// class must agree and every score lie within the tolerance.
async function selfTest() {
  setBusy(true);
  const table = $("selftest-table");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  table.querySelector("caption").textContent = "running the golden images...";
  table.hidden = false;
  try {
    const { cases } = await (await fetch("golden/expected.json")).json();
    const allowed = tolerance(app.variant, app.quantization.output);
    const rows = [];
    for (const item of cases) {
      for (const key of ["input_size_", ""]) {
        const path = item[`${key}image`];
        const expected = item[`${key}scores`][app.variant];
        const { scores, ms, size } = await classifyBlob(await (await fetch(path)).blob());
        const diff = Math.max(...scores.map((s, i) => Math.abs(s - expected[i])));
        const top = ranking(scores, 1)[0][1];
        const want = ranking(expected, 1)[0][1];
        const pass = top === want && diff <= allowed;
        rows.push({ image: path, label: item.label, scores, expected, top, want, diff, ms, pass });
        const row = element("tr");
        const cell = element("td");
        cell.append(element("img", { src: path, alt: path }));
        row.append(cell, element("td", {}, size), element("td", {}, item.label));
        row.append(element("td", {}, app.labels[want]));
        row.append(element("td", {}, app.labels[top]), element("td", {}, diff.toExponential(1)));
        row.append(element("td", {}, ms.toFixed(1)), element("td", { class: pass ? "pass" : "fail" }, pass ? "pass" : "FAIL"));
        body.append(row);
      }
    }
    const passed = rows.filter((r) => r.pass).length;
    const summary = `self-test of model_${app.variant}.tflite: ${passed} of ${rows.length} checks pass`;
    table.querySelector("caption").textContent =
      `${summary} (${cases.length} golden images, each as stored, resized here, and at the input ` +
      `size; scores within ${allowed.toPrecision(2)} of the Python runtime's)`;
    app.lastSelfTest = { variant: app.variant, tolerance: allowed, rows, pass: passed === rows.length };
    say(summary);
  } catch (error) {
    fail(`self-test: ${error.message || error}`);
  } finally {
    setBusy(false);
  }
}

// Median latency of the model alone on one image, for benchmarks.
app.bench = async (runs = 50) => {
  const prep = app.record.preprocessing;
  const size = prep.height * prep.width * prep.channels;
  const data = app.quantization.input.dtype === "float32" ? new Float32Array(size) : new Uint8Array(size);
  const times = [];
  for (let i = 0; i < runs + 5; i++) {
    const input = new Tensor(data, [1, prep.height, prep.width, prep.channels]);
    const start = performance.now();
    const [output] = await app.model.run([input]);
    output.toTypedArray();
    const ms = performance.now() - start;
    input.delete();
    output.delete();
    if (i >= 5) times.push(ms);
  }
  times.sort((a, b) => a - b);
  return { variant: app.variant, runs, median_ms: times[Math.floor(runs / 2)] };
};

let stream = null;

async function toggleCamera() {
  const video = $("video");
  if (stream) {
    stream.getTracks().forEach((track) => track.stop());
    stream = null;
    $("live").hidden = true;
    $("camera").textContent = "Live camera";
    return;
  }
  if (!window.isSecureContext || !navigator.mediaDevices) {
    fail("the live camera needs a secure page (https, or http://localhost on this computer); use Take a photo instead");
    return;
  }
  stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
  video.srcObject = stream;
  await video.play();
  $("live").hidden = false;
  $("camera").textContent = "Stop camera";
  const loop = async () => {
    if (!stream) return;
    if (video.videoWidth && app.model) {
      const pixels = pixelsOf(video, video.videoWidth, video.videoHeight);
      renderScores($("live-result"), await classifyPixels(pixels, video.videoHeight, video.videoWidth));
    }
    setTimeout(loop, 250);
  };
  loop();
}

async function start() {
  app.record = await (await fetch("preprocess.json")).json();
  app.labels = (await (await fetch("labels.txt")).text()).split("\n").filter((line, i, all) => i < all.length - 1 || line);
  const prep = app.record.preprocessing;
  const name = app.record.source ? app.record.source.split("/").slice(-2, -1)[0] || app.record.source : "model";
  $("title").textContent = name;
  $("about").textContent =
    `${app.labels.length} classes (${app.labels.slice(0, 6).join(", ")}${app.labels.length > 6 ? ", ..." : ""}); ` +
    `input ${prep.height}x${prep.width} ${prep.channels === 3 ? "RGB" : "grey"}; runs on this device, nothing is uploaded`;
  $("address").textContent = location.href;
  $("secure").textContent = window.isSecureContext
    ? "This page is secure: the live camera is available."
    : "This page is not secure (plain http to another computer): the live camera is off; Choose photos and Take a photo work.";
  const select = $("variant");
  for (const variant of Object.keys(app.record.variants)) {
    select.append(element("option", { value: variant }, `model_${variant}.tflite`));
  }
  await loadLiteRt(new URL("runtime/", document.baseURI).href);
  await useVariant(select.value);
  select.addEventListener("change", () =>
    useVariant(select.value).catch((error) => {
      select.value = app.variant; // the file still loaded
      fail(error);
    }),
  );
  for (const id of ["photos", "snap"]) {
    $(id).addEventListener("change", (event) => classifyFiles([...event.target.files]).catch(fail));
  }
  $("selftest").addEventListener("click", () => selfTest());
  $("camera").addEventListener("click", () => toggleCamera().catch(fail));
}

app.ready = start().catch((error) => {
  setBusy(true);
  fail(error);
});
