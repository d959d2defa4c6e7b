"""Hidden units made visible: record a<t> (and c<t>, and the gates) of every recurrent layer while a
model reads a text, then

* rank units by how well they track simple features of the text (|Pearson correlation|):
  position in the line, inside quotes, inside brackets, and token length;
* measure gate saturation: the share of gate values below 0.1 or above 0.9;
* write a self-contained HTML page that colours each token by a chosen unit's value, and shows the
  model's top predictions at each step on hover (a language model's next-token guesses, a tagger's tags).

Works for any text model through its task's ``inspect_forward(model, text, device)``, which runs the
model (inside the recording) and returns the tokens it read and per-token predictions (or None).
"""

from __future__ import annotations

import base64
import json

import torch

from .recording import recording

FEATURES = ("position in line", "position in word", "inside quotes", "inside brackets", "token length")


LINE_ENDS = ("\n", "<EOS>")  # a language model's line break: a "\n" token, or <EOS> where lines are sentences
MIN_TOKENS = 10  # fewer: any two or three points correlate near ±1, and a ranking would claim what it cannot know


def text_features(tokens: list[str], level: str = "char") -> dict[str, list[float]]:
    """Per token: characters since the last line break and since the last space, inside "..." quotes,
    inside (...) [...] brackets, and the token's length (0 for a line end).

    ``level`` says how the tokens make the text: "char" (each token is its characters), "bpe" (a
    piece's "▁" is a space) or "word" (words and punctuation, a space between two tokens). A line
    end (``LINE_ENDS``) starts a new line. A token is inside quotes or brackets when the text is at
    its first character after any opening mark it starts with (``"great"`` is quoted)."""
    position, in_word, quoted, depth = 0, 0, False, 0
    out = {name: [] for name in FEATURES}
    for i, token in enumerate(tokens):
        line_end = token in LINE_ENDS
        text = "\n" if line_end else token.replace("\u2581", " ") if level == "bpe" else token
        if level == "word":
            in_word = 0  # every word token starts a word
            if i and not line_end and tokens[i - 1] not in LINE_ENDS:
                position += 1  # the space before it
        elif level == "bpe" and text.startswith(" "):  # a piece that starts a word: its space comes before it
            position, in_word, text = position + (position > 0), 0, text[1:]
        opening = len(text) - len(text.lstrip('"([{'))
        inside_quotes, inside_brackets = quoted, depth > 0
        out["position in line"].append(float(position))
        out["position in word"].append(float(in_word))
        out["token length"].append(0.0 if line_end else float(len(token)))
        for j, ch in enumerate(text):
            if ch == "\n":
                position, in_word = 0, 0
            else:
                position += 1
                in_word = 0 if ch == " " else in_word + 1
            if ch == '"':
                quoted = not quoted
            elif ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth = max(0, depth - 1)
            if j + 1 == opening and opening < len(text):  # past the marks a token opens with: the state at its first letter
                inside_quotes, inside_brackets = quoted, depth > 0
        out["inside quotes"].append(float(inside_quotes))
        out["inside brackets"].append(float(inside_brackets))
    return out


def _each_line_reversed(items: list, tokens: list[str]) -> list:
    """``items`` (one per token of ``tokens``) with each line's in the other order, its line end
    (``LINE_ENDS``) kept last: a reversed language model's reading order to the text's and back."""
    out, start = [], 0
    for i, token in enumerate(tokens):
        if token in LINE_ENDS:
            out += [*items[start:i][::-1], items[i]]
            start = i + 1
    return out + items[start:][::-1]


def features_as_read(tokens: list[str], level: str = "char", backwards: bool = False) -> dict[str, list[float]]:
    """``text_features`` of the text that ``tokens`` make, each at the step its token was read.
    ``backwards``: the tokens are as a reversed language model read them (``rnnkit train lm
    --reverse``: each line from its end), so the features are those of the text as written, not of
    the reversed tokens (where ")" opens a bracket before "(" closes it)."""
    if not backwards:
        return text_features(tokens, level)
    written = _each_line_reversed(tokens, tokens)
    return {name: _each_line_reversed(values, tokens) for name, values in text_features(written, level).items()}


