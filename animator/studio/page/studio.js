// The studio page: a form built from the server's parameter declarations, the YAML beside it
// (both kept in sync through the server, which owns parsing and checking), preview, render with
// live frames, cancel, and the gallery of past renders.
"use strict";

const $ = (id) => document.getElementById(id);
const TERMINAL = ["done", "cancelled", "failed", "idle"];
let schema = null;        // {fields, transforms, noise, starter, folder, max_pixels, downloads, videos}
let config = {};          // the config as a mapping: what the form shows and the YAML says
let seen = 0;             // live frames already shown
let polling = null;
let yamlTimer = null;

// --- talking to the server ------------------------------------------------------------------

async function call(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
    headers: {"X-Studio": "1", "Content-Type": "application/json"},
  };
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.blob();
  if (!response.ok) throw Object.assign(new Error(data.message || response.statusText), {data});
  return data;
}

// --- key paths: "dream.steps", "transforms[0].zoom.factor" ----------------------------------

function getPath(object, path) {
  return path.split(".").reduce((node, key) => (node == null ? undefined : node[key]), object);
}

function setPath(object, path, value) {
  const keys = path.split(".");
  let node = object;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key];
  }
  const last = keys[keys.length - 1];
  if (value === undefined) delete node[last]; else node[last] = value;
  if (keys.length > 1 && Object.keys(node).length === 0) setPath(object, keys.slice(0, -1).join("."), undefined);
}

// --- widgets --------------------------------------------------------------------------------

