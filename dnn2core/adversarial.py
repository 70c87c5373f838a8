"""The one-pixel attack (Su, Vargas and Sakurai, 2017): how fragile is a classifier?

Differential evolution searches over candidate perturbations, each a list of (row, column,
value) for 1 to a few pixels. It needs no gradients, only the model's probabilities, so it
works on any classifier as a black box. Each generation's whole population is scored with one
batched prediction (``vectorized=True``), and a callback stops the search at the first
generation that fooled the model: the number of model queries is the cost of the attack.

Honest expectations: published implementations use a population of 400 for up to 100
generations (~40,000 queries per image) and still fail on most images of a robust model; on
MNIST with one pixel the success rate is low. The point for learners is that it ever works.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "attack_figure",
    "attack_many",
    "AttackResult",
    "AttackSettings",
    "BatchAttack",
    "batch_task",
    "confidence_figure",
    "HONEST_NOTE",
    "one_pixel_attack",
    "perturb",
    "probabilities_figure",
]

ValueRange = tuple[float, float]
Pixel = tuple[float, ...]  # (row, column, value) or (row, column, red, green, blue); row and column are ints


@dataclass(frozen=True, eq=False)
class AttackResult:
    """What one attack did, as typed fields rather than a dict read by string: a misspelt field is
    an AttributeError at once (not a KeyError in a page), and a result kept in a session or a run
    cannot be changed by whoever reads it later. (eq=False: numpy fields have no single truth value.)"""

    label: int  # the true class
    target: int | None  # the class the model had to predict (targeted), else None
    success: bool  # the model was fooled (or already wrong)
    already: bool  # the model got the clean image wrong: nothing was attacked
    image: np.ndarray  # the attacked image, same shape as the input
    pixels: tuple[Pixel, ...]  # the changed pixels, at most pixels_asked
    before: np.ndarray  # class probabilities of the clean image
    after: np.ndarray  # class probabilities of the attacked image
    prediction_before: int
    prediction_after: int
    queries: int  # images the model scored
    calls: int  # batched predictions
    generations: int
    confidence_curve: tuple[float, ...]  # best candidate's true-class probability: initial population, each generation
    target_curve: tuple[float, ...] | None  # the target's probability likewise (targeted only)
    seconds: float
    message: str
    pixels_asked: int
    popsize: int
    maxiter: int

    @property
    def targeted(self) -> bool:
        return self.target is not None

    def pixel_rows(self) -> list[dict[str, float]]:
        """The changed pixels as table rows, with column names for grey or colour images."""
        if not self.pixels:
            return []
        names = ["row", "column", "value"] if len(self.pixels[0]) == 3 else ["row", "column", "red", "green", "blue"]
        return [dict(zip(names, p)) for p in self.pixels]


@dataclass(frozen=True)
class AttackSettings:
    """One attack's budget and goal, shared by the single attack and the batch (same numbers in both)."""

    pixels: int = 1
    popsize: int = 400
    maxiter: int = 75
    seed: int = 0
    target: int | None = None

    @property
    def query_budget(self) -> int:
        """Most model queries one image can cost: the clean image, the initial population and one
        population per generation."""
        return self.popsize * (self.maxiter + 1) + 1

HONEST_NOTE = (
    "Published one-pixel attacks run a population of 400 for up to 100 generations: about 40,000 model "
    "queries per image (Su et al. report needing up to ~30,000 on average for hard images), and they still "
    "fail on most images at their default budget, especially on MNIST where a pixel is a large part of the "
    "digit's stroke but the network has learnt to ignore isolated specks. A failure here is the usual outcome, "
    "not a bug; that it ever succeeds is the lesson.")


def _predictor(model, preprocess: Callable | None) -> Callable[[np.ndarray], np.ndarray]:
    """batch -> probabilities (n, classes); a single sigmoid unit becomes [1 - p, p].

    Keras models go through ``predict_on_batch`` (a compiled function, about twice as fast as
    an eager call on a batch of a few hundred images); anything else is simply called."""
    is_keras = hasattr(model, "predict_on_batch")

    def predict(batch: np.ndarray) -> np.ndarray:
        x = preprocess(batch) if preprocess is not None else batch
        out = model.predict_on_batch(x) if is_keras else model(x)
        out = np.asarray(out, dtype=np.float64)
        if out.ndim == 1:
            out = out[:, None]
        if out.shape[1] == 1:
            out = np.concatenate([1.0 - out, out], axis=1)
        return out
    return predict


