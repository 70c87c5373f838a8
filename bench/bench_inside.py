"""Benchmark for "Inside the network": filter-exemplar speed and one-pixel-attack success.

    .venv/bin/python bench/bench_inside.py                      # everything, 100 test digits
    .venv/bin/python bench/bench_inside.py --n 30 --skip-vgg    # a shorter run
    DNN2_DATA_DIR=/work/shared/data .venv/bin/python bench/bench_inside.py

    .venv/bin/python bench/bench_inside.py --page              # the page itself, in Chromium
    .venv/bin/python bench/bench_inside.py --page --changes 20 --port 8641
    .venv/bin/python bench/bench_inside.py --page --query 'n=12&topk=8'   # a bigger exemplar grid

Prints markdown tables:
0. with --page only: the page on a real ``streamlit run`` server in Debian's Chromium (1400x1000):
   the first load on a cold server, the first load of a second session, generating 4 exemplars,
   then a cycle of widget changes (layer, number of filters, dataset images per filter, the image
   number, the hypothesis tab's top filters, the class Grad-CAM explains), each timed from the
   input to the end of the rerun it causes and the charts painted: first change, p50, p95, max;
   and the exemplar grid as drawn at 1400x1000 and 1280x720 (sideways stretch, title size, overlaps);
1. seconds per exemplar (30 gradient steps, 2 upscaling stages, jitter + blur) for VGG16 blocks
   (random weights unless the ImageNet file is present: the cost is the same) and for the MNIST
   CNN's three conv layers; the first call includes tracing the step function, later calls don't;
2. the one-pixel attack on the first N MNIST test digits, skipping any the CNN already gets wrong
   (as the paper does), for 1, 3 and 5 pixels, with the CNN trained 5 epochs on full MNIST:
   success rate and mean model evaluations (queries) per digit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from dnn2core import adversarial, data, digits, interpret, pretrained  # noqa: E402
from dnn2core.device import configure_tensorflow  # noqa: E402
from dnn2core.models import build_mnist_cnn  # noqa: E402


def time_exemplar(model, layer: str, reps: int, **kwargs) -> tuple[float, float]:
    """(first call incl. tracing, mean of the next ``reps`` calls) in seconds."""
    t = time.perf_counter()
    interpret.filter_exemplar(model, layer, 0, **kwargs)
    first = time.perf_counter() - t
    times = []
    for f in range(1, reps + 1):
        t = time.perf_counter()
        interpret.filter_exemplar(model, layer, f, **kwargs)
        times.append(time.perf_counter() - t)
    return first, float(np.mean(times))


def bench_exemplars(cnn, args) -> list[str]:
    rows = ["| model | layer | image size | first call (s) | per exemplar (s) |", "|---|---|---|---|---|"]
    common = dict(steps=30, upscaling_steps=2, jitter=1, blur=0.5)
    if not args.skip_vgg:
        vgg, info = pretrained.load_base("vgg16", "imagenet", download=False)
        label = "VGG16 (ImageNet)" if info.pretrained else "VGG16 (random weights)"
        for layer in ("block1_conv2", "block3_conv3", "block5_conv3"):
            for size in args.vgg_sizes:
                first, warm = time_exemplar(vgg, layer, args.reps, size=size, preprocess=interpret.vgg16_preprocess,
                                            **{**common, "jitter": max(1, size // 32), "blur": 1.0})
                rows.append(f"| {label} | {layer} | {size}x{size} | {first:.2f} | {warm:.2f} |")
                print(rows[-1], flush=True)
    for layer in interpret.conv_layers(cnn):
        first, warm = time_exemplar(cnn, layer, args.reps, **common)
        rows.append(f"| MNIST CNN | {layer} | 28x28 | {first:.2f} | {warm:.3f} |")
        print(rows[-1], flush=True)
    return rows


def train_cnn(args):
    loaded = data.load_mnist()
    if not loaded.provenance.complete:
        print(f"WARNING: {loaded.provenance.badge}: {loaded.provenance.detail}. Set DNN2_DATA_DIR for full MNIST.")
    split = digits.prepare(loaded.data)
    import keras

    keras.utils.set_random_seed(args.seed)
    model = build_mnist_cnn()
    t = time.perf_counter()
    model.fit(digits.as_input(split.x_train, "cnn"), split.y_train, epochs=args.epochs, batch_size=64, verbose=0)
    seconds = time.perf_counter() - t
    probs = interpret.predict_probs(model, digits.as_input(split.x_test, "cnn"))
    accuracy = float(np.mean(probs.argmax(axis=1) == split.y_test))
    note = (f"CNN trained {args.epochs} epochs on {len(split.y_train):,} digits ({loaded.provenance.source}) in "
            f"{seconds:.0f} s: test accuracy {accuracy:.2%} on {len(split.y_test):,}.")
    print(note, flush=True)
    return model, split, note


def bench_attack(model, split, args) -> list[str]:
    x = digits.as_input(split.x_test[:args.n], "cnn")
    y = split.y_test[:args.n]
    budget = args.popsize * (args.maxiter + 1) + 1
    rows = [f"| pixels | digits attacked (of {args.n}) | success rate | mean evaluations | "
            "mean evaluations when fooled | seconds |", "|---|---|---|---|---|---|"]
    for pixels in args.pixels:
        def progress(i, n):
            if i % 10 == 0 or i == n:
                print(f"  {pixels} px: {i}/{n}", flush=True)
        frame, s = adversarial.attack_many(model, x, y, pixels=pixels, maxiter=args.maxiter, popsize=args.popsize,
                                           seed=args.seed, progress=progress)
        fooled = "–" if not s["successes"] else f"{s['mean_queries_success']:,.0f}"
        rows.append(f"| {pixels} | {s['attacked']} | {s['success_rate']:.1%} ({s['successes']}/{s['attacked']}) | "
                    f"{s['mean_queries']:,.0f} | {fooled} | {s['seconds']:.0f} |")
        print(rows[-1], flush=True)
    rows.append("")
    rows.append(f"Budget per digit: population {args.popsize} x up to {args.maxiter} generations "
                f"(at most {budget:,} evaluations, counting the clean image and the initial population); "
                "the search stops at the first generation that fools the model.")
    return rows


# ------------------------------------------------------------------------------------- the page in a browser
def _timed(page, action, settle_s: float = 1.5) -> float | None:
    """Seconds from ``action`` to the end of the rerun it caused (charts painted), or None when it
    caused no rerun within ``settle_s`` (a tab switch that only shows what is already drawn)."""
    from harness import wait_for_rerun

    return wait_for_rerun(page, action, timeout=180.0, start_within=settle_s)


def _page_actions(page) -> list[tuple[str, object]]:
    """One cycle of the widget changes a learner makes, as (name, action)."""
    def tab(name):
        return lambda: page.get_by_role("tab", name=name).click()

    def choose(label, option):
        def act():
            page.get_by_role("combobox", name=label).click()
            page.get_by_role("option", name=option).first.click() if isinstance(option, str) \
                else page.get_by_role("option").nth(option).click()
        return act

    def key(label, k):
        def act():
            s = page.get_by_role("slider", name=label)
            s.focus()
            s.press(k)
        return act

    image_up = page.locator('[data-testid="stSidebar"] [data-testid="stNumberInputStepUp"]').first
    return [("layer: first", choose("Convolution layer", 0)), ("layer: second", choose("Convolution layer", 1)),
            ("filters +1", key("First N filters", "ArrowRight")), ("filters -1", key("First N filters", "ArrowLeft")),
            ("dataset images -1", key("Dataset images per filter", "ArrowLeft")),
            ("dataset images +1", key("Dataset images per filter", "ArrowRight")),
            ("image number +1", image_up.click),
            ("tab: hypothesis", tab("Test the hypothesis")),
            ("top filters +1", key("Top filters to show", "ArrowRight")),
            ("top filters -1", key("Top filters to show", "ArrowLeft")),
            ("tab: Grad-CAM", tab("Saliency & Grad-CAM")),
            ("explain class 3", choose("Explain the score of class", "3")),
            ("explain predicted", choose("Explain the score of class", "predicted")),
            ("tab: exemplars", tab("Filter exemplars"))]


_TILES_JS = """async () => {
  const chart = [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stPlotlyChart"]')]
    .find(c => c.offsetParent !== null && c.querySelector('.annotation-text'));
  if (!chart) return null;
  const stretch = [];
  for (const im of chart.querySelectorAll('image')) {
    const href = im.getAttribute('href') || im.getAttribute('xlink:href');
    const pic = new Image();
    await new Promise(r => { pic.onload = r; pic.onerror = r; pic.src = href; });
    const box = im.getBoundingClientRect();
    if (pic.naturalWidth && box.height) stretch.push((box.width / box.height) / (pic.naturalWidth / pic.naturalHeight));
  }
  const fonts = [...chart.querySelectorAll('.annotation-text')].map(t => parseFloat(getComputedStyle(t).fontSize));
  const boxes = [...chart.querySelectorAll('.annotation')].map(a => a.getBoundingClientRect());
  let overlaps = 0;
  for (let i = 0; i < boxes.length; i++) for (let j = i + 1; j < boxes.length; j++) {
    const a = boxes[i], b = boxes[j];
    if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1) overlaps++;
  }
  return {images: stretch.length, stretchMin: Math.min(...stretch), stretchMax: Math.max(...stretch),
          fontMin: Math.min(...fonts), titles: fonts.length, overlaps: overlaps,
          width: chart.getBoundingClientRect().width};
}"""


def check_tiles(page) -> list[str]:
    """The exemplar grid as drawn at a learner's 1400x1000 and a projector's 1280x720: how much each
    picture is stretched sideways (drawn aspect / its own; 1.00 = not at all), the smallest title
    font, and titles that overlap each other."""
    from harness import wait_for_app_idle

    rows = ["| viewport | pictures | stretch (drawn / own aspect) | smallest title | titles overlapping |",
            "|---|---|---|---|---|"]
    for width, height in ((1400, 1000), (1280, 720)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(800)
        wait_for_app_idle(page, 60)
        got = page.evaluate(_TILES_JS)
        if not got:
            rows.append(f"| {width}x{height} | no grid | | | |")
            continue
        rows.append(f"| {width}x{height} | {got['images']} | {got['stretchMin']:.2f}-{got['stretchMax']:.2f} | "
                    f"{got['fontMin']:.0f} px ({got['titles']} titles) | {got['overlaps']} |")
        page.screenshot(path=str(Path(__file__).resolve().parents[1] / "artifacts" / "e2e" /
                                 f"inside-grid-{width}.png"), full_page=False)
    page.set_viewport_size({"width": 1400, "height": 1000})
    return rows


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def bench_page(args) -> list[str]:
    """The page on a real server in Chromium: loads, then reruns after widget changes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
    from harness import ARTIFACTS, Server, launch_browser, page_problems, wait_for_app_idle
    from playwright.sync_api import sync_playwright

    env = {"DNN2_DATA_DIR": os.environ["DNN2_DATA_DIR"]} if "DNN2_DATA_DIR" in os.environ else {}
    query = f"/inside?model={args.page_model}" + (f"&{args.query}" if args.query else "")
    rows: list[tuple[str, str]] = []
    changes: list[tuple[str, float]] = []
    with Server(port=args.port, env=env, log_path=ARTIFACTS / "bench_inside_server.log") as server, \
            sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            page.goto(server.url + query, wait_until="commit")
            wait_for_app_idle(page, 300)
            rows.append(("first load, cold server (TensorFlow import, model load)", f"{time.perf_counter() - t0:.2f}"))
            problems = page_problems(page)
            if problems.exceptions or problems.errors:
                raise RuntimeError(f"the page failed: {problems}")
            page.close()
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t0 = time.perf_counter()
            page.goto(server.url + query, wait_until="commit")
            wait_for_app_idle(page, 300)
            rows.append(("first load, a second session", f"{time.perf_counter() - t0:.2f}"))
            gen = page.get_by_role("button", name="Generate exemplars for filters")
            seconds = _timed(page, gen.click)
            rows.append((f"generate exemplars (button: {gen.inner_text().split('filters ')[-1]})",
                         f"{seconds:.2f}" if seconds is not None else "no rerun"))
            tiles = check_tiles(page)
            actions = _page_actions(page)
            i = 0
            while len(changes) < args.changes:
                name, act = actions[i % len(actions)]
                i += 1
                seconds = _timed(page, act)
                if seconds is not None:
                    changes.append((name, seconds))
                    print(f"  {name}: {seconds:.2f} s", flush=True)
                if i > 10 * args.changes:
                    break
            problems = page_problems(page)
            if problems.exceptions or problems.errors:
                raise RuntimeError(f"the page failed during the changes: {problems}")
        finally:
            browser.close()
    times = [t for _, t in changes]
    rows += [("rerun after the first widget change", f"{times[0]:.2f}" if times else "n/a"),
             (f"rerun p50 over {len(times)} changes", f"{_pct(times, 50):.2f}"),
             (f"rerun p95 over {len(times)} changes", f"{_pct(times, 95):.2f}"),
             ("rerun max", f"{max(times, default=float('nan')):.2f}")]
    setting = f"{args.page_model} model" + (f", {args.query}" if args.query else "")
    out = [f"| {setting}, 1400x1000 | seconds |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
    by_action: dict[str, list[float]] = {}
    for name, t in changes:
        by_action.setdefault(name, []).append(t)
    out += ["", "| widget change | reruns | median (s) |", "|---|---|---|"]
    out += [f"| {name} | {len(ts)} | {float(np.median(ts)):.2f} |" for name, ts in by_action.items()]
    return out + ["", "Exemplar grid after generating:", ""] + tiles


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="MNIST test digits to attack (default 100)")
    parser.add_argument("--pixels", type=lambda s: [int(p) for p in s.split(",")], default=[1, 3, 5])
    parser.add_argument("--popsize", type=int, default=200, help="candidates per generation (paper: 400)")
    parser.add_argument("--maxiter", type=int, default=50, help="generations at most (paper: 100)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reps", type=int, default=3, help="timed exemplars per layer after the first")
    parser.add_argument("--vgg-sizes", type=lambda s: [int(p) for p in s.split(",")], default=[128, 224])
    parser.add_argument("--skip-vgg", action="store_true")
    parser.add_argument("--skip-attack", action="store_true")
    parser.add_argument("--page", action="store_true", help="time the page in Chromium instead (loads and reruns)")
    parser.add_argument("--changes", type=int, default=24, help="--page: widget changes to time")
    parser.add_argument("--port", type=int, default=None, help="--page: server port (default: a free one)")
    parser.add_argument("--page-model", default="reference", help="--page: the model option to open")
    parser.add_argument("--query", default="", help="--page: more settings for the link, e.g. 'n=12&topk=8'")
    args = parser.parse_args()
    if args.page:
        table = bench_page(args)
        print("\n# Inside the network in Chromium\n")
        print("\n".join(table))
        return

    info = configure_tensorflow()
    print(f"Device: {info.label}; TensorFlow {info.tensorflow_version}, Keras {info.keras_version}", flush=True)
    model, split, note = train_cnn(args)
    print("\n## Filter exemplars: 30 gradient steps, 2 upscaling stages, jitter + blur\n", flush=True)
    ex_rows = bench_exemplars(model, args)
    at_rows = []
    if not args.skip_attack:
        print("\n## One-pixel attack on MNIST test digits\n", flush=True)
        at_rows = bench_attack(model, split, args)
    print("\n\n# Results\n")
    print(f"{info.label}. {note}\n")
    print("\n".join(ex_rows))
    if at_rows:
        print()
        print("\n".join(at_rows))


if __name__ == "__main__":
    main()