function shown(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function parseLoose(text) {
  // a number, JSON (keyframes, lists, mappings), else the text itself (an expression)
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  if (!Number.isNaN(Number(trimmed))) return Number(trimmed);
  try { return JSON.parse(trimmed); } catch (error) { return trimmed; }
}

function widget(spec, path, onChange) {
  const kind = spec.kind;
  let element;
  let read;
  let write;
  if (kind === "bool") {
    element = document.createElement("input");
    element.type = "checkbox";
    read = () => element.checked;
    write = (value) => { element.checked = value === undefined ? Boolean(spec.default) : Boolean(value); };
  } else if (kind === "choice") {
    element = document.createElement("select");
    const choices = spec.choices || [];
    const empty = document.createElement("option");
    empty.value = "";
    empty.textContent = `(default: ${shown(spec.default) || "none"})`;
    element.append(empty);
    for (const choice of choices) {
      const option = document.createElement("option");
      option.value = JSON.stringify(choice);
      option.textContent = String(choice);
      element.append(option);
    }
    read = () => (element.value === "" ? undefined : JSON.parse(element.value));
    write = (value) => { element.value = value === undefined ? "" : JSON.stringify(value); };
  } else if (kind === "size") {
    element = document.createElement("span");
    element.className = "size";
    const [w, h] = ["width", "height"].map((name) => {
      const input = document.createElement("input");
      input.type = "number";
      input.placeholder = name;
      input.id = `f-${path}-${name}`;
      element.append(input, " ");
      return input;
    });
    read = () => (w.value === "" && h.value === "" ? undefined : [Number(w.value), Number(h.value)]);
    write = (value) => { w.value = value ? value[0] : ""; h.value = value ? value[1] : ""; };
  } else {
    element = document.createElement("input");
    element.type = kind === "integer" || kind === "number" ? "number" : "text";
    if (kind === "number") element.step = "any";
    if (spec.min !== undefined) element.min = spec.min;
    if (spec.max !== undefined) element.max = spec.max;
    element.placeholder = shown(spec.default);
    read = () => (element.type === "number" ? (element.value === "" ? undefined : Number(element.value))
      : kind === "text" ? (element.value === "" ? undefined : element.value) : parseLoose(element.value));
    write = (value) => { element.value = shown(value); };
  }
  if (element.tagName !== "SPAN") element.id = `f-${path}`;
  element.dataset.path = path;
  element.addEventListener("change", () => onChange(read()));
  return {element, write};
}

function row(label, spec, path, onChange, help) {
  const div = document.createElement("div");
  div.className = "field";
  div.dataset.field = path;
  const name = document.createElement("label");
  name.textContent = label;
  name.htmlFor = `f-${path}`;
  const made = widget(spec, path, onChange);
  const err = document.createElement("div");
  err.className = "err";
  err.dataset.path = path;
  div.append(name, made.element);
  if (help) {
    const note = document.createElement("div");
    note.className = "help";
    note.textContent = help;
    div.append(note);
  }
  div.append(err);
  return {div, write: made.write};
}

// --- the form -------------------------------------------------------------------------------

const writers = [];  // [path, write] for the config's fields

function buildForm() {
  const box = $("fields");
  const sections = {};
  for (const spec of schema.fields) {
    const dot = spec.path.indexOf(".");
    const group = dot < 0 ? "animation" : spec.path.slice(0, dot);
    if (!sections[group]) {
      sections[group] = document.createElement("fieldset");
      sections[group].innerHTML = `<legend>${group}</legend>`;
      box.append(sections[group]);
    }
    const label = dot < 0 ? spec.path : spec.path.slice(dot + 1);
    const made = row(label, spec, spec.path, (value) => { setPath(config, spec.path, value); formChanged(); },
      spec.help);
    sections[group].append(made.div);
    writers.push([spec.path, made.write]);
  }
  const add = $("add-transform");
  for (const transform of schema.transforms) {
    const option = document.createElement("option");
    option.value = transform.name;
    option.textContent = transform.name + (transform.origin === "built-in" ? "" : ` (${transform.origin})`);
    add.append(option);
  }
  add.addEventListener("change", () => {
    if (!add.value) return;
    config.transforms = [...(config.transforms || []), {[add.value]: {}}];
    add.value = "";
    fillForm();
    formChanged();
  });
  for (const radio of document.getElementsByName("input-kind")) radio.addEventListener("change", inputChanged);
  $("input-file").addEventListener("change", inputChanged);
  $("upload").addEventListener("change", upload);
}

function transformParts(item) {
  if (typeof item === "string") return [item, {}];
  const name = Object.keys(item || {})[0] || "?";
  return [name, item[name] || {}];
}

function buildTransforms() {
  const box = $("transforms");
  box.innerHTML = "";
  (config.transforms || []).forEach((item, index) => {
    const [name, params] = transformParts(item);
    const spec = schema.transforms.find((t) => t.name === name);
    const div = document.createElement("div");
    div.className = "transform";
    div.dataset.field = `transforms[${index}]`;
    const head = document.createElement("div");
    head.className = "head";
    head.innerHTML = `<b></b>`;
    head.querySelector("b").textContent = name;
    for (const [text, move] of [["↑", -1], ["↓", 1], ["✕", 0]]) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = text;
      button.addEventListener("click", () => moveTransform(index, move));
      head.append(button);
    }
    div.append(head);
    if (spec) {
      const help = document.createElement("div");
      help.className = "help";
      help.textContent = spec.help;
      div.append(help);
      for (const param of spec.params) {
        const path = `transforms[${index}].${name}.${param.name}`;
        const help = [param.type + (param.required ? " (required)" : ""), param.help].filter(Boolean);
        const made = row(param.name, param, path, (value) => setParam(index, name, param.name, value),
          help.join(": "));
        made.write(params[param.name]);
        div.append(made.div);
      }
    }
    const err = document.createElement("div");
    err.className = "err";
    err.dataset.path = `transforms[${index}]`;
    div.append(err);
    box.append(div);
  });
}

function setParam(index, name, param, value) {
  const [, params] = transformParts(config.transforms[index]);
  const next = {...params};
  if (value === undefined) delete next[param]; else next[param] = value;
  config.transforms[index] = {[name]: next};
  formChanged();
}