def perturb(image: np.ndarray, candidates: np.ndarray, channels: int) -> np.ndarray:
    """Apply candidate perturbations to copies of one image.

    image: (H, W, C). candidates: (S, pixels * (2 + C)), each pixel as row, column, C values.
    Returns (S, H, W, C). Rows and columns are rounded and clipped to the image."""
    h, w = image.shape[:2]
    cand = np.atleast_2d(np.asarray(candidates, dtype=np.float64))
    d = 2 + channels
    if cand.shape[1] % d:
        raise ValueError(f"Each pixel needs {d} numbers (row, column and {channels} value(s)).")
    batch = np.repeat(image[None], len(cand), axis=0)
    idx = np.arange(len(cand))
    for k in range(cand.shape[1] // d):
        rows = np.clip(np.rint(cand[:, k * d]), 0, h - 1).astype(np.intp)
        cols = np.clip(np.rint(cand[:, k * d + 1]), 0, w - 1).astype(np.intp)
        batch[idx, rows, cols, :] = cand[:, k * d + 2:k * d + d]
    return batch


def _check(image: np.ndarray, pixels: int, popsize: int, maxiter: int) -> tuple[np.ndarray, bool]:
    img = np.asarray(image, dtype=np.float32)
    gray2d = img.ndim == 2
    work = img[..., None] if gray2d else img
    if work.ndim != 3 or work.shape[2] not in (1, 3):
        raise ValueError(f"The image must be HxW (grayscale) or HxWx1 / HxWx3, got shape {img.shape}.")
    if isinstance(pixels, bool) or int(pixels) != pixels or not 1 <= pixels <= work.shape[0] * work.shape[1]:
        raise ValueError(f"pixels must be a whole number from 1 to the number of pixels, got {pixels!r}.")
    if popsize < 5:
        raise ValueError("Differential evolution needs a population of at least 5 candidates.")
    if maxiter < 1:
        raise ValueError("Allow at least 1 generation.")
    return work, gray2d


def one_pixel_attack(model, image: np.ndarray, label: int, pixels: int = 1, *, maxiter: int = 75,
                     popsize: int = 400, seed: int = 0, targeted: int | None = None,
                     callback: Callable[[int, float, int], Any] | None = None,
                     value_range: ValueRange = (0.0, 1.0), max_batch: int = 1024,
                     preprocess: Callable | None = None) -> AttackResult:
    """Search for ``pixels`` changed pixels that make the model misclassify ``image``.

    model: a Keras classifier or any function batch -> probabilities, fed batches of the
    image's own shape (HxW, HxWx1 or HxWx3, in ``value_range``). label: the true class.
    targeted: None to accept any wrong class, else the class the model must predict.
    popsize: candidates per generation (the paper uses 400); maxiter: generations at most.
    callback(generation, true_class_confidence, queries) runs after every generation (the
    page's progress bar); returning True stops the search.

    Returns an ``AttackResult``; when the model already gets the image wrong, nothing is
    attacked (``already``) and the clean image comes back."""
    from scipy.optimize import differential_evolution

    started = time.perf_counter()
    work, gray2d = _check(image, pixels, popsize, maxiter)
    h, w, channels = work.shape
    feed_shape = image.shape if not gray2d else (h, w)
    predict = _predictor(model, preprocess)
    lo, hi = float(value_range[0]), float(value_range[1])
    state = {"queries": 0, "calls": 0}

    def score(batch: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(batch), max_batch):
            chunk = batch[i:i + max_batch].reshape((-1, *feed_shape))
            out.append(predict(chunk))
            state["calls"] += 1
        state["queries"] += len(batch)
        return np.concatenate(out)

    before = score(work[None])[0]
    n_classes = len(before)
    label = int(label)
    if not 0 <= label < n_classes:
        raise ValueError(f"The model has {n_classes} classes (0 to {n_classes - 1}); label {label} does not exist.")
    if targeted is not None:
        targeted = int(targeted)
        if not 0 <= targeted < n_classes or targeted == label:
            raise ValueError(f"The target must be a class from 0 to {n_classes - 1} other than the true class {label}.")
    pred_before = int(np.argmax(before))
    fixed = dict(label=label, target=targeted, before=before, prediction_before=pred_before, pixels_asked=int(pixels),
                 popsize=int(popsize), maxiter=int(maxiter))
    already = pred_before == targeted if targeted is not None else pred_before != label
    if already:
        return AttackResult(**fixed, success=True, already=True, image=np.asarray(image, dtype=np.float32).copy(),
                            pixels=(), after=before, prediction_after=pred_before, queries=state["queries"],
                            calls=state["calls"], generations=0, confidence_curve=(float(before[label]),),
                            target_curve=(float(before[targeted]),) if targeted is not None else None,
                            seconds=time.perf_counter() - started,
                            message="The model already gets this image wrong: there is nothing to attack.")

    d = 2 + channels
    bounds = [(0, h - 1), (0, w - 1)] + [(lo, hi)] * channels
    bounds = bounds * pixels
    integrality = np.array(([True, True] + [False] * channels) * pixels)
    rng = np.random.default_rng(seed)
    init = np.empty((popsize, d * pixels))
    for k in range(pixels):
        init[:, k * d] = rng.integers(0, h, popsize)
        init[:, k * d + 1] = rng.integers(0, w, popsize)
        init[:, k * d + 2:k * d + d] = rng.uniform(lo, hi, (popsize, channels))

    best = {"energy": np.inf, "x": None, "probs": None}
    found = {"energy": np.inf, "x": None, "probs": None}
    curve: list[float] = []
    target_curve: list[float] = []

    def objective(x: np.ndarray) -> np.ndarray:  # x: (N, S), one column per candidate
        cand = x.T
        probs = score(perturb(work, cand, channels))
        if targeted is None:
            energy = probs[:, label]
            fooled = probs.argmax(axis=1) != label
        else:
            energy = 1.0 - probs[:, targeted]
            fooled = probs.argmax(axis=1) == targeted
        i = int(np.argmin(energy))
        if energy[i] < best["energy"]:
            best.update(energy=float(energy[i]), x=cand[i].copy(), probs=probs[i])
        if fooled.any():
            j = int(np.flatnonzero(fooled)[np.argmin(energy[fooled])])
            if energy[j] < found["energy"]:
                found.update(energy=float(energy[j]), x=cand[j].copy(), probs=probs[j])
        curve.append(float(best["probs"][label]))
        if targeted is not None:
            target_curve.append(float(best["probs"][targeted]))
        return energy

    generations = 0

    def on_generation(intermediate_result) -> bool:  # scipy passes the name-matched keyword
        nonlocal generations
        generations += 1
        stop = False
        if callback is not None:
            stop = bool(callback(generations, curve[-1], state["queries"]))
        return stop or found["x"] is not None

    # atol=-1: never stop on "convergence" (a flat landscape where every candidate scores the same);
    # only success, the learner's callback or the generation budget end the search.
    differential_evolution(objective, bounds, maxiter=maxiter, init=init, rng=rng, polish=False,
                           vectorized=True, updating="deferred", integrality=integrality, tol=0.0, atol=-1.0,
                           mutation=(0.5, 1.0), recombination=0.7, callback=on_generation)

    chosen = found if found["x"] is not None else best
    attacked = perturb(work, chosen["x"][None], channels)[0]
    changed = []
    for k in range(pixels):
        r = int(np.clip(np.rint(chosen["x"][k * d]), 0, h - 1))
        c = int(np.clip(np.rint(chosen["x"][k * d + 1]), 0, w - 1))
        values = tuple(float(v) for v in attacked[r, c])
        entry = (r, c, *values)
        if (r, c) not in [(p[0], p[1]) for p in changed]:
            changed.append(entry)
    after = chosen["probs"]
    success = found["x"] is not None
    out_image = attacked[..., 0] if gray2d else attacked
    message = (f"Fooled after {generations} generation(s) and {state['queries']:,} queries." if success else
               f"Not fooled within {generations} generation(s) ({state['queries']:,} queries).")
    return AttackResult(**fixed, success=success, already=False, image=out_image.astype(np.float32),
                        pixels=tuple(changed), after=after, prediction_after=int(np.argmax(after)),
                        queries=state["queries"], calls=state["calls"], generations=generations,
                        confidence_curve=tuple(curve),
                        target_curve=tuple(target_curve) if targeted is not None else None,
                        seconds=time.perf_counter() - started, message=message)


def attack_many(model, images: np.ndarray, labels: Sequence[int], *, pixels: int = 1, maxiter: int = 75,
                popsize: int = 400, seed: int = 0, targeted: int | None = None,
                value_range: ValueRange = (0.0, 1.0), preprocess: Callable | None = None,
                progress: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Attack several images; images the model already gets wrong are skipped (as in the paper).

    ``should_stop`` is asked after every generation (a Stop click or a spent budget): the image
    being attacked is then left out, and the images done so far are the result.
    Returns one row per image and a summary: attacked, skipped, successes, success_rate,
    mean_queries (over attacked images), mean_queries_success, seconds."""
    rows = []
    started = time.perf_counter()
    stop_cb = (lambda generation, confidence, queries: bool(should_stop())) if should_stop is not None else None
    for i, (img, lab) in enumerate(zip(images, labels)):
        if should_stop is not None and should_stop():
            break
        if targeted is not None and int(lab) == targeted:
            rows.append({"image": i, "label": int(lab), "skipped": True, "success": False, "queries": 0,
                         "generations": 0, "prediction_after": int(lab), "seconds": 0.0})
        else:
            res = one_pixel_attack(model, img, int(lab), pixels, maxiter=maxiter, popsize=popsize, seed=seed + i,
                                   targeted=targeted, value_range=value_range, preprocess=preprocess,
                                   callback=stop_cb)
            if should_stop is not None and should_stop():
                break  # cut short: not a measurement
            rows.append({"image": i, "label": int(lab), "skipped": res.already,
                         "success": res.success and not res.already, "queries": res.queries,
                         "generations": res.generations, "prediction_after": res.prediction_after,
                         "seconds": res.seconds})
        if progress is not None:
            progress(i + 1, len(labels))
    frame = pd.DataFrame(rows)
    attacked = frame[~frame["skipped"]] if len(frame) else frame
    successes = int(attacked["success"].sum()) if len(attacked) else 0
    summary = {
        "attacked": int(len(attacked)), "skipped": int(len(frame) - len(attacked)), "successes": successes,
        "success_rate": successes / len(attacked) if len(attacked) else float("nan"),
        "mean_queries": float(attacked["queries"].mean()) if len(attacked) else float("nan"),
        "mean_queries_success": (float(attacked.loc[attacked["success"], "queries"].mean()) if successes
                                 else float("nan")),
        "seconds": time.perf_counter() - started,
    }
    return frame, summary



class TaskJob(Protocol):
    """What a batch task needs from the training job that runs it (dnn2core.training.TrainingJob)."""

    def report_task(self, name: str, done: int, total: int) -> None: ...

    def should_stop(self) -> str | None: ...


@dataclass(frozen=True)
class BatchAttack:
    """The batch attack as a job task (``ModelRun(task=...)``): it runs in a training slot under the
    job's budget, so a class's batches queue like trainings; Stop and the time budget end it
    between generations. Each image gets seed ``settings.seed + i``, as in ``attack_many``.

    A plain picklable object (a Keras model pickles as its saved file), so a worker process runs
    the attack and the web process only serves pages."""

    model: Any
    images: np.ndarray
    labels: tuple[int, ...]
    settings: AttackSettings
    value_range: ValueRange = (0.0, 1.0)
    preprocess: Callable | None = None

    def __call__(self, job: TaskJob, name: str) -> dict[str, Any]:
        s = self.settings
        frame, summary = attack_many(
            self.model, self.images, list(self.labels), pixels=s.pixels, maxiter=s.maxiter, popsize=s.popsize,
            seed=s.seed, targeted=s.target, value_range=self.value_range, preprocess=self.preprocess,
            progress=lambda i, n: job.report_task(name, i, n), should_stop=lambda: job.should_stop() is not None)
        return {"summary": summary, "rows": frame.to_dict("records")}


def batch_task(model, images: np.ndarray, labels: Sequence[int], settings: AttackSettings, *,
               value_range: ValueRange = (0.0, 1.0), preprocess: Callable | None = None) -> BatchAttack:
    """The batch attack over ``images`` as a job task (see ``BatchAttack``)."""
    return BatchAttack(model, np.asarray(images), tuple(int(v) for v in labels), settings, tuple(value_range),
                       preprocess)


# --------------------------------------------------------------------------------------------
# --- figures
# --------------------------------------------------------------------------------------------


def _display(image: np.ndarray, value_range: ValueRange) -> np.ndarray:
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    lo, hi = value_range
    return (np.clip((img - lo) / (hi - lo), 0, 1) * 255).round().astype(np.uint8)


def attack_figure(original: np.ndarray, attacked: np.ndarray, pixels: Sequence[tuple], titles: Sequence[str],
                  value_range: ValueRange = (0.0, 1.0), height: int = 340) -> go.Figure:
    """Original and attacked image side by side, every changed pixel circled on both."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=list(titles), horizontal_spacing=0.05)
    for col, img in ((1, original), (2, attacked)):
        z = _display(img, value_range)
        if z.ndim == 3:
            fig.add_trace(go.Image(z=z), row=1, col=col)
        else:
            fig.add_trace(go.Heatmap(z=z, colorscale="gray", zmin=0, zmax=255, showscale=False,
                                     hovertemplate="row %{y}, col %{x}: %{z}<extra></extra>"), row=1, col=col)
            fig.update_yaxes(autorange="reversed", row=1, col=col)
        h, w = z.shape[:2]
        radius = max(1.2, 0.06 * max(h, w))
        for p in pixels:
            r, c = p[0], p[1]
            fig.add_shape(type="circle", x0=c - radius, x1=c + radius, y0=r - radius, y1=r + radius,
                          line=dict(color="#ff1744", width=2), row=1, col=col)
        fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=col)
        fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False,
                         scaleanchor=f"x{'' if col == 1 else col}", row=1, col=col)
    fig.update_layout(height=height, margin=dict(l=5, r=5, t=40, b=5))
    return fig


