// The Models panel: the active model, every version (metrics, where it is stored) with select
// and roll back, retraining with its progress, evaluation with the confusion matrix.
import { api } from "./api.js";
import { $, el, bytes, clear, fillTable, num, pct, showError, showStatus } from "./ui.js";

let versions = []; // the latest GET /api/v1/models `models`
let polling = null; // task id being followed

function refreshVersionChoice() {
  const type = $("eval-type").value;
  const sel = clear($("eval-version"));
  sel.append(el("option", { value: "" }, "active of that type"));
  for (const m of versions)
    if (!type || m.model_type === type)
      sel.append(el("option", { value: m.version, dataset: { type: m.model_type } },
                    m.model_type + " " + m.version));
}

async function select(type, version) {
  const status = $("models-status");
  showStatus(status, "switching to " + type + (version ? " " + version : "") + "…", "pending");
  try {
    const body = { model_type: type };
    if (version) body.version = version;
    const r = await api("/api/v1/models/select", { json: body, admin: true });
    showStatus(status, "Now serving " + r.current_model + " " + r.version + " (was " +
      (r.previous_model || "none") + ", switched in " + num(r.switch_time_ms, 1) + " ms).");
    document.dispatchEvent(new CustomEvent("cml-model-changed"));
    await loadModels(true);
  } catch (e) {
    showError(status, e, () => select(type, version));
  }
}

export async function loadModels(keepStatus) {
  const status = $("models-status");
  if (!keepStatus) showStatus(status, "");
  let cur, list;
  try {
    [cur, list] = await Promise.all([api("/api/v1/models/current"), api("/api/v1/models")]);
  } catch (e) {
    showError(status, e, () => loadModels());
    return;
  }
  $("models-active").textContent = cur.model_type + " " + (cur.version || "(not loaded)");
  $("models-loaded-at").textContent = cur.loaded_at ? "loaded at " + cur.loaded_at : "";
  versions = list.models || [];
  const active = list.active || {};
  // The newest version of a type is what selecting the type alone gives; an older one is a
  // roll back.
  const newest = {};
  for (const m of versions)
    if (!newest[m.model_type] || m.version > newest[m.model_type]) newest[m.model_type] = m.version;
  const isActive = (m) => m.model_type === active.model_type && m.version === active.version;
  fillTable($("models-table"),
    ["type", "version", "created", { v: "macro F1", cls: "num" }, { v: "accuracy", cls: "num" },
     { v: "ROC AUC", cls: "num" }, { v: "size", cls: "num" }, "stored", "loaded", ""],
    versions.map((m) => {
      const mt = m.metrics || {};
      const action = isActive(m) ? el("strong", {}, "active")
        : el("button", { type: "button", class: "select-version",
                         dataset: { type: m.model_type, version: m.version },
                         onclick: () => select(m.model_type, m.version) },
             m.version === newest[m.model_type] ? "select" : "roll back to this");
      return [m.model_type, el("code", {}, m.version), m.created_at || "–",
        { v: num(mt.f1_macro), cls: "num" }, { v: pct(mt.accuracy), cls: "num" },
        { v: num(mt.roc_auc), cls: "num" }, { v: bytes(m.size_bytes), cls: "num" },
        m.location || "–", m.loaded ? "yes" : "no", action];
    }),
    { rowClass: (i) => (isActive(versions[i]) ? "active" : undefined), empty: "no model stored" });
  refreshVersionChoice();
  // A job started elsewhere (or before a reload) is followed too.
  if (!polling) {
    const s = await api("/api/v1/models/training/status").catch(() => null);
    if (s && s.is_training && s.task_id) {
      $("retrain-submit").disabled = true;
      follow(s.task_id);
    }
  }
}

function showProgress(s) {
  $("retrain-progress-box").hidden = false;
  const p = Math.max(0, Math.min(100, Number(s.progress) || 0));
  $("retrain-progress").value = p;
  $("retrain-percent").textContent = Math.round(p) + " %";
  $("retrain-task").textContent = (s.status || "") + (s.current_task ? ": " + s.current_task : "");
}