function moveTransform(index, move) {
  const list = config.transforms;
  const [item] = list.splice(index, 1);
  if (move !== 0) list.splice(Math.max(0, Math.min(list.length, index + move)), 0, item);
  if (list.length === 0) delete config.transforms;
  fillForm();
  formChanged();
}

function fillForm() {
  for (const [path, write] of writers) write(getPath(config, path));
  const input = config.input;
  const image = typeof input === "string";
  $("input-noise").checked = !image;
  $("input-image").checked = image;
  if (image) selectInput(input);
  buildTransforms();
}

function addOption(select, path) {
  const option = document.createElement("option");
  option.value = option.textContent = path;
  select.append(option);
}

function selectInput(path) {
  const select = $("input-file");
  if (![...select.options].some((o) => o.value === path)) addOption(select, path);
  select.value = path;
}

async function refreshInputs() {
  const select = $("input-file");
  const current = select.value;
  select.innerHTML = "";
  for (const path of await call("/api/inputs")) addOption(select, path);
  if (current) select.value = current;
}

function inputChanged() {
  if ($("input-image").checked && $("input-file").value) {
    config.input = $("input-file").value;
  } else if ($("input-noise").checked && typeof config.input === "string") {
    config.input = structuredClone(schema.noise);
  }
  formChanged();
}

async function upload() {
  const file = $("upload").files[0];
  if (!file) return;
  const body = new FormData();
  body.append("file", file);
  body.append("max_pixels", String(config.max_pixels || schema.max_pixels));
  const response = await fetch("/api/upload", {method: "POST", body, headers: {"X-Studio": "1"}});
  const data = await response.json();
  $("upload").value = "";
  if (!response.ok) {
    showProblems({message: data.message, problems: [{path: "input", message: data.message}]});
    return;
  }
  await refreshInputs();
  selectInput(data.path);
  $("input-image").checked = true;
  config.input = data.path;
  formChanged();
}

// --- keeping the form and the YAML in sync (the server parses, dumps and checks) -------------

async function formChanged() {
  const {yaml} = await call("/api/dump", {config});
  $("yaml").value = yaml;
  await check();
}

function yamlTyped() {
  clearTimeout(yamlTimer);
  yamlTimer = setTimeout(checkAndFill, 350);
}

async function checkAndFill() {
  if (await check()) fillForm();
}

async function check() {
  try {
    const result = await call("/api/check", {yaml: $("yaml").value, name: $("name").value});
    config = result.config;
    showProblems(result);
    if (result.ok) showSoundtrack();
    return true;
  } catch (error) {  // YAML that does not parse: the form keeps its last values
    showProblems({message: error.message, problems: []});
    return false;
  }
}

function showProblems(result) {
  for (const element of document.querySelectorAll(".err[data-path]")) element.textContent = "";
  for (const element of document.querySelectorAll(".bad")) element.classList.remove("bad");
  const general = [];
  for (const problem of result.problems || []) {
    const target = errorPlace(problem.path);
    if (target) {
      target.textContent += (target.textContent ? "\n" : "") + problem.message;
      target.closest(".field")?.classList.add("bad");
    } else {
      general.push(problem.message);
    }
  }
  if (!(result.problems || []).length && result.message) general.push(result.message);
  $("general-error").textContent = general.join("\n");
}

function errorPlace(path) {
  // the field's own place, else its nearest enclosing one: transforms[0].zoom.center[1] ->
  // transforms[0].zoom.center -> transforms[0].zoom -> transforms[0] -> transforms
  let key = path;
  while (key) {
    const found = [...document.querySelectorAll(".err[data-path]")].find((e) => e.dataset.path === key);
    if (found) return found;
    const cut = Math.max(key.lastIndexOf("."), key.lastIndexOf("["));
    key = cut > 0 ? key.slice(0, cut) : "";
  }
  return null;
}

