"""How good is a classifier, and where does it fail: confusion matrices, per-class accuracy,
misclassified examples, and accuracy as test digits move off-centre (the course's
translation argument, as an experiment)."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dnn2core import digits
from dnn2core.style import digit_axis, model_color


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Counts: rows are true classes, columns predicted classes."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall of each class (diagonal over row sums); NaN for classes absent from the test set."""
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.maximum(totals, 1), np.nan)


def misclassified(probs: np.ndarray, y_true: np.ndarray, limit: int = 24) -> np.ndarray:
    """Indices of wrong predictions, most confidently wrong first."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    confidence = probs[wrong, pred[wrong]]
    return wrong[np.argsort(-confidence)][:limit]


def predict_probs(model, x: np.ndarray, kind: str, batch_size: int = 512) -> np.ndarray:
    """Class probabilities for (n, 28, 28) digits, fed in the model's own input shape."""
    return np.asarray(model.predict(digits.as_input(x, kind), batch_size=batch_size, verbose=0))


def accuracy_vs_shift(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
                      shifts: Sequence[int]) -> list[float]:
    """Accuracy when every test digit is moved k pixels right and k pixels up."""
    return [float((predict(digits.shift(x, -k, k)).argmax(axis=1) == y).mean()) for k in shifts]


# The course's headline results (Video 2): 60,000 digits, 5 epochs, rmsprop.
COURSE_TEST_ACCURACY = {"Dense": 0.97, "CNN": 0.993}


def against_course(run: dict | None, run_label: str, reference: dict | None, reference_label: str,
                   metric: str = "test_accuracy") -> "pandas.DataFrame":
    """One row per model: this run's test accuracy beside the course's run on this server (the shipped
    reference) and the course's own figure. ``run`` and ``reference`` are run metrics (model -> dict)."""
    import pandas as pd

    rows = []
    for name, course in COURSE_TEST_ACCURACY.items():
        row = {"model": name}
        if run is not None:
            value = (run.get(name) or {}).get(metric)
            row[run_label] = f"{value:.2%}" if isinstance(value, (int, float)) else "not trained"
        if reference is not None:
            value = (reference.get(name) or {}).get(metric)
            row[reference_label] = f"{value:.2%}" if isinstance(value, (int, float)) else ""
        row["the course says"] = f"about {course:.1%}"
        rows.append(row)
    return pd.DataFrame(rows)


# --- figures

def confusion_figure(cm: np.ndarray, title: str = "", height: int = 420) -> go.Figure:
    """Counts with every class labelled on both axes. The predicted-digit axis sits below the matrix,
    so its title can never run into the chart's title above it."""
    n = cm.shape[0]
    fig = go.Figure(go.Heatmap(z=cm, x=list(range(n)), y=list(range(n)), colorscale="Blues", text=cm,
                               texttemplate="%{text}", showscale=False,
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="true digit")
    fig.update_xaxes(title="predicted digit", side="bottom")
    digit_axis(fig, "x", n)
    digit_axis(fig, "y", n)
    fig.update_layout(title=dict(text=title, y=0.98, yanchor="top"), height=height,
                      margin=dict(l=10, r=10, t=50, b=10))
    return fig


def gallery_figure(images: np.ndarray, captions: Sequence[str], columns: int = 8, size: int = 110) -> go.Figure:
    """Small grayscale digits in a grid with a caption above each."""
    n = len(images)
    rows = max(1, int(np.ceil(n / columns)))
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=list(captions), horizontal_spacing=0.01,
                        vertical_spacing=0.12 / max(rows, 1) + 0.02)
    for i, img in enumerate(images):
        r, c = i // columns + 1, i % columns + 1
        fig.add_trace(go.Heatmap(z=img, colorscale="gray", showscale=False, hoverinfo="skip"), row=r, col=c)
        fig.update_yaxes(autorange="reversed", showticklabels=False, row=r, col=c)
        fig.update_xaxes(showticklabels=False, row=r, col=c)
    fig.update_annotations(font_size=10)
    fig.update_layout(height=rows * size + 40, margin=dict(l=5, r=5, t=30, b=5))
    return fig


def shift_figure(shifts: Sequence[int], curves: dict[str, Sequence[float]]) -> go.Figure:
    fig = go.Figure()
    for name, acc in curves.items():
        fig.add_trace(go.Scatter(x=list(shifts), y=list(acc), mode="lines+markers", name=name,
                                 line=dict(color=model_color(name))))
    fig.update_layout(title="Test accuracy as digits move up and right by k pixels", xaxis_title="shift k (pixels)",
                      yaxis_title="accuracy", yaxis_range=[0, 1], height=340, margin=dict(l=10, r=10, t=40, b=10))
    return fig
