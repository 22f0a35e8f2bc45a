// The Classify panel: a question or a clip in, the label, confidence, members' votes and the
// questions found out; "right" / "wrong" send the answer back as feedback.
import { api } from "./api.js";
import { $, el, clear, fillTable, num, pct, showError, showStatus } from "./ui.js";

let last = null; // {text, answer} of the latest classification

function render(text, a) {
  last = { text, answer: a };
  $("cls-result").hidden = false;
  const label = $("cls-label");
  label.textContent = a.classification;
  label.className = "label " + a.classification;
  $("cls-confidence").textContent = "confidence " + pct(a.confidence);
  $("cls-model-used").textContent = a.model_type + " " + a.model_version + ", " +
    num(a.processing_time_ms, 2) + " ms";
  const probs = clear($("cls-probs"));
  for (const [lab, p] of Object.entries(a.probabilities || {})) {
    probs.append(el("div", { class: "row" }, el("span", { class: "label-name" }, lab),
      el("span", { class: "bar", style: "width:" + Math.round(160 * p) + "px" }), pct(p)));
  }
  const d = a.ensemble_details;
  $("cls-votes-title").hidden = !d;
  $("cls-votes").hidden = !d;
  if (d) {
    $("cls-votes-title").textContent = "Members' votes (" + d.agreement + " agree, " +
      d.voting_strategy + ")";
    fillTable($("cls-votes"), ["member", "vote", { v: "confidence", cls: "num" },
      { v: "weight", cls: "num" }],
      d.members.map((m) => [m.name, m.classification, { v: pct(m.confidence), cls: "num" },
        { v: num(m.weight ?? m.coefficient, 3), cls: "num" }]));
  }
  const qs = a.questions || [];
  $("cls-questions-title").hidden = qs.length === 0;
  $("cls-questions").hidden = qs.length === 0;
  if (qs.length)
    fillTable($("cls-questions"), ["question", "label", { v: "confidence", cls: "num" },
      { v: "chars", cls: "num" }],
      qs.map((q) => [q.text, q.classification, { v: pct(q.confidence), cls: "num" },
        { v: q.start + "–" + q.end, cls: "num" }]));
  // "wrong" with more than two labels needs to know which one is right.
  const others = Object.keys(a.probabilities || {}).filter((l) => l !== a.classification);
  const sel = clear($("fb-other"));
  sel.hidden = true;
  for (const l of others) sel.append(el("option", { value: l }, l));
  $("fb-right").disabled = false;
  $("fb-wrong").disabled = false;
  showStatus($("fb-status"), "");
}

async function classify(ev) {
  if (ev) ev.preventDefault();
  const text = $("cls-text").value;
  if (!text.trim()) return;
  const body = { text };
  const model = $("cls-model").value;
  if (model) body.model_type = model;
  $("cls-submit").disabled = true;
  showStatus($("cls-status"), "classifying…", "pending");
  try {
    const a = await api("/api/v1/models/classify", { json: body });
    showStatus($("cls-status"), "");
    render(text, a);
  } catch (e) {
    showError($("cls-status"), e, () => classify());
  } finally {
    $("cls-submit").disabled = false;
  }
}

async function feedback(right) {
  if (!last) return;
  const a = last.answer;
  let correct = a.classification;
  if (!right) {
    const sel = $("fb-other");
    if (sel.options.length > 1 && sel.hidden) {
      sel.hidden = false; // ask which label is right; the next "wrong" sends it
      showStatus($("fb-status"), "choose the right label, then press \"wrong\" again", "pending");
      return;
    }
    correct = sel.value;
  }
  const body = {
    text: last.text, correct_class: correct, predicted_class: a.classification,
    confidence: a.confidence, model_type: a.model_type, model_version: a.model_version,
    source: "dashboard",
  };
  $("fb-right").disabled = true;
  $("fb-wrong").disabled = true;
  try {
    const r = await api("/api/feedback", { json: body });
    showStatus($("fb-status"), (right ? "Confirmed" : "Corrected to " + correct) +
      ": feedback #" + r.feedback_id + " stored (" + r.total_entries + " in all).");
    document.dispatchEvent(new CustomEvent("cml-feedback-sent"));
  } catch (e) {
    $("fb-right").disabled = false;
    $("fb-wrong").disabled = false;
    showError($("fb-status"), e, () => feedback(right));
  }
}

export function initClassify() {
  $("cls-form").addEventListener("submit", classify);
  $("fb-right").addEventListener("click", () => feedback(true));
  $("fb-wrong").addEventListener("click", () => feedback(false));
}

// Nothing to fetch when the panel is shown: it answers what is typed.
export async function loadClassify() {}
