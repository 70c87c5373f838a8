"""One colour per model in every chart, integer epoch ticks, every digit labelled (dnn2core.style)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dnn2core import catsdogs, evaluation, plots, style
from dnn2core import tricks as tr


def _history(models, epochs=5, metrics=("loss", "val_loss", "accuracy", "val_accuracy")):
    rows = [{"model": m, "epoch": e, "metric": k, "value": 1.0 / e}
            for m in models for e in range(1, epochs + 1) for k in metrics]
    return pd.DataFrame(rows)


def _colors(fig, attr="line"):
    out = {}
    for t in fig.data:
        name = t.name.split(" · ")[-2] if t.name.count(" · ") >= 1 and t.name.rsplit(" · ", 1)[-1] in (
            "train", "validation") else t.name
        out[name] = getattr(t, attr).color
    return out


def test_model_colours_are_fixed_and_distinct():
    assert style.model_color("Dense") == "#1f77b4" and style.model_color("CNN") == "#d62728"
    for decorated, base in [("Course full run · CNN", "CNN"), ("run 1a2b ★ · Dense", "Dense"),
                            ("VGG16 frozen (224 px)", "VGG16 frozen"), ("SARIMA(1,0,1)(0,1,1)24", "SARIMA"),
                            ("Seasonal naive (same hour yesterday)", "Seasonal naive")]:
        assert style.model_color(decorated) == style.model_color(base), decorated
    groups = [("Dense", "CNN"), ("Dense", "SimpleRNN", "LSTM", "Persistence", "Seasonal naive", "SARIMA"),
              ("From scratch", "VGG16 frozen", "VGG16 fine-tuned", "MobileNetV2 frozen", "MobileNetV2 fine-tuned"),
              ("Network", "Linear regression", "Ridge", "k-nearest neighbours", "Random forest", "Gradient boosting"),
              ("No correction", "Subsampling", "Duplication", "Class weights", "Moved threshold")]
    for group in groups:  # models drawn together are told apart
        assert len({style.model_color(m) for m in group}) == len(group), group
    # a name without a fixed colour still gets the same one every time
    assert style.model_color("My own net") == style.model_color("My own net") in style.PALETTE
    assert style.split_color("train") != style.split_color("dev") == style.split_color("validation")


def test_same_model_same_colour_across_figures():
    curves = plots.training_curves_figure(_history(["Dense", "CNN"]), "accuracy")
    bars = plots.bars_figure([str(d) for d in range(10)], {"CNN": np.ones(10), "Dense": np.ones(10)})
    shift = evaluation.shift_figure([0, 2, 4], {"CNN": [1, 0.9, 0.8], "Dense": [1, 0.5, 0.2]})
    c = _colors(curves)
    assert c["Dense"] == _colors(bars, "marker")["Dense"] == _colors(shift)["Dense"] == "#1f77b4"
    assert c["CNN"] == _colors(bars, "marker")["CNN"] == _colors(shift)["CNN"] == "#d62728"
    # the order a page lists its models in no longer decides their colours
    swapped = plots.training_curves_figure(_history(["CNN", "Dense"]), "accuracy")
    assert _colors(swapped) == c
    # the course's full run beside a live one: the same colour, fainter
    ref = plots.training_curves_figure(_history(["CNN", "Course full run · CNN"]), "loss")
    lines = {t.name: t for t in ref.data}
    assert lines["Course full run · CNN · validation"].line.color == lines["CNN · validation"].line.color
    assert lines["Course full run · CNN · validation"].opacity < lines["CNN · validation"].opacity == 1
    # train dashed, validation solid; colour by split when asked (one model: distinct colours)
    assert lines["CNN · train"].line.dash == "dash" and lines["CNN · validation"].line.dash == "solid"
    split = plots.training_curves_figure(_history(["Network"]), "loss", color_by="split")
    assert split.data[0].line.color != split.data[1].line.color


def test_forecasting_and_catsdogs_and_tricks_use_the_shared_colours():
    from dnn2core import forecasting as fc

    assert fc._color("LSTM", 5) == style.model_color("LSTM") == "#2ca02c"
    hist = _history(["VGG16 frozen", "From scratch"], metrics=("val_accuracy",))
    fig = catsdogs.validation_curves_figure(hist)
    assert {t.name: t.line.color for t in fig.data} == {"VGG16 frozen": style.model_color("VGG16 frozen"),
                                                         "From scratch": style.model_color("From scratch")}
    y = np.arange(100) % 10
    fig = tr.recall_figure(y, {"Class weights": y, "No correction": (y + 1) % 10}, rare_class=3)
    assert [t.marker.color for t in fig.data] == [style.model_color("Class weights"),
                                                  style.model_color("No correction")]


@pytest.mark.parametrize("epochs,dtick", [(2, 1), (5, 1), (12, 1), (40, None), (5000, None)])
def test_epoch_axes_have_integer_ticks(epochs, dtick):
    fig = plots.training_curves_figure(_history(["Dense"], epochs=epochs), "loss")
    assert fig.layout.xaxis.tickformat == "d"
    assert fig.layout.xaxis.dtick == dtick  # one tick an epoch on short runs; Plotly's whole steps beyond
    hist = _history(["From scratch"], epochs=epochs, metrics=("val_accuracy",))
    assert catsdogs.validation_curves_figure(hist).layout.xaxis.tickformat == "d"


def test_every_digit_is_labelled():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 500)
    cm = evaluation.confusion_matrix(y, rng.integers(0, 10, 500))
    fig = evaluation.confusion_figure(cm, "CNN: confusion matrix")
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert axis.tickmode == "array" and list(axis.ticktext) == [str(d) for d in range(10)]
        assert list(axis.tickvals) == list(range(10))
    # the predicted-digit axis title sits below the matrix: it cannot overlap the chart title above
    assert fig.layout.xaxis.side == "bottom" and fig.layout.xaxis.title.text == "predicted digit"
    bars = plots.bars_figure([str(d) for d in range(10)], {"Dense": np.ones(10)}, "Accuracy per digit")
    assert list(bars.layout.xaxis.ticktext) == [str(d) for d in range(10)]
    assert len(bars.layout.xaxis.tickvals) == 10
    recall = tr.recall_figure(y, {"No correction": y}, rare_class=3)
    assert list(recall.layout.xaxis.ticktext) == [str(d) for d in range(10)]  # the rare 3 is labelled
    setup_counts = pd.DataFrame([[50] * 10], index=["No correction"], columns=[str(d) for d in range(10)])
    assert len(tr.counts_figure(setup_counts).layout.xaxis.ticktext) == 10
    order = tr.order_figure(np.sort(y), y)
    assert len(order.layout.yaxis.ticktext) == 10