// --- the soundtrack: its features' plot under the form, its sound with the frames -------------

let soundtrackKey = null;  // the audio: settings and fps whose plot is shown
let soundtrack = null;     // {url, start, fps} of the config's track, or null

async function showSoundtrack() {
  const key = JSON.stringify([config.audio ?? null, config.fps ?? null, config.frames ?? null]);
  if (key === soundtrackKey) return;
  soundtrackKey = key;
  const found = config.audio ? (await call("/api/soundtrack", {yaml: $("yaml").value, name: $("name").value})).audio : null;
  soundtrack = found;
  $("soundtrack").hidden = $("sound").hidden = !found;
  if (!found) return;
  $("audio-plot").src = found.plot;
  if ($("sound").getAttribute("src") !== found.url) $("sound").src = found.url;
}

function followSound() {  // while the sound plays, the live view shows the frame it has reached
  const sound = $("sound");
  if (!soundtrack || sound.paused) return;
  const index = Math.floor((sound.currentTime - soundtrack.start) * soundtrack.fps);
  const frame = $("film").querySelector(`img[data-index="${index}"]`);
  if (frame && $("latest").src !== frame.src) $("latest").src = frame.src;
  requestAnimationFrame(followSound);
}

// --- preview, render, cancel ----------------------------------------------------------------

async function preview() {
  $("state").textContent = "dreaming a preview (first frame, reduced size)…";
  try {
    const png = await call("/api/preview", {yaml: $("yaml").value});
    $("latest").src = URL.createObjectURL(png);
    $("state").textContent = "preview: the first frame at a reduced size";
  } catch (error) {
    $("state").textContent = "preview failed";
    showProblems(error.data || {message: error.message});
  }
}

async function render(mode) {
  $("message").textContent = "";
  try {
    await call("/api/render", {yaml: $("yaml").value, name: $("name").value, mode});
  } catch (error) {
    showProblems(error.data || {message: error.message});
    $("message").textContent = error.message;
    return;
  }
  seen = 0;
  $("film").innerHTML = "";
  $("result").innerHTML = "";
  watch();
}

function watch() {  // a render runs: poll its progress and frames
  running(true);
  polling = setInterval(poll, 400);
}

function running(busy) {
  for (const id of ["preview", "start", "resume", "force"]) $(id).disabled = busy;
  $("cancel").disabled = !busy;
}

function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

async function poll() {
  const status = await call(`/api/status?since=${seen}`);
  for (const index of status.frames) {
    if (index < seen) continue;
    const img = document.createElement("img");
    img.className = "frame";
    img.dataset.index = index;
    img.src = `/api/live/${index}.png?render=${encodeURIComponent(status.name)}`;
    img.alt = `frame ${index}`;
    $("film").append(img);
    $("latest").src = img.src;
    seen = index + 1;
  }
  $("progress").max = status.total || 1;
  $("progress").value = status.done || 0;
  const rate = status.seconds_per_frame ? ` · ${status.seconds_per_frame.toFixed(1)} s/frame` : "";
  const eta = status.eta != null && status.state === "running" ? ` · ETA ${clock(status.eta)}` : "";
  $("state").textContent = `${status.state}: ${status.name || ""} frame ${status.done || 0}/${status.total || 0}${rate}${eta}`;
  $("state").dataset.state = status.state;
  $("message").textContent = [status.message, ...(status.notes || [])].filter(Boolean).join("\n");
  if (TERMINAL.includes(status.state)) {
    clearInterval(polling);
    polling = null;
    running(false);
    if (status.state !== "failed") showResult(status.name);
    refreshGallery();
  }
}

function links(name) {
  return schema.downloads.map((kind) =>
    `<a href="/api/download/${encodeURIComponent(name)}.${kind}" download id="download-${kind}"
       data-name="${encodeURIComponent(name)}" data-kind="${kind}">${kind.toUpperCase()}</a>`).join(" ");
}

