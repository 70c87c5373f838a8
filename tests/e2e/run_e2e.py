"""Browser end-to-end run (`make e2e`): every page of DNN2 Studio in Debian's Chromium.

Starts `streamlit run app.py` headless on a free port (DNN2_OFFLINE=1), opens each page of
dnn2ui/pages.py, waits for Streamlit to finish the script run and paint its charts, and fails
on an exception box, an error alert, an h1 that is not the page's registered title, or text cut
off (wider than its clipping box) in any main tab at 1400x1000 or 1280x720. Saves full-page
screenshots per page under artifacts/e2e/<stem>.png (and <stem>-1280.png), then changes the stride on the
convolution page (through the link and with the keyboard) and clicks two of its feature-map
cells, to prove widgets, selections and URL settings work in a real browser, has two learners
train cats vs dogs (a worker trains both, the features are extracted once, the web process does
not grow), and opens every
page in the presenter view at 1280x720
(artifacts/e2e/present-<stem>.png). Ends with `e2e: N passed, M failed`; exits 1 on any failure.

Usage: .venv/bin/python tests/e2e/run_e2e.py [--page convolution ...] [--timeout 120] [--headed]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness import (ARTIFACTS, Server, ServerError, clipped_in_every_tab, full_page_screenshot,  # noqa: E402
                     launch_browser, page_problems, wait_for_app_idle, wait_for_rerun)

from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402

from dnn2ui.pages import HOME, PAGES  # noqa: E402
from live_training import check_catsdogs_in_worker, check_mnist_live, check_stop_in_queue  # noqa: E402
from presenter import check_presenter  # noqa: E402

SIZES = ((1400, 1000), (1280, 720))  # the learner and projector screens
HOME_H1 = "DNN2 Studio"  # the home page greets with the app's name; its menu entry is HOME.title


@dataclass
class Check:
    name: str
    seconds: float
    ok: bool
    detail: str = ""


def url_path(page_path: str) -> str:
    """pages/convolution.py -> /convolution; the default (home) page is /."""
    return "/" if page_path == HOME.path else "/" + Path(page_path).stem


def check_page(browser, base_url: str, info, timeout: float) -> Check:
    stem = Path(info.path).stem
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    t0 = time.perf_counter()
    try:
        page.goto(base_url + url_path(info.path), wait_until="domcontentloaded")
        wait_for_app_idle(page, timeout)
        # a fresh server's first deep link reloads once through app.py's navigation: idle can be seen
        # in between, before the page's title exists
        page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=timeout * 1000)
        wait_for_app_idle(page, timeout)
        seconds = time.perf_counter() - t0
        found = page_problems(page)
        problems += [f"exception: {t}" for t in found.exceptions]
        problems += [f"error: {t}" for t in found.errors]
        wanted = HOME_H1 if info is HOME else info.title
        if found.title != wanted:
            problems.append(f"h1 is {found.title!r}, expected {wanted!r}")
        full_page_screenshot(page, ARTIFACTS / f"{stem}.png")
        for width, height in SIZES:  # a learner's screen and a projector's: no text may be cut off
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(300)
            problems += [f"clipped at {width}x{height}: {c}" for c in clipped_in_every_tab(page)]
            if width != 1400:
                full_page_screenshot(page, ARTIFACTS / f"{stem}-{width}.png", width=width)
    except PlaywrightTimeout:
        seconds = time.perf_counter() - t0
        problems.append(f"timeout: the page had not finished running and painting after {timeout:g} s "
                        f"(state: {_script_state(page)})")
        try:
            page.screenshot(path=str(ARTIFACTS / f"{stem}.png"))
        except Exception:
            pass
    except Exception as exc:  # a browser error is this page's failure, not the run's
        seconds = time.perf_counter() - t0
        problems.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        try:
            page.screenshot(path=str(ARTIFACTS / f"{stem}.png"))
        except Exception:
            pass
    finally:
        page.close()
    return Check(stem, seconds, not problems, "; ".join(problems))


def _script_state(page) -> str:
    try:
        return page.evaluate("""() => { const a = document.querySelector('[data-testid="stApp"]');
          return a ? a.getAttribute('data-test-script-state') + '/' + a.getAttribute('data-test-connection-state')
                   : 'no app root'; }""")
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"


_OUTPUT_SIZE = re.compile(r"\\frac\{(\d+) - (\d+)\}\{(\d+)\} \\right\\rfloor \+ 1 = (\d+)")


def _output_sizes(page) -> list[tuple[int, int, int, int]]:
    """(n, k, s, out) of each valid-padding output-size formula KaTeX rendered on the page."""
    tex = page.locator("annotation").evaluate_all("els => els.map(e => e.textContent)")
    return [tuple(int(g) for g in m.groups()) for t in tex for m in _OUTPUT_SIZE.finditer(t or "")]


def _assert_stride(page, stride: int) -> None:
    query = parse_qs(urlparse(page.url).query)
    if query.get("stride") != [str(stride)]:
        raise AssertionError(f"the URL has stride={query.get('stride')}, expected {stride}: {page.url}")
    sizes = _output_sizes(page)
    if len(sizes) < 2:
        raise AssertionError(f"expected the H_out and W_out formulas, found {sizes}")
    for n, k, s, out in sizes[:2]:
        if s != stride or out != (n - k) // s + 1:
            raise AssertionError(f"formula shows floor(({n} - {k}) / {s}) + 1 = {out} for stride {stride}")


def check_convolution_stride(browser, base_url: str, timeout: float) -> Check:
    """A stride from the link is used, and moving the slider updates the formulas and the link."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    t0 = time.perf_counter()
    try:
        page.goto(base_url + "/convolution?stride=2&pad=valid", wait_until="domcontentloaded")
        wait_for_app_idle(page, timeout)
        _assert_stride(page, 2)
        slider = page.get_by_role("slider", name="Stride s")
        slider.focus()
        wait_for_rerun(page, lambda: slider.press("ArrowRight"), timeout)
        _assert_stride(page, 3)
        found = page_problems(page)
        if found.exceptions or found.errors:
            raise AssertionError(f"after the stride change: {found.exceptions + found.errors}")
        n, k, s, out = _output_sizes(page)[0]
        return Check("convolution: stride 2 from link, 3 by keyboard", time.perf_counter() - t0, True,
                     f"H_out = floor(({n} - {k}) / {s}) + 1 = {out}; URL stride=3")
    except Exception as exc:
        return Check("convolution: stride 2 from link, 3 by keyboard", time.perf_counter() - t0, False,
                     f"{type(exc).__name__}: {exc}")
    finally:
        page.close()