def probabilities_figure(before: np.ndarray, after: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """Class probabilities before and after the attack, as grouped bars."""
    from dnn2core.plots import bars_figure

    fig = bars_figure(list(class_names), {"before": list(np.asarray(before)), "after": list(np.asarray(after))},
                      title="Class probabilities", y_title="probability")
    fig.update_yaxes(range=[0, 1])
    fig.update_xaxes(type="category")
    return fig


def confidence_figure(curve: Sequence[float], true_name: str, target_curve: Sequence[float] | None = None,
                      target_name: str = "", maxiter: int | None = None) -> go.Figure:
    """True-class confidence of the best candidate, per generation (0 = the initial population)."""
    fig = go.Figure(go.Scatter(x=list(range(len(curve))), y=list(curve), mode="lines+markers",
                               name=f"p(true class {true_name})", line=dict(color="#1f77b4")))
    if target_curve:
        fig.add_trace(go.Scatter(x=list(range(len(target_curve))), y=list(target_curve), mode="lines+markers",
                                 name=f"p(target {target_name})", line=dict(color="#d62728")))
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=40, b=10), title="Best candidate, per generation",
                      xaxis_title="generation", yaxis_title="probability", legend=dict(orientation="h", y=-0.3))
    fig.update_yaxes(range=[0, 1.02])
    if maxiter:
        fig.update_xaxes(range=[-0.5, maxiter + 0.5])
    return fig
