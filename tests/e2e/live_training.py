"""Live training against a real `streamlit run` server, in Chromium: the known traps.

- ``model.fit`` must not hang inside Streamlit (streamlit#8974, #1570): a short run finishes and
  its curves appear without the learner touching anything.
- A widget change must not silently re-run a training: the run count stays the same.
- Stop must stop: the run ends within about a batch, the page says so, the history is kept.
- A reload (a new session) shows the finished run from the run store at once.
- A run keeps training while its learner is on another page, past the idle budget.

Called from run_e2e.py; can also run alone: .venv/bin/python tests/e2e/live_training.py
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (ARTIFACTS, IDLE_BUDGET_S, Server, launch_browser, page_problems, rss_mb,  # noqa: E402
                     store_rows, wait_for_app_idle, wait_for_rerun)


def failed_at(step: str, exc: BaseException) -> str:
    """A check's problem when a step raised: the step, the error's type and its first line."""
    return f"{step}: " + f"{type(exc).__name__}: {exc}".splitlines()[0]


def _text(page) -> str:
    return page.inner_text('[data-testid="stMain"]')


def check_mnist_live(browser, base_url: str, timeout: float = 180.0) -> list[str]:
    """Returns a list of problems (empty when every trap is avoided)."""
    problems: list[str] = []
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    step = "open the deep link"
    try:
        page.goto(base_url + "/mnist?n=500&epochs=2&models=Dense&seed=1", wait_until="domcontentloaded")
        wait_for_app_idle(page, timeout)
        # a deep link as a fresh server's first visit still goes through app.py's navigation
        page.get_by_text("Data in use").first.wait_for(timeout=timeout * 1000)
        if "Convolution playground" not in page.inner_text('[data-testid="stSidebar"]'):
            problems.append("a deep link on a fresh server did not show the app's navigation")
        step = "start a 2-epoch run and wait for Finished"
        page.get_by_role("button", name="Start training").click()
        t0 = time.perf_counter()
        page.get_by_text(re.compile(r"Finished in")).first.wait_for(timeout=timeout * 1000)
        finish_s = time.perf_counter() - t0
        wait_for_app_idle(page, timeout)
        text = _text(page)
        if "Dense · 2 ep" not in text:
            problems.append("the finished run is not shown")
        if page.locator('[data-testid="stPlotlyChart"]').count() < 2:
            problems.append("no training curves after the run")
        step = "change a widget"
        # a widget change reruns the page, not the training
        wait_for_rerun(page, lambda: page.get_by_text("functional", exact=True).first.click(), timeout)
        time.sleep(1.5)  # give a (wrongly) restarted job time to show up
        text = _text(page)
        if "Waiting for a free training slot" in text or "🏃" in text:
            problems.append("changing a widget started another training")
        if "api=functional" not in page.url:
            problems.append(f"the URL did not follow the widget: {page.url}")
        page.screenshot(path=str(ARTIFACTS / "mnist_live_finished.png"), full_page=True)

        step = "reload: the stored run"
        # a refresh (a new Streamlit session) shows the stored run at once, nobody presses Start
        page.goto(base_url + "/mnist?n=500&epochs=2&models=Dense&seed=1", wait_until="domcontentloaded")
        t0 = time.perf_counter()
        page.get_by_text(re.compile(r"Finished in")).first.wait_for(timeout=timeout * 1000)
        refresh_s = time.perf_counter() - t0
        wait_for_app_idle(page, timeout)
        if page.get_by_role("button", name="Start training").count():
            problems.append("after a reload the stored run was not shown (Start offered again)")
        print(f"  refresh: the finished run was back on screen {refresh_s:.2f} s after the reload")

        step = "draw a digit"
        # draw a digit with the mouse: a "1", one stroke down the pad; the models classify it
        page.get_by_role("tab", name="Your digit").click()
        pad = page.locator('[data-testid="stMain"] canvas.upper-canvas').first
        pad.wait_for(timeout=30_000)
        box = pad.bounding_box()
        x, top, bottom = box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.15, box["y"] + box["height"] * 0.85

        def draw_one() -> None:
            page.mouse.move(x, top)
            page.mouse.down()
            for k in range(1, 21):
                page.mouse.move(x, top + (bottom - top) * k / 20)
            page.mouse.up()

        wait_for_rerun(page, draw_one, timeout)
        page.get_by_text("As the models see it").first.wait_for(timeout=30_000)
        if not page.locator('[data-testid="stPlotlyChart"]').filter(has_text="Class probabilities").count():
            problems.append("a drawn digit got no class probabilities")

        step = "start the 20-epoch run"
        # a long run keeps training while its learner reads another page of the same session
        page.goto(base_url + "/mnist?n=4000&epochs=20&models=CNN&batch=16&seed=2", wait_until="domcontentloaded")
        wait_for_app_idle(page, timeout)
        page.get_by_role("button", name="Start training").click()
        page.get_by_text(re.compile(r"epoch \d+/20")).first.wait_for(timeout=timeout * 1000)
        step = "visit House prices while it trains"
        page.locator('[data-testid="stSidebarNav"]').get_by_text("House prices").click()
        page.get_by_role("heading", name="House prices").first.wait_for(timeout=timeout * 1000)
        time.sleep(IDLE_BUDGET_S + 4)  # longer than the server's idle budget; the keep-alive beats every 5 s
        step = "back on MNIST: the run still trains"
        page.locator('[data-testid="stSidebarNav"]').get_by_text("MNIST: dense vs CNN").click()
        page.get_by_text(re.compile(r"epoch \d+/20")).first.wait_for(timeout=timeout * 1000)
        if "abandoned" in _text(page):
            problems.append("a run was abandoned while its learner was on another page")

        step = "wait for epoch 2, then Stop"
        # Stop: the same long run, stopped once it has completed an epoch
        page.get_by_text(re.compile(r"epoch (?:[2-9]|1\d|20)/20")).first.wait_for(timeout=timeout * 1000)
        stop = page.get_by_role("button", name="Stop")
        t0 = time.perf_counter()
        stop.click()
        page.get_by_text(re.compile(r"Stopped \(stopped by you\)")).first.wait_for(timeout=30_000)
        stop_s = time.perf_counter() - t0
        wait_for_app_idle(page, timeout)
        if stop_s > 10:
            problems.append(f"Stop took {stop_s:.1f} s to show")
        found = page_problems(page)
        problems += [f"exception: {t}" for t in found.exceptions]
        page.screenshot(path=str(ARTIFACTS / "mnist_live_stopped.png"), full_page=True)
        print(f"  live training: a 2-epoch run finished in {finish_s:.1f} s; Stop showed after {stop_s:.1f} s")
    except Exception as exc:  # noqa: BLE001 - every failure is reported as a problem
        problems.append(failed_at(step, exc))
        try:  # what the learner saw when it went wrong: the status line names the run's state
            seen = [line for line in _text(page).splitlines() if line.strip()]
            problems.append("page text at the failure: " + " | ".join(seen[:12])[:900])
            problems.append("app state: " + page.evaluate(
                """() => { const a = document.querySelector('[data-testid="stApp"]');
                           return a ? `script ${a.getAttribute('data-test-script-state')}, `
                                      + `connection ${a.getAttribute('data-test-connection-state')}` : 'no app'; }"""))
        except Exception:  # noqa: BLE001
            pass
        try:
            page.screenshot(path=str(ARTIFACTS / "mnist_live_failure.png"), full_page=True)
        except Exception:  # noqa: BLE001
            pass
    finally:
        page.close()
    return problems


def _store_state(runs_dir: str, seed: int) -> str | None:
    """The state of the MNIST run with this seed in the server's run store (read-only)."""
    rows = store_rows(runs_dir, "SELECT state, settings FROM runs WHERE experiment='mnist' AND reference=0")
    states = [state for state, settings in rows if json.loads(settings).get("seed") == seed]
    return states[-1] if states else None


