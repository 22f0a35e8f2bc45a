#!/usr/bin/env python3
"""The dashboard in a real browser (Debian's chromium, headless, driven by chromium-driver and
python3-selenium) against the service behind lighttpd.

    dashboard.py BASE_URL API_KEY ARTIFACT_DIR

Checks: each panel loads with no console error; classify shows a label (and the members' votes
with the ensemble); the Models panel without the admin key shows "enter the admin key"; with it
"roll back" changes /api/v1/models/current; a classic retrain shows its progress reaching 100 %
and the new version in the table; evaluating an uploaded CSV shows the confusion matrix; feedback
sent with "right" changes the live counts of the Comparison panel (pending, not failed, only while
the comparison answer has no `live` key); nothing is wider than a 390 px phone screen.
Screenshots of every panel at 1280x800 and 390x844 go to ARTIFACT_DIR. Exit 0 when all passed.
"""
import base64
import json
import os
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE, KEY, ART = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
SIZES = [(1280, 800), (390, 844)]
failures = []
pending = []


def log(msg):
    print(time.strftime("[%H:%M:%S] ") + msg, flush=True)


def check(cond, what):
    log(("ok: " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)
    return cond


def get_json(path, key=None):
    req = urllib.request.Request(BASE + path, headers={"Authorization": "Bearer " + key} if key else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read().decode())


def start_browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
              "--disable-background-networking", "--disable-dev-shm-usage",
              "--user-data-dir=" + tempfile.mkdtemp(prefix="cml-chromium-"),
              "--window-size=1280,800"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=opts)


drv = start_browser()
wait = WebDriverWait(drv, 20)


def console_errors(allow=()):
    """Severe browser-log entries since the last call, minus the expected ones."""
    out = []
    for e in drv.get_log("browser"):
        if e.get("level") == "SEVERE" and not any(a in e.get("message", "") for a in allow):
            out.append(e["message"])
    return out