def correlation(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each column of x (T, n) with y (T,); 0 where either is constant."""
    x = x - x.mean(0)
    y = y - y.mean()
    denominator = x.norm(dim=0) * y.norm()
    return torch.where(denominator > 0, (x * y[:, None]).sum(0) / denominator.clamp(min=1e-12), torch.zeros_like(denominator))


def inspect(task, model, text: str, device="cpu", top_units: int = 8) -> dict:
    """Everything the report shows, as plain data (JSON-able)."""
    model.eval()
    with torch.no_grad(), recording(model) as rec:
        tokens, predictions = task.inspect_forward(model, text, device)
    kind = getattr(getattr(task, "tokenizer", None), "kind", "word")  # taggers read words
    level = kind if kind in ("char", "bpe") else "word"
    backwards = bool(getattr(getattr(task, "data", None), "reverse", False))  # a language model trained with --reverse
    features = {name: torch.tensor(values) for name, values in features_as_read(tokens, level, backwards).items()}
    layers, skipped = [], []
    for key in rec.keys():
        states = rec.in_time_order(key, torch.stack([s[0] for s in rec.states[key]]))[:, 0].float().cpu()  # (T, n_a)
        if states.shape[0] != len(tokens):  # a layer over other steps (a tagger's characters): not token by token
            skipped.append(f"{key[0]}.{key[1]}")
            continue
        T = len(tokens)
        layer = {"name": f"{key[0]}.{key[1]}" if key[0] else key[1], "units": states.shape[1], "a": [[round(v, 4) for v in row] for row in states.tolist()]}
        if len(rec.states[key][0]) > 1:
            cells = rec.in_time_order(key, torch.stack([s[1] for s in rec.states[key]]))[:T, 0].float().cpu()
            layer["c"] = [[round(v, 4) for v in row] for row in cells.tolist()]
        ranking = {}
        for name, values in features.items():
            if T < MIN_TOKENS or values[:T].std() == 0:  # too few points, or constant over this text: says nothing
                continue
            r = correlation(states, values[:T])
            best = torch.argsort(r.abs(), descending=True)[:top_units].tolist()
            ranking[name] = [{"unit": u, "r": round(float(r[u]), 3)} for u in best]
        layer["ranking"] = ranking
        saturation = {}
        for gate, steps in rec.gates[key].items():
            values = torch.stack(steps)[:T, 0].float().cpu()
            saturation[gate] = {"below 0.1": round(float((values < 0.1).float().mean()), 4), "above 0.9": round(float((values > 0.9).float().mean()), 4), "mean": round(float(values.mean()), 4)}
        layer["gate_saturation"] = saturation
        layers.append(layer)
    return {"text": text, "tokens": tokens, "predictions": predictions, "layers": layers, "skipped_layers": skipped}


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rnnkit: hidden units</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
#text {{ font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.9; border: 1px solid #ccc; padding: .8em; }}
#text span {{ padding: 1px 0; }}
table {{ border-collapse: collapse; margin: .5em 0 1em; font-size: 90%; }}
td, th {{ border: 1px solid #ddd; padding: 2px 8px; text-align: right; }}
th {{ background: #f4f4f4; }}
#tip {{ position: fixed; background: #fffbe6; border: 1px solid #aaa; padding: 4px 8px; font-size: 85%; display: none; pointer-events: none; }}
</style></head>
<body>
<h1>Hidden units</h1>
<p>Each token is coloured by the chosen unit's activation a&lt;t&gt; (blue negative, red positive). Hover a token for the model's top predictions there.</p>
<p>Layer <select id="layer"></select> unit <select id="unit"></select> <span id="value"></span></p>
<div id="text"></div>
<div id="tip"></div>
<h2>Units that track simple features (|Pearson r|)</h2>
<div id="ranking"></div>
<h2>Gate saturation</h2>
<div id="saturation"></div>
<script id="data" type="application/json">{data}</script>
<script>
const report = JSON.parse(document.getElementById("data").textContent);
report.layers.forEach(l => {{  // int8 steps of l.a.scale, row after row
  const bytes = Uint8Array.from(atob(l.a.base64), ch => ch.charCodeAt(0)), q = new Int8Array(bytes.buffer);
  const rows = [];
  for (let t = 0; t < l.a.rows; t++) rows.push(Array.from(q.subarray(t * l.a.columns, (t + 1) * l.a.columns), v => v * l.a.scale));
  l.a = rows;
}});
const layerSelect = document.getElementById("layer"), unitSelect = document.getElementById("unit");
const textDiv = document.getElementById("text"), tip = document.getElementById("tip");
report.layers.forEach((l, i) => layerSelect.add(new Option(l.name + " (" + l.units + " units)", i)));
const spans = report.tokens.map((tok, t) => {{
  const s = document.createElement("span");
  s.textContent = tok === "\\n" ? "\\u21b5\\n" : tok;
  s.dataset.t = t;
  s.addEventListener("mousemove", e => {{
    const p = report.predictions ? report.predictions[t] : null;
    const layer = report.layers[+layerSelect.value], u = +unitSelect.value;
    const a = layer.a[t] ? layer.a[t][u] : undefined;
    tip.innerHTML = "<b>" + escape(tok) + "</b> a = " + (a === undefined ? "-" : a.toFixed(3)) +
      (p ? "<br>" + p.map(x => escape(x[0]) + " " + (100 * x[1]).toFixed(1) + "%").join("<br>") : "");
    tip.style.left = (e.clientX + 12) + "px"; tip.style.top = (e.clientY + 12) + "px"; tip.style.display = "block";
  }});
  s.addEventListener("mouseleave", () => tip.style.display = "none");
  textDiv.appendChild(s);
  return s;
}});
function escape(s) {{ return String(s).replace(/[&<>]/g, c => ({{"&": "&amp;", "<": "&lt;", ">": "&gt;"}})[c]).replace("\\n", "\\u21b5"); }}
function colour(v) {{
  const x = Math.max(-1, Math.min(1, v)), k = Math.round(255 * (1 - Math.abs(x)));
  return x >= 0 ? `rgb(255,${{k}},${{k}})` : `rgb(${{k}},${{k}},255)`;
}}
function fillUnits() {{
  const layer = report.layers[+layerSelect.value];
  unitSelect.innerHTML = "";
  const ranked = new Set();
  Object.values(layer.ranking).forEach(list => list.forEach(x => ranked.add(x.unit)));
  [...ranked, ...Array.from({{length: layer.units}}, (_, i) => i).filter(i => !ranked.has(i))]
    .forEach(u => unitSelect.add(new Option(u, u)));
  paint();
  const rows = Object.entries(layer.ranking).map(([f, list]) => "<tr><th>" + f + "</th>" + list.map(x => "<td>unit " + x.unit + ": " + x.r.toFixed(2) + "</td>").join("") + "</tr>");
  document.getElementById("ranking").innerHTML = "<table>" + rows.join("") + "</table>";
  const gates = Object.entries(layer.gate_saturation);
  document.getElementById("saturation").innerHTML = gates.length ?
    "<table><tr><th>gate</th><th>below 0.1</th><th>above 0.9</th><th>mean</th></tr>" + gates.map(([g, s]) =>
      `<tr><th>${{g}}</th><td>${{(100 * s["below 0.1"]).toFixed(1)}}%</td><td>${{(100 * s["above 0.9"]).toFixed(1)}}%</td><td>${{s.mean.toFixed(3)}}</td></tr>`).join("") + "</table>"
    : "<p>This cell has no gates.</p>";
}}
function paint() {{
  const layer = report.layers[+layerSelect.value], u = +unitSelect.value;
  spans.forEach((s, t) => s.style.background = layer.a[t] ? colour(layer.a[t][u]) : "none");
  document.getElementById("value").textContent = "";
}}
layerSelect.addEventListener("change", fillUnits);
unitSelect.addEventListener("change", paint);
fillUnits();
</script>
</body></html>
"""


def _quantized(rows: list[list[float]]) -> dict:
    """Values as int8 steps of max|v|/127, base64-encoded row after row: a page of hundreds of units
    over hundreds of tokens stays small (the page decodes them)."""
    values = torch.tensor(rows, dtype=torch.float32)
    scale = float(values.abs().max()) / 127 or 1.0
    data = torch.round(values / scale).clamp(-127, 127).to(torch.int8).numpy().tobytes()
    return {"scale": scale, "rows": len(rows), "columns": values.shape[1] if rows else 0, "base64": base64.b64encode(data).decode()}


def render_html(report: dict) -> str:
    compact = dict(report)
    compact["layers"] = [
        {**{k: v for k, v in layer.items() if k not in ("a", "c")}, "a": _quantized(layer["a"])} for layer in report["layers"]
    ]
    # every "<" as \u003c: inside a <script>, "</script" ends it and "<!--<script" makes the parser swallow
    # the page's own script (HTML's "script data double escaped" state); JSON reads \u003c back as "<"
    data = json.dumps(compact, ensure_ascii=False).replace("<", "\\u003c")
    return PAGE.format(data=data)