def check_stop_in_queue(browser, base_url: str, runs_dir: str, timeout: float = 180.0) -> list[str]:
    """Stop pressed in the queue view just after the run was admitted stops it (the click used to
    be lost: the view switched to the live one without reading the button). Needs one training
    slot; with more, nobody queues and the check says so and passes."""
    problems: list[str] = []
    a = browser.new_page(viewport={"width": 1400, "height": 1000})
    b = browser.new_page(viewport={"width": 1400, "height": 1000})
    step = "A starts a long run"
    try:
        a.goto(base_url + "/mnist?n=4000&epochs=20&models=CNN&batch=16&seed=31", wait_until="domcontentloaded")
        wait_for_app_idle(a, timeout)
        a.get_by_role("button", name="Start training").click()
        a.get_by_text(re.compile(r"epoch \d+/20")).first.wait_for(timeout=timeout * 1000)
        step = "B queues behind it"
        b.goto(base_url + "/mnist?n=4000&epochs=20&models=CNN&batch=16&seed=32", wait_until="domcontentloaded")
        wait_for_app_idle(b, timeout)
        b.get_by_role("button", name="Start training").click()
        b.get_by_text(re.compile(r"Waiting for a free training slot|epoch \d+/20")).first.wait_for(timeout=60_000)
        if not b.get_by_text("Waiting for a free training slot").count():
            print("  stop in the queue: more than one training slot, nobody queued (not checked)")
            return problems
        step = "A stops; B's learner presses Stop as B is admitted"
        a.get_by_role("button", name="Stop").click()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _store_state(runs_dir, 32) != "running":
            time.sleep(0.1)
        still_queue_view = b.get_by_text("Waiting for a free training slot").count() > 0
        b.get_by_role("button", name="Stop").first.click()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _store_state(runs_dir, 32) in ("queued", "running"):
            time.sleep(0.2)
        state = _store_state(runs_dir, 32)
        if state in ("queued", "running"):
            problems.append(f"Stop pressed {'in the queue view ' if still_queue_view else ''}as the run was "
                            f"admitted did not stop it (still {state} 20 s later)")
        print(f"  stop in the queue: pressed {'in the queue view' if still_queue_view else 'in the live view'}, "
              f"the run is {state or 'gone (stopped before its first epoch)'}")
    except Exception as exc:  # noqa: BLE001 - every failure is reported as a problem
        problems.append(failed_at(step, exc))
    finally:
        a.close()
        b.close()
    return problems