// Follows a training job through its status route until it completes or fails.
async function follow(taskId) {
  polling = taskId;
  const status = $("retrain-status");
  while (polling === taskId) {
    let s;
    try {
      s = await api("/api/v1/models/training/status/" + encodeURIComponent(taskId));
    } catch (e) {
      showError(status, e);
      break;
    }
    showProgress(s);
    if (s.status === "completed") {
      showStatus(status, "Trained " + s.model_type + " " + (s.version || "") +
        ", now the active version of that type.");
      document.dispatchEvent(new CustomEvent("cml-model-changed"));
      await loadModels(true);
      break;
    }
    if (s.status === "failed") {
      showStatus(status, "Training failed: " + (s.error || "no reason given"), "error");
      break;
    }
    await new Promise((r) => setTimeout(r, 700));
  }
  if (polling === taskId) polling = null;
  $("retrain-submit").disabled = false;
}

async function retrain(ev) {
  if (ev) ev.preventDefault();
  const status = $("retrain-status");
  const type = $("retrain-type").value;
  const source = document.querySelector('input[name="retrain-source"]:checked').value;
  const body = { model_type: type, include_feedback: $("retrain-feedback").checked };
  if (source === "azure") body.use_azure = true;
  if (source === "upload") {
    const f = $("retrain-file").files[0];
    if (!f) {
      showStatus(status, "Choose a CSV file (columns text,label) to train on.", "error");
      return;
    }
    body.data = await f.text();
  }
  $("retrain-submit").disabled = true;
  showStatus(status, "starting…", "pending");
  try {
    const r = await api("/api/v1/models/retrain", { json: body, admin: true });
    showStatus(status, r.message || "started", "pending");
    showProgress({ progress: 0, status: "started" });
    await follow(r.task_id);
  } catch (e) {
    $("retrain-submit").disabled = false;
    showError(status, e, () => retrain());
  }
}

async function evaluate(ev) {
  if (ev) ev.preventDefault();
  const status = $("eval-status");
  const body = {};
  const vsel = $("eval-version");
  const opt = vsel.options[vsel.selectedIndex];
  if ($("eval-type").value) body.model_type = $("eval-type").value;
  if (vsel.value) {
    body.version = vsel.value;
    body.model_type = opt.dataset.type;
  }
  const f = $("eval-file").files[0];
  if (f) body.data = await f.text();
  $("eval-submit").disabled = true;
  showStatus(status, "evaluating…", "pending");
  try {
    const r = await api("/api/v1/models/evaluate", { json: body, admin: true });
    showStatus(status, "");
    const m = r.metrics || {};
    $("eval-result").hidden = false;
    $("eval-summary").textContent = r.model_type + " " + r.model_version + " on " + r.n +
      " rows (" + (f ? f.name : "its held-out split") + "): accuracy " + pct(m.accuracy) +
      ", macro F1 " + num(m.f1_macro) + ", MCC " + num(m.mcc) +
      (m.roc_auc !== undefined ? ", ROC AUC " + num(m.roc_auc) : "") + ", log loss " + num(m.log_loss);
    const labels = r.labels || [];
    fillTable($("eval-confusion"), ["actual \\ predicted", ...labels.map((l) => ({ v: l, cls: "num" }))],
      (r.confusion_matrix || []).map((row, i) => [el("strong", {}, labels[i]),
        ...row.map((c) => ({ v: c, cls: "num" }))]));
    const rep = r.classification_report || {};
    fillTable($("eval-report"), ["label", { v: "precision", cls: "num" }, { v: "recall", cls: "num" },
      { v: "F1", cls: "num" }, { v: "support", cls: "num" }],
      Object.entries(rep).map(([l, v]) => [l, { v: num(v.precision), cls: "num" },
        { v: num(v.recall), cls: "num" }, { v: num(v.f1), cls: "num" }, { v: v.support, cls: "num" }]));
  } catch (e) {
    showError(status, e, () => evaluate());
  } finally {
    $("eval-submit").disabled = false;
  }
}

export function initModels() {
  for (const b of document.querySelectorAll(".select-latest"))
    b.addEventListener("click", () => select(b.dataset.type));
  $("retrain-form").addEventListener("submit", retrain);
  $("eval-form").addEventListener("submit", evaluate);
  $("eval-type").addEventListener("change", refreshVersionChoice);
  $("retrain-file").addEventListener("change", () => {
    document.querySelector('input[name="retrain-source"][value="upload"]').checked = true;
  });
}