_CELL_JS = """(el, [row, col]) => {  // the page pixel at the centre of feature-map cell (row, col)
  const gd = el.querySelector('.js-plotly-plot'), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const box = gd.querySelector('.nsewdrag').getBoundingClientRect();
  return {x: box.left + (col - xa.range[0]) / (xa.range[1] - xa.range[0]) * box.width,
          y: box.top + (ya.range[1] - row) / (ya.range[1] - ya.range[0]) * box.height};  // range[1] is the top
}"""


def check_convolution_click(browser, base_url: str, timeout: float) -> Check:
    """Clicking a feature-map cell inspects that cell (issue 14): the text, the sliders and the link follow."""
    name = "convolution: click a feature-map cell"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    t0 = time.perf_counter()
    try:
        page.goto(base_url + "/convolution?sample=Synthetic%3A+bars%2C+disc+and+diagonal+%28grayscale%29"
                  "&stride=1&pad=valid&k=3&row=10&col=10", wait_until="domcontentloaded")
        wait_for_app_idle(page, timeout)
        done = []
        for row, col in ((20, 70), (61, 15)):  # two clicks: the redrawn map takes the next one too
            chart = page.locator(".st-key-conv-fm_click [data-testid='stPlotlyChart']")
            chart.scroll_into_view_if_needed()
            at = chart.evaluate(_CELL_JS, [row, col])
            wait_for_rerun(page, lambda: page.mouse.click(at["x"], at["y"]), timeout)
            wanted = f"Output at row {row}, column {col}"
            shown = [t for t in page.locator('[data-testid="stMarkdown"]').all_inner_texts() if "Output at row" in t]
            if not shown or not shown[0].startswith(wanted):
                raise AssertionError(f"clicked cell ({row}, {col}); the page shows {shown}")
            query = parse_qs(urlparse(page.url).query)
            if (query.get("row"), query.get("col")) != ([str(row)], [str(col)]):
                raise AssertionError(f"clicked cell ({row}, {col}); the URL has row={query.get('row')}, "
                                     f"col={query.get('col')}")
            slider = page.get_by_role("slider", name="Output row").input_value()
            if slider != str(row):
                raise AssertionError(f"clicked row {row}; the Output row slider shows {slider}")
            done.append(f"({row}, {col})")
        found = page_problems(page)
        if found.exceptions or found.errors:
            raise AssertionError(f"after the clicks: {found.exceptions + found.errors}")
        return Check(name, time.perf_counter() - t0, True, "inspected " + ", then ".join(done))
    except Exception as exc:
        return Check(name, time.perf_counter() - t0, False, f"{type(exc).__name__}: {exc}")
    finally:
        page.close()

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--page", action="append", help="only these page stems (repeatable); default: all")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per page for the script run")
    ap.add_argument("--headed", action="store_true", help="show the browser window")
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    pages = [HOME, *PAGES]
    if args.page:
        pages = [p for p in pages if Path(p.path).stem in args.page]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    checks: list[Check] = []
    t_run = time.perf_counter()
    try:
        with Server() as server, sync_playwright() as pw:
            print(f"server {server.url} healthy after {server.healthy_after:.1f} s", flush=True)
            browser = launch_browser(pw, headless=not args.headed)
            try:
                if any(p.path == "pages/mnist.py" for p in pages):
                    # first, while the server is fresh: a deep link, then the live-training traps
                    t0 = time.perf_counter()
                    problems = check_mnist_live(browser, server.url, max(args.timeout, 180.0))
                    check = Check("mnist: deep link, live run, no retrain, Stop", time.perf_counter() - t0,
                                  not problems, "; ".join(problems))
                    checks.append(check)
                    _report(check)
                    if problems:  # the server's side of it (a worker's traceback, a stuck job)
                        print(server.log_tail(40), flush=True)
                    t0 = time.perf_counter()
                    problems = check_stop_in_queue(browser, server.url, server.env["DNN2_RUNS_DIR"],
                                                   max(args.timeout, 180.0))
                    check = Check("mnist: Stop in the queue as the run is admitted", time.perf_counter() - t0,
                                  not problems, "; ".join(problems))
                    checks.append(check)
                    _report(check)
                if any(p.path == "pages/cats_dogs.py" for p in pages):
                    t0 = time.perf_counter()
                    problems = check_catsdogs_in_worker(browser, server.url, server.proc.pid,
                                                        server.env["DNN2_RUNS_DIR"], max(args.timeout, 180.0))
                    check = Check("cats vs dogs: two learners, trained by a worker, features cached once",
                                  time.perf_counter() - t0, not problems, "; ".join(problems))
                    checks.append(check)
                    _report(check)
                    if problems:
                        print(server.log_tail(40), flush=True)
                for info in pages:
                    check = check_page(browser, server.url, info, args.timeout)
                    checks.append(check)
                    _report(check)
                if any(p.path == "pages/convolution.py" for p in pages):
                    check = check_convolution_stride(browser, server.url, args.timeout)
                    checks.append(check)
                    _report(check)
                    check = check_convolution_click(browser, server.url, args.timeout)
                    checks.append(check)
                    _report(check)
                for info in pages:  # the presenter view at a projector's 1280x720 (issue 15)
                    t0 = time.perf_counter()
                    problems = check_presenter(browser, server.url, info.path,
                                               HOME_H1 if info is HOME else info.title, args.timeout)
                    check = Check(f"presenter view: {Path(info.path).stem}", time.perf_counter() - t0,
                                  not problems, "; ".join(problems))
                    checks.append(check)
                    _report(check)
            finally:
                browser.close()
    except ServerError as exc:
        print(f"FAIL server: {exc}", flush=True)
        checks.append(Check("server", float("nan"), False, str(exc)))
    except Exception:
        traceback.print_exc()
        checks.append(Check("run", float("nan"), False, "unexpected error"))
    passed = sum(c.ok for c in checks)
    failed = len(checks) - passed
    print(f"screenshots: {ARTIFACTS}; total {time.perf_counter() - t_run:.1f} s", flush=True)
    print(f"e2e: {passed} passed, {failed} failed", flush=True)
    return 1 if failed or not checks else 0


def _report(check: Check) -> None:
    status = "OK  " if check.ok else "FAIL"
    line = f"{status} {check.name:<48} {check.seconds:6.1f} s"
    if check.detail:
        line += f"  {check.detail}"
    print(line, flush=True)


if __name__ == "__main__":
    sys.exit(main())