def set_size(w, h):
    drv.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                        {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": w < 600})


loads = [0]


def open_panel(name, reload=True):
    """Shows a panel and waits until its data is in (body[data-loaded]); with reload, in a page
    loaded afresh (a new query string: a change of #hash alone would not load it again)."""
    if reload:
        loads[0] += 1
        drv.get(BASE + "/dashboard/?load=%d#%s" % (loads[0], name))
    else:
        drv.execute_script("location.hash = arguments[0]", name)
    wait.until(lambda d: d.execute_script("return document.body.dataset.loaded") == name)


def text(id_):
    return drv.find_element(By.ID, id_).text


def screenshot(name, full=False):
    """The viewport (or with full, the whole page) as ART/name.png."""
    os.makedirs(ART, exist_ok=True)
    args = {"format": "png", "captureBeyondViewport": full}
    if full:
        size = drv.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        args["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = drv.execute_cdp_cmd("Page.captureScreenshot", args)
    path = os.path.join(ART, name + ".png")
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    return path


def live_n(comparison):
    live = comparison.get("live")
    if not isinstance(live, dict):
        return None
    fb = live.get("feedback") or {}
    return {t: (fb.get(t) or {}).get("n", 0) for t in ("ensemble", "classic")}


def displayed_live_n():
    return {t: int(text("live-n-" + t) or 0) for t in ("ensemble", "classic")}


try:
    set_size(*SIZES[0])
    # --- each panel loads with no console error ---------------------------------------------
    for name in ("classify", "models", "comparison"):
        open_panel(name)
        errs = console_errors()
        check(not errs, "the %s panel loads with no console error %s" % (name, errs or ""))
        check(drv.find_element(By.ID, "panel-" + name).is_displayed(), "the %s panel is shown" % name)
    check(drv.find_element(By.CSS_SELECTOR, "#panel-comparison .chart canvas") is not None and
          drv.execute_script("return typeof window.Chart") == "function",
          "Chart.js (libjs-chart.js) is loaded from /javascript/chart.js/")

    # Once the back end reports `live` (even null before any data), the live step must pass.
    comparison = get_json("/api/v1/models/comparison")
    has_live = "live" in comparison
    before = live_n(comparison) or {"ensemble": 0, "classic": 0}
    if comparison.get("live") is None:
        check("no live data yet" in text("cmp-live-note"), "without live figures the panel says \"no live data yet\"")
    else:
        check(displayed_live_n() == before, "the Comparison panel shows the live counts %s" % before)

    # --- classify shows a label; "right" sends feedback --------------------------------------
    open_panel("classify")
    drv.find_element(By.ID, "cls-text").send_keys("What do you think will happen to the ice? Is it cold?")
    drv.find_element(By.ID, "cls-submit").click()
    wait.until(lambda d: text("cls-label") != "")
    current = get_json("/api/v1/models/current")
    check(text("cls-label") in ("OEQ", "CEQ"), "classify shows a label (%s)" % text("cls-label"))
    if current["model_type"] == "ensemble":
        rows = drv.find_elements(By.CSS_SELECTOR, "#cls-votes tbody tr")
        check(len(rows) >= 2, "the members' votes are shown (%d members)" % len(rows))
    qrows = drv.find_elements(By.CSS_SELECTOR, "#cls-questions tbody tr")
    check(len(qrows) == 2, "the two questions found in the clip are shown (%d)" % len(qrows))
    answered_by = current["model_type"]
    drv.find_element(By.ID, "fb-right").click()
    wait.until(lambda d: "feedback #" in text("fb-status") or "error" in
               d.find_element(By.ID, "fb-status").get_attribute("class"))
    check("feedback #" in text("fb-status"), "\"right\" stores the feedback (%s)" % text("fb-status"))
    check(not console_errors(), "classify and feedback log no console error")
    screenshot("classify-result-1280x800")

    # --- feedback changes the live counts ----------------------------------------------------
    if not has_live:
        pending.append("feedback changes the live counts: the comparison answer has no `live` key on "
                       "this build (the back end of issue 12 is not in yet)")
        log("PENDING: " + pending[-1])
    else:
        after_api = None
        for _ in range(100):  # feedback is scored off the request path: allow it 20 s
            after_api = live_n(get_json("/api/v1/models/comparison"))
            if after_api is not None and after_api[answered_by] > before[answered_by]:
                break
            time.sleep(0.2)
        check(after_api is not None and after_api[answered_by] > before[answered_by],
              "the feedback is counted for %s: %d -> %s (API)" % (answered_by, before[answered_by],
                                                                  after_api and after_api[answered_by]))
        open_panel("comparison")
        shown = displayed_live_n()
        check(after_api is not None and shown[answered_by] == after_api[answered_by],
              "the Comparison panel shows the new live count (%d)" % shown[answered_by])
        errs = console_errors()
        check(not errs, "the Comparison panel with live figures logs no console error %s" % (errs or ""))

    # --- a 401 without the key shows "enter the admin key"; with it, roll back --------------
    open_panel("models")
    drv.execute_script("sessionStorage.clear()")
    classic = sorted(m["version"] for m in get_json("/api/v1/models")["models"] if m["model_type"] == "classic")
    oldest = classic[0]
    btn = drv.find_element(By.CSS_SELECTOR, 'button.select-version[data-type="classic"][data-version="%s"]' % oldest)
    btn.click()
    wait.until(lambda d: "enter the admin key" in text("models-status"))
    check("enter the admin key" in text("models-status"),
          "a 401 without the key shows \"enter the admin key\" (%s)" % text("models-status").splitlines()[0])
    check(get_json("/api/v1/models/current")["model_type"] == current["model_type"],
          "nothing was selected without the key")
    console_errors(allow=("401",))  # the refused request is logged by the browser, as expected
    ask = drv.find_element(By.CSS_SELECTOR, "#models-status input.key-ask")
    ask.send_keys(KEY)
    drv.find_element(By.CSS_SELECTOR, "#models-status button[type=submit]").click()
    wait.until(lambda d: "Now serving" in text("models-status"))
    cur = get_json("/api/v1/models/current")
    check(cur["model_type"] == "classic" and cur["version"] == oldest,
          "roll back changes /api/v1/models/current to classic %s (%s %s)" % (oldest, cur["model_type"], cur["version"]))
    # The status line comes first, the refreshed table a moment later (a slow, sanitized server).
    try:
        wait.until(lambda d: "classic " + oldest in text("models-active"))
    except TimeoutException:
        pass
    check("classic " + oldest in text("models-active"), "the panel shows the new active version")
    check(drv.execute_script("return sessionStorage.length") == 1 and
          drv.execute_script("return localStorage.length") == 0, "the key is kept in sessionStorage only")
    check(not console_errors(), "selecting logs no console error")

    # --- a classic retrain: progress to 100 %, the new version in the table ------------------
    Select(drv.find_element(By.ID, "retrain-type")).select_by_value("classic")
    drv.find_element(By.ID, "retrain-submit").click()
    seen = set()
    deadline = time.time() + 180
    while time.time() < deadline:
        v = drv.execute_script("return document.getElementById('retrain-progress').value")
        seen.add(round(float(v)))
        st = text("retrain-status")
        if "Trained" in st or "failed" in st or "error" in drv.find_element(By.ID, "retrain-status").get_attribute("class"):
            break
        time.sleep(0.25)
    # The bar as it was left (the loop may have read it just before the last update).
    seen.add(round(float(drv.execute_script("return document.getElementById('retrain-progress').value"))))
    status = get_json("/api/v1/models/training/status")
    check(status["status"] == "completed", "the retrain completed (%s)" % status["status"])
    check(text("retrain-percent") == "100 %" and max(seen) == 100,
          "the progress bar reached 100 %% (values seen: %s)" % sorted(seen))
    check(len([s for s in seen if 0 < s < 100]) >= 1, "the progress bar showed progress before the end")
    new_version = status.get("version") or ""
    wait.until(lambda d: new_version and d.find_elements(
        By.CSS_SELECTOR, '#models-table tr.active code'))
    rows = [r.text for r in drv.find_elements(By.CSS_SELECTOR, "#models-table tbody tr")]
    check(any(new_version in r for r in rows), "the new version %s is in the table" % new_version)
    check(not console_errors(), "retraining logs no console error")
    screenshot("models-retrained-1280x800")

    # --- evaluate an uploaded CSV: the confusion matrix as a table --------------------------
    csv = os.path.join(tempfile.mkdtemp(prefix="cml-dash-"), "eval.csv")
    with open(csv, "w") as f:
        f.write("text,label\nWhy do you think it sank?,OEQ\nIs it blue?,CEQ\n"
                "What could we build with these?,OEQ\nDo you want more?,CEQ\nIs that a cat?,CEQ\n")
    Select(drv.find_element(By.ID, "eval-type")).select_by_value("classic")
    drv.find_element(By.ID, "eval-file").send_keys(csv)
    drv.find_element(By.ID, "eval-submit").click()
    wait.until(lambda d: d.find_element(By.ID, "eval-result").is_displayed() or text("eval-status"))
    cells = [c.text for c in drv.find_elements(By.CSS_SELECTOR, "#eval-confusion tbody td")]
    check(len(cells) == 6 and sum(int(c) for c in cells if c.isdigit()) == 5,
          "the confusion matrix of the 5 uploaded rows is a 2x2 table (%s)" % cells)
    check(not console_errors(), "evaluating logs no console error")

    # --- screenshots of each panel at both sizes; nothing wider than the screen --------------
    for w, h in SIZES:
        set_size(w, h)
        for name in ("classify", "models", "comparison"):
            open_panel(name)
            if name == "classify":
                drv.find_element(By.ID, "cls-text").clear()
                drv.find_element(By.ID, "cls-text").send_keys("Can you tell me how you made it? Is it tall?")
                drv.find_element(By.ID, "cls-submit").click()
                wait.until(lambda d: text("cls-label") != "")
            errs = console_errors()
            check(not errs, "%s at %dx%d: no console error %s" % (name, w, h, errs or ""))
            over = drv.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            check(over <= 0, "%s at %dx%d: nothing wider than the screen (%d px over)" % (name, w, h, over))
            log("screenshot " + screenshot("%s-%dx%d" % (name, w, h)))
            screenshot("%s-%dx%d-full" % (name, w, h), full=True)
except TimeoutException as e:
    failures.append("timed out waiting: %s" % (e.msg or e))
    log("FAIL: timed out; status areas: " + " | ".join(
        "%s=%r" % (i, text(i)) for i in ("cls-status", "fb-status", "models-status", "retrain-status",
                                         "eval-status", "cmp-status")))
    screenshot("timeout")
finally:
    drv.quit()

for p in pending:
    print("PENDING: " + p)
print("dashboard: %d failure(s), %d pending" % (len(failures), len(pending)))
sys.exit(1 if failures else 0)