// A download only reads (a GET changes nothing on disk): a video the render did not make is
// assembled first by a POST, then the link downloads it.
async function make(name, kind) {
  if (kind !== "yaml") await call(`/api/make/${name}.${kind}`, {});
  return `/api/download/${name}.${kind}`;
}

function wireLinks(box) {
  for (const link of box.querySelectorAll("a[data-kind]")) {
    link.addEventListener("click", async (event) => {
      if (link.dataset.made) return;  // made just now: let the browser download it
      event.preventDefault();
      try {
        await make(link.dataset.name, link.dataset.kind);
        link.dataset.made = "1";
        link.click();
      } catch (error) {
        $("message").textContent = error.message;
      }
    });
  }
}

function showResult(name) {
  $("result").innerHTML = `<p>${links(name)}</p>`;
  wireLinks($("result"));
}

// --- gallery --------------------------------------------------------------------------------

let renders = [];

async function refreshGallery() {
  renders = await call("/api/renders");
  const box = $("gallery");
  box.innerHTML = "";
  for (const item of renders) {
    const card = document.createElement("div");
    card.className = "card";
    card.dataset.name = item.name;
    const thumb = item.thumb ? `<img src="/files/${item.thumb}" alt="${item.name}">` : "";
    card.innerHTML = `${thumb}<div><label><input type="checkbox" class="pick"> <b></b></label>
      ${item.frames} frames</div><div class="links"><button type="button" class="open">Open</button>
      ${links(item.name)}</div>`;
    card.querySelector("b").textContent = item.name;
    card.querySelector(".open").addEventListener("click", () => openRender(item));
    card.querySelector(".pick").addEventListener("change", compare);
    wireLinks(card);
    box.append(card);
  }
}

async function openRender(item) {
  $("yaml").value = item.yaml;
  $("name").value = item.name;
  await checkAndFill();
}

async function compare() {
  const picked = [...document.querySelectorAll(".pick:checked")].map((box) => box.closest(".card").dataset.name);
  const box = $("compare");
  box.innerHTML = "";
  if (picked.length !== 2) return;
  const [a, b] = picked.map((name) => renders.find((r) => r.name === name));
  for (const [item, other] of [[a, b], [b, a]]) {
    const others = new Set(other.yaml.split("\n"));
    const column = document.createElement("div");
    const lines = item.yaml.split("\n").map((line) => {
      const span = document.createElement("span");
      span.textContent = line + "\n";
      if (!others.has(line)) span.className = "diff";
      return span;
    });
    let source;
    try {
      source = await make(encodeURIComponent(item.name), item.shown);
    } catch (error) {
      $("message").textContent = error.message;
      return;
    }
    const view = schema.videos.includes(item.shown) ? `<video src="${source}" autoplay loop muted playsinline></video>`
      : `<img src="${source}" alt="">`;
    column.innerHTML = `<h3></h3>${view}<pre></pre>`;
    column.querySelector("h3").textContent = item.name;
    column.querySelector("pre").append(...lines);
    box.append(column);
  }
}

// --- start ----------------------------------------------------------------------------------

async function start() {
  schema = await call("/api/form");
  $("folder").textContent = `renders in ${schema.folder}`;
  buildForm();
  await refreshInputs();
  $("yaml").value = schema.starter;
  $("yaml").addEventListener("input", yamlTyped);
  $("preview").addEventListener("click", preview);
  $("sound").addEventListener("play", followSound);
  $("start").addEventListener("click", () => render("new"));
  $("resume").addEventListener("click", () => render("resume"));
  $("force").addEventListener("click", () => render("force"));
  $("cancel").addEventListener("click", () => call("/api/cancel", {}));
  await checkAndFill();
  await refreshGallery();
  const status = await call("/api/status");
  if (!TERMINAL.includes(status.state)) watch();
  document.body.dataset.ready = "1";
}

start();
