// The rnnkit playground: pick a model, give it input, see the answer drawn the way a person wants it.
// No libraries: the page talks to this server's JSON API only. URL parameters (?model=NAME&verb=tag&text=...&run=1)
// fill the form and run it, so that a result can be linked to (and tested in a headless browser).
"use strict";

const $ = (id) => document.getElementById(id);
const result = $("result");
let models = [];

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key === "style") node.style.cssText = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

async function call(verb, body) {
  const response = await fetch(`/api/${verb}`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function current() { return models.find((m) => m.name === $("model").value); }

function texts() {
  // every line as typed (a character model reads its spaces), blank ones left out; past the server's limit it answers with what the limit is
  return $("text").value.split("\n").map((t) => t.replace(/\r$/, "")).filter((t) => t.trim());
}

function number(id) { const v = $(id).value; return v === "" ? null : Number(v); }

// -- what to show for each kind of run ------------------------------------------------------------------
const PANELS = { lm: ["text-input", "options-generate"], tagger: ["text-input"], classifier: ["text-input"], seq2seq: ["text-input", "options-translate"], music: ["options-compose"] };
const REQUESTS = {
  tag: () => ({ texts: texts() }),
  classify: () => ({ texts: texts() }),
  score: () => ({ texts: texts() }),
  translate: () => ({ texts: texts(), beam: number("beam"), nbest: number("nbest") }),
  generate: () => ({ num: number("num"), temperature: number("temperature"), top_k: number("top_k"), top_p: number("top_p"),
                     max_length: number("max_length"), prime: $("prime").value, seed: number("seed") }),
  compose: () => ({ steps: number("steps"), num: number("pieces"), temperature: number("compose_temperature"), seed: number("compose_seed") }),
};

function showModel() {
  const model = current();
  if (!model) return;
  for (const panel of document.querySelectorAll(".panel")) panel.style.display = PANELS[model.task].includes(panel.id) ? "" : "none";
  // left empty, the beam is the run's own (as rnnkit translate RUN decodes): shown, not sent
  $("beam").placeholder = model.data && model.data.beam ? `${model.data.beam} (the run's)` : "the run's";
  const shown = Object.entries(model.metrics || {}).filter(([k, v]) => typeof v === "number" && /^(test|best)_/.test(k));
  const info = shown.slice(0, 3).map(([k, v]) => `${k.replaceAll("_", " ")} ${Number.isInteger(v) ? v : v.toFixed(3)}`);
  $("model-info").textContent = `${model.task}, ${model.model.cell} ${model.model.hidden_size}` + (info.length ? ` — ${info.join(", ")}` : "");
  const buttons = $("buttons");
  buttons.replaceChildren();
  for (const verb of Object.keys(model.verbs)) {
    buttons.append(el("button", { id: `run-${verb}`, title: model.verbs[verb] }, verb));
    buttons.lastChild.onclick = () => run(verb);
  }
}

function fail(message) {
  result.replaceChildren(el("p", { class: "error" }, message));
  result.dataset.state = "error";
}

async function run(verb) {
  const model = current();
  const has = (table, key) => Object.prototype.hasOwnProperty.call(table, key);  // not "in": a link's verb=toString is no verb
  if (!model || !has(model.verbs, verb) || !has(REQUESTS, verb)) {  // a link (?verb=...) may name any verb
    return fail(`${model ? model.name : "this model"} does not answer "${verb}"; it answers: ${model ? Object.keys(model.verbs).join(", ") : "nothing"}`);
  }
  const body = { model: model.name, ...REQUESTS[verb]() };
  for (const key of Object.keys(body)) if (body[key] === null) delete body[key];
  if ("texts" in body && body.texts.length === 0) return fail("type some text first, one input per line");
  result.dataset.state = "running";
  result.replaceChildren(el("p", {}, "…"));
  try {
    const data = await call(verb, body);
    result.replaceChildren(...RENDER[verb](data));
    result.dataset.state = "done";
    result.dataset.verb = verb;
  } catch (error) {
    fail(error.message);
  }
}

// -- drawing the answers ----------------------------------------------------------------------------
function tagged(r) {
  const line = el("p", { class: "tagged" });
  let i = 0;
  for (const span of r.entities) {
    if (span.start > i) line.append(r.tokens.slice(i, span.start).join(" ") + " ");
    line.append(el("mark", { class: "entity", "data-type": span.type }, span.text, el("span", { class: "etype" }, span.type)), " ");
    i = span.end;
  }
  if (i < r.tokens.length) line.append(r.tokens.slice(i).join(" "));
  const table = el("details", {}, el("summary", {}, "tags per token"), r.tokens.map((t, k) => `${t}/${r.tags[k]}`).join("  "));
  return el("div", { class: "item" }, line, table);
}

function bars(probabilities) {
  const box = el("div", { class: "bars" });
  let first = true;
  // most likely first, ordered here: JavaScript lists an object's integer-like keys ("1" ... "5") in ascending order
  for (const [label, p] of Object.entries(probabilities).sort((a, b) => b[1] - a[1])) {
    box.append(el("div", { class: "bar-row" + (first ? " best" : "") }, el("span", { class: "bar-label" }, label),
      el("div", { class: "bar-track" }, el("div", { class: "bar", style: `width: ${(100 * p).toFixed(1)}%` })), `${(100 * p).toFixed(1)}%`));
    first = false;
  }
  return box;
}

function attentionPicture(source, target, weights) {
  const cell = 26, left = 90, top = 70;
  const canvas = el("canvas", { class: "attention", width: left + cell * source.length + 10, height: top + cell * target.length + 10 });
  const ctx = canvas.getContext("2d");
  ctx.font = "12px sans-serif";
  weights.forEach((row, t) => row.forEach((w, s) => {
    const shade = Math.round(255 * (1 - w));
    ctx.fillStyle = `rgb(${shade}, ${shade}, 255)`;
    ctx.fillRect(left + s * cell, top + t * cell, cell - 1, cell - 1);
  }));
  ctx.fillStyle = "#222";
  target.forEach((token, t) => ctx.fillText(token.slice(0, 12), 4, top + t * cell + 17));
  source.forEach((token, s) => { ctx.save(); ctx.translate(left + s * cell + 16, top - 6); ctx.rotate(-Math.PI / 3); ctx.fillText(token.slice(0, 12), 0, 0); ctx.restore(); });
  return canvas;
}

function play(piece, stepSeconds) {
  const audio = new (window.AudioContext || window.webkitAudioContext)();
  const start = audio.currentTime + 0.1;
  piece.steps.forEach((pitches, t) => pitches.forEach((pitch) => {
    const held = t > 0 && piece.steps[t - 1].includes(pitch);
    if (held) return;
    let length = 1;
    while (t + length < piece.steps.length && piece.steps[t + length].includes(pitch)) length++;
    const osc = audio.createOscillator(), gain = audio.createGain();
    osc.type = "triangle";
    osc.frequency.value = 440 * Math.pow(2, (pitch - 69) / 12);
    gain.gain.setValueAtTime(0.08, start + t * stepSeconds);
    gain.gain.exponentialRampToValueAtTime(0.001, start + (t + length) * stepSeconds);
    osc.connect(gain).connect(audio.destination);
    osc.start(start + t * stepSeconds);
    osc.stop(start + (t + length) * stepSeconds);
  }));
}

const RENDER = {
  tag: (data) => data.results.map(tagged),
  classify: (data) => data.results.map((r) => el("div", { class: "item" }, el("p", {}, el("b", {}, r.label), " — ", r.text), bars(r.probabilities))),
  score: (data) => data.results.map((r) => el("div", { class: "item" },
    el("p", {}, ...r.tokens.map((t) => el("span", { class: "token", title: `P = ${t.prob.toFixed(4)}`, style: `background: rgba(46, 160, 67, ${t.prob.toFixed(3)})` }, t.token === " " ? "␣" : t.token)), " "),
    el("p", {}, `log P = ${r.log_prob.toFixed(3)}, perplexity ${r.perplexity.toFixed(2)}`))),
  generate: (data) => [el("div", { class: "item" }, ...data.samples.map((s) =>
    el("p", { class: "sample" }, s.text, el("span", { class: `badge ${s.novel ? "novel" : "seen"}` }, s.novel ? "novel" : "seen in training")))),],
  translate: (data) => data.results.map((r) => el("div", { class: "item" }, el("p", {}, r.text),
    ...r.translations.map((h, k) => el("div", {}, el("p", {}, el("b", {}, h.text), ` (score ${h.score.toFixed(3)})`),
      ...(k === 0 && h.attention ? [attentionPicture(r.source_tokens, h.tokens, h.attention)] : []))))),
  compose: (data) => data.pieces.map((piece, k) => {
    const button = el("button", {}, "play");
    button.onclick = () => play(piece, data.step_seconds);
    return el("div", { class: "item piece" }, el("p", {}, `piece ${k + 1}: ${piece.num_steps} steps, ${piece.notes} note-steps`),
      ...(piece.png_base64 ? [el("img", { src: `data:image/png;base64,${piece.png_base64}`, alt: "piano roll" })] : []),
      el("p", {}, button, el("a", { href: `data:audio/midi;base64,${piece.midi_base64}`, download: `piece-${k + 1}.mid` }, "download MIDI")));
  }),
};

// -- start -----------------------------------------------------------------------------------------
$("upload").onchange = async (event) => { const file = event.target.files[0]; if (file) $("text").value = await file.text(); };
$("model").onchange = showModel;

(async function start() {
  try {
    models = (await (await fetch("/api/models")).json()).models;
  } catch (error) {
    result.replaceChildren(el("p", { class: "error" }, `cannot list the models: ${error.message}`));
    return;
  }
  for (const m of models) $("model").append(el("option", { value: m.name }, `${m.name} (${m.task})`));
  const params = new URLSearchParams(location.search);
  if (params.has("model")) {
    $("model").value = params.get("model");
    if (!current()) return fail(`no model named "${params.get("model")}" here; the server has: ${models.map((m) => m.name).join(", ")}`);
  }
  if (params.has("text")) $("text").value = params.get("text");
  showModel();
  if (params.get("run") && current()) run(params.get("verb") || Object.keys(current().verbs)[0]);
})();
