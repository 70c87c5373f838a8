"""The presenter view in Chromium: each page opened with ?present=1 at a projector's 1280x720.

Checks what an instructor would see go wrong on the wall: the larger text is not applied, the
sidebar still takes a third of the screen, the link lost present=1, or (on the convolution page,
the issue's example) the feature map is still below the fold. Saves what the projector shows (the
viewport, not the full page) as artifacts/e2e/present-<stem>.png.
"""

from __future__ import annotations

from pathlib import Path

from harness import ARTIFACTS, page_problems, wait_for_app_idle

VIEWPORT = {"width": 1280, "height": 720}
ABOVE_THE_FOLD = {"convolution"}  # pages whose first figure must start inside the first screen

_STATE_JS = """() => {
  const sidebar = document.querySelector('[data-testid="stSidebar"]');
  const chart = document.querySelector('[data-testid="stMain"] [data-testid="stPlotlyChart"]');
  return {font: getComputedStyle(document.documentElement).fontSize,
          sidebarRight: sidebar ? sidebar.getBoundingClientRect().right : 0,
          chartTop: chart ? chart.getBoundingClientRect().top : null,
          url: location.href};
}"""


def check_presenter(browser, base_url: str, path: str, title: str, timeout: float) -> list[str]:
    """Problems with one page in the presenter view (empty when it is right)."""
    stem = Path(path).stem
    page = browser.new_page(viewport=VIEWPORT)
    problems: list[str] = []
    try:
        address = "/" if stem == "home" else f"/{stem}"
        page.goto(f"{base_url}{address}?present=1", wait_until="domcontentloaded")
        wait_for_app_idle(page, timeout)
        found = page_problems(page)
        problems += [f"exception: {t}" for t in found.exceptions] + [f"error: {t}" for t in found.errors]
        if found.title != title:
            problems.append(f"h1 is {found.title!r}, expected {title!r}")
        state = page.evaluate(_STATE_JS)
        if state["font"] != "20px":
            problems.append(f"text is {state['font']}, not the presenter's 20px")
        if state["sidebarRight"] > 0:
            problems.append(f"the sidebar is open ({state['sidebarRight']:.0f} px wide)")
        if "present=1" not in state["url"]:
            problems.append("the link lost present=1")
        if stem in ABOVE_THE_FOLD and (state["chartTop"] is None or state["chartTop"] >= VIEWPORT["height"]):
            problems.append(f"the first figure starts at {state['chartTop']} px, below the fold")
        page.screenshot(path=str(ARTIFACTS / f"present-{stem}.png"))
    except Exception as exc:  # noqa: BLE001 - a browser error is this page's failure, not the run's
        problems.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    finally:
        page.close()
    return problems
