// The page: send each non-empty line to POST /predict, show the category and the entities inline.
"use strict";

// displaCy's colours for the common types; other types take the next free colour of the palette.
const KNOWN = { PER: "#aa9cfc", PERSON: "#aa9cfc", ORG: "#7aecec", LOC: "#ff9561", GPE: "#feca74", MISC: "#bfe1d9" };
const PALETTE = ["#feca74", "#c887fb", "#9cc9cc", "#ff8197", "#bfeeb7", "#ffeb80", "#e4e7d2", "#f0d0ff", "#e5a9a0", "#ddd"];
const colours = new Map(Object.entries(KNOWN));

function colourOf(label) {
  if (!colours.has(label)) colours.set(label, PALETTE[(colours.size - Object.keys(KNOWN).length) % PALETTE.length]);
  return colours.get(label);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// The sentence as text nodes and <mark> elements; textContent only, so no input is ever read as HTML.
function highlighted(result) {
  const sentence = element("div", "sentence");
  let position = 0;
  for (const entity of [...(result.entities || [])].sort((a, b) => a.start - b.start)) {
    sentence.append(result.text.slice(position, entity.start));
    const mark = element("mark", "entity", result.text.slice(entity.start, entity.end));
    mark.dataset.label = entity.label;
    mark.style.background = colourOf(entity.label);
    mark.title = `${entity.label} ${entity.score.toFixed(2)}`;
    mark.append(element("span", "entity-label", entity.label));
    sentence.append(mark);
    position = entity.end;
  }
  sentence.append(result.text.slice(position));
  return sentence;
}

function scored(item) {
  return [element("span", "label", item.label), " ", element("span", "score", item.score.toFixed(2))];
}

// What the other tasks add: a label and score ({label, score}), labels with scores ([{label, score}, ...]),
// or entities ([{text, label, start, end, score}, ...]); each on a line of its own, named by its key.
function extra(key, value) {
  const line = element("p", "category extra");
  line.dataset.key = key;
  line.append(element("span", "task", key === "labels" ? "" : `${key}: `));
  const items = Array.isArray(value) ? value : [value];
  items.forEach((item, index) => {
    if (index) line.append(" · ");
    if (item.start !== undefined) line.append(`${item.text} [${item.label}]`);
    else line.append(...scored(item));
  });
  if (!items.length) line.append("—");
  return line;
}

const SHOWN = new Set(["text", "label", "score", "entities", "windows"]);

function card(result) {
  const box = element("article", "result");
  if (result.label !== undefined) {
    const category = element("p", "category");
    category.append(...scored(result));
    box.append(category);
  }
  for (const [key, value] of Object.entries(result)) {
    if (!SHOWN.has(key) && value && typeof value === "object") box.append(extra(key, value));
  }
  box.append(highlighted(result));
  return box;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message;
  box.hidden = !message;
}

async function predict() {
  const texts = document.getElementById("text").value.split(/\r?\n/).filter((line) => line.trim());
  const results = document.getElementById("results");
  showError("");
  try {
    const response = await fetch("/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ texts }),
    });
    const body = await response.json().catch(() => ({ detail: `${response.status} ${response.statusText}` }));
    if (!response.ok) {
      results.replaceChildren();
      showError(`The server refused the input: ${body.detail}`);
      return;
    }
    results.replaceChildren(...body.map(card));
  } catch (error) {
    showError(`Could not reach the server: ${error.message}`);
  }
}

async function describeModel() {
  const response = await fetch("/info");
  if (!response.ok) return;
  const info = await response.json();
  const tasks = info.tasks.map((task) => `${task.name} (${task.type})`).join(", ");
  document.getElementById("model").textContent = `${info.model} · ${tasks} · mtst ${info.version}`;
}

document.getElementById("predict").addEventListener("click", predict);
document.getElementById("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) predict();
});
describeModel();