CATS_LINK = "/cats_dogs?models=From+scratch,VGG16+frozen&size=64&n=200&nval=100&epochs=1&seed={seed}"
WEB_GROWTH_MB = 150  # the web process may grow by page caches, never by photos, a VGG16 or its features (~390 MB)


def check_catsdogs_in_worker(browser, base_url: str, server_pid: int, runs_dir: str,
                             timeout: float = 180.0) -> list[str]:
    """Two learners train cats vs dogs (from scratch and a frozen VGG16 on 200 real photos): a worker
    process trains both, the second reads the first's features from the disk cache, and the web
    process does not grow by the photos, the base or the features. Skips (passes, saying so) where
    the server has no cat and dog photos."""
    problems: list[str] = []
    pages = []
    step = "open the cats vs dogs link"
    try:
        rss0 = None
        for seed, words in ((41, "Extracting the frozen base's features took"),
                            (42, "The features were already cached on this server")):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            pages.append(page)
            page.goto(base_url + CATS_LINK.format(seed=seed), wait_until="domcontentloaded")
            wait_for_app_idle(page, timeout)
            if "No cats/dogs images yet" in _text(page):
                print("  cats vs dogs in the worker: no photos on this server (not checked)")
                return problems
            rss0 = rss_mb(server_pid) if rss0 is None else rss0
            step = f"seed {seed}: train and wait for Finished"
            page.get_by_role("button", name="Start training").click()
            page.get_by_text(re.compile(r"Finished in")).first.wait_for(timeout=timeout * 1000)
            wait_for_app_idle(page, timeout)
            step = f"seed {seed}: the Results tab"
            page.get_by_role("tab", name="Results").click()
            page.get_by_text(words).first.wait_for(timeout=30_000)
        grew = rss_mb(server_pid) - rss0
        rows = store_rows(runs_dir, "SELECT state, progress FROM runs WHERE experiment='cats_dogs' AND reference=0")
        trainers = {json.loads(progress).get("process") for state, progress in rows if state == "done"}
        if len(rows) != 2 or not trainers or trainers & {0, None, server_pid}:
            problems.append(f"the runs were not both trained by a worker process: {len(rows)} run(s), "
                            f"trained by {sorted(map(str, trainers))}, the web process is {server_pid}")
        if grew > WEB_GROWTH_MB:
            problems.append(f"the web process grew by {grew:.0f} MB over two cats vs dogs runs "
                            f"(at most {WEB_GROWTH_MB} MB)")
        print(f"  cats vs dogs in the worker: 2 runs by pid {sorted(map(str, trainers))}, features extracted once, "
              f"web process {grew:+.0f} MB")
    except Exception as exc:  # noqa: BLE001 - every failure is reported as a problem
        problems.append(failed_at(step, exc))
    finally:
        for page in pages:
            page.close()
    return problems


if __name__ == "__main__":
    from playwright.sync_api import sync_playwright

    with Server() as srv, sync_playwright() as pw:
        browser = launch_browser(pw)
        results = [check_mnist_live(browser, srv.url), check_stop_in_queue(browser, srv.url, srv.env["DNN2_RUNS_DIR"])]
        browser.close()
    found = [p for r in results for p in r]
    print("\n".join(found) or "live training: OK")
    print(f"e2e: {sum(not r for r in results)} passed, {sum(bool(r) for r in results)} failed")
    sys.exit(1 if found else 0)
