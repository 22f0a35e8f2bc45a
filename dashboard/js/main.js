// The dashboard's entry: one panel shown at a time, chosen by the URL's #hash; the header shows
// the active model and whether an admin key is kept for this tab.
import { api, adminKey, setAdminKey } from "./api.js";
import { $ } from "./ui.js";
import { initClassify, loadClassify } from "./classify.js";
import { initModels, loadModels } from "./models.js";
import { loadComparison } from "./comparison.js";

const PANELS = { classify: loadClassify, models: loadModels, comparison: loadComparison };

async function refreshHeader() {
  try {
    const c = await api("/api/v1/models/current");
    $("active-model").textContent = c.model_type + " " + (c.version || "(not loaded)");
  } catch (e) {
    $("active-model").textContent = "unknown (" + e.detail + ")";
  }
}

function refreshKeyState() {
  $("key-state").textContent = adminKey() ? "kept for this tab" : "not set";
}

// Shows the panel of the hash; body[data-loaded] names it once its data is in (tests wait on it).
async function show() {
  let name = location.hash.replace(/^#/, "");
  if (!PANELS[name]) name = "classify";
  delete document.body.dataset.loaded;
  for (const p of document.querySelectorAll(".panel")) p.hidden = p.dataset.panel !== name;
  for (const a of document.querySelectorAll(".tabs a"))
    a.classList.toggle("current", a.dataset.panel === name);
  try {
    await PANELS[name]();
  } finally {
    document.body.dataset.loaded = name;
  }
}

function init() {
  initClassify();
  initModels();
  $("key-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    setAdminKey($("key-input").value);
    $("key-input").value = "";
    $("key-box").open = false;
  });
  $("key-forget").addEventListener("click", () => setAdminKey(""));
  document.addEventListener("cml-key-changed", refreshKeyState);
  document.addEventListener("cml-model-changed", refreshHeader);
  window.addEventListener("hashchange", show);
  refreshKeyState();
  refreshHeader();
  show();
}

init();
