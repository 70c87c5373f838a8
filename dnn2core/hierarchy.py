"""Divide and conquer (the course's fourth trick): a hierarchy imposed on the classes by
agglomerative clustering, a coarse net that picks a group, and one small net per group.

Why it exists: with thousands of classes (speech recognition's sub-phone states, the course's
example) one softmax over everything is slow to train and hard to fit; a tree of small
classifiers splits the problem, and clustering finds the tree without a human drawing it. On
MNIST's ten digits the experiment is a fair small-scale look at the mechanics: the class means
are clustered (Ward linkage), the tree is cut into k groups, and the hierarchy's probabilities
P(digit) = P(group) x P(digit | group) are compared with one flat net's.

Plain numpy, scipy and Plotly; Keras only inside the runs' builders (through ``tricks``). Every
build and evaluate is a ``functools.partial`` of a module-level function, so the runs pickle and a
worker process can train them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dnn2core.style import group_color
from dnn2core.training import ModelRun
from dnn2core.tricks import N_CLASSES, STEPS_PER_EXECUTION, DigitData, accuracy_noise, build_small_dense

if TYPE_CHECKING:  # pragma: no cover
    import keras

__all__ = [
    "FLAT",
    "FLAT_ACCURACY",
    "HierarchyProbs",
    "class_linkage",
    "class_means",
    "coarse_name",
    "combine",
    "cut_groups",
    "cut_height",
    "dendrogram_figure",
    "dense_params",
    "divide_verdict",
    "group_index",
    "group_name",
    "group_report",
    "groups_table",
    "hierarchy_runs",
    "remap",
    "run_probabilities",
    "summary",
]

FLAT = "Flat"
PROBS = "val_probs"  # the artifact each run keeps: its probabilities on every validation digit
SYSTEM_FLAT = "Flat net"


def coarse_name(k: int) -> str:
    return f"Coarse ({int(k)} groups)"


def group_name(index: int, group: Sequence[int]) -> str:
    """The run name of group ``index`` (0-based; shown 1-based, as in the groups table)."""
    return f"Group {int(index) + 1}: digits " + ", ".join(str(int(c)) for c in group)


def hierarchy_name(n_group_nets: int) -> str:
    return f"Hierarchy (coarse + {n_group_nets} group net{'s' if n_group_nets != 1 else ''})"


# ----------------------------------------------------------------------------- the hierarchy


def class_means(x: np.ndarray, y: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """The mean input of each class, (n_classes, features): what the clustering compares. Classes
    that look alike on average (4, 7, 9 on MNIST) end up close. Every class must be present."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.int64)
    counts = np.bincount(y, minlength=n_classes)
    if len(counts) > n_classes:
        raise ValueError(f"Labels must lie in 0..{n_classes - 1}, got {int(y.max())}.")
    missing = np.flatnonzero(counts == 0)
    if len(missing):
        raise ValueError(f"Every class needs at least one example to cluster; none of {missing.tolist()}.")
    sums = np.zeros((n_classes, x.shape[1]))
    np.add.at(sums, y, x)
    return sums / counts[:, None]


def class_linkage(means: np.ndarray) -> np.ndarray:
    """Agglomerative clustering of the class means (scipy's Ward linkage): the (C-1, 4) merge tree.
    Ward merges the two clusters whose union grows the within-cluster spread least, which gives
    compact, balanced groups; the course's point is that this needs no human to draw the tree."""
    from scipy.cluster.hierarchy import linkage

    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2 or len(means) < 2:
        raise ValueError("Clustering needs at least two class means, one row each.")
    return linkage(means, method="ward")


def _n_leaves(Z: np.ndarray) -> int:
    return int(np.asarray(Z).shape[0]) + 1


def cut_groups(Z: np.ndarray, k: int) -> list[list[int]]:
    """Cut the tree into (at most) k groups with scipy's ``fcluster(maxclust)``: each group its sorted
    classes, the groups ordered by their smallest class, so the same tree always gives the same
    numbering (fcluster's own cluster ids are arbitrary)."""
    from scipy.cluster.hierarchy import fcluster

    n = _n_leaves(Z)
    if not 1 <= int(k) <= n:
        raise ValueError(f"The number of groups must be from 1 to {n}, got {k}.")
    labels = fcluster(np.asarray(Z, dtype=np.float64), int(k), criterion="maxclust")
    groups = [sorted(int(c) for c in np.flatnonzero(labels == lab)) for lab in np.unique(labels)]
    return sorted(groups, key=lambda g: g[0])


def cut_height(Z: np.ndarray, k: int) -> float:
    """A merge height that leaves k groups: halfway between the last merge kept apart and the one
    before it (Ward's heights only grow). Used to draw the cut on the dendrogram."""
    Z = np.asarray(Z, dtype=np.float64)
    n = _n_leaves(Z)
    if not 1 <= int(k) <= n:
        raise ValueError(f"The number of groups must be from 1 to {n}, got {k}.")
    heights = np.concatenate([[0.0], Z[:, 2]])  # heights[m]: after m merges
    merges = n - int(k)                           # merges done to reach k clusters
    upper = Z[merges, 2] if merges < len(Z) else heights[-1] * 1.1 + 1e-9
    return float((heights[merges] + upper) / 2)


def check_groups(groups: Sequence[Sequence[int]], n_classes: int | None = None) -> list[list[int]]:
    """The groups as sorted int lists; they must split 0..n_classes-1 exactly (each class once).
    ``n_classes`` None: as many classes as the groups hold (a small hand-made example)."""
    out = [sorted(int(c) for c in g) for g in groups]
    if n_classes is None:
        n_classes = sum(len(g) for g in out)
    flat = sorted(c for g in out for c in g)
    if any(len(g) == 0 for g in out) or flat != list(range(n_classes)):
        raise ValueError(f"The groups must split the classes 0..{n_classes - 1}, each exactly once; got {out}.")
    return out


def group_index(groups: Sequence[Sequence[int]], n_classes: int | None = None) -> np.ndarray:
    """class -> its group's index: the coarse net's labels are ``group_index(groups)[y]``."""
    groups = check_groups(groups, n_classes)
    out = np.empty(sum(len(g) for g in groups), dtype=np.int64)
    for i, g in enumerate(groups):
        out[g] = i
    return out


def remap(y: np.ndarray, group: Sequence[int]) -> np.ndarray:
    """A group net's labels: each class's position in its (sorted) group, e.g. 3, 5, 8 -> 0, 1, 2."""
    group = np.asarray(sorted(int(c) for c in group), dtype=np.int64)
    y = np.asarray(y, dtype=np.int64)
    pos = np.searchsorted(group, y)
    if len(y) and (np.any(pos >= len(group)) or np.any(group[np.minimum(pos, len(group) - 1)] != y)):
        raise ValueError(f"Labels outside the group {group.tolist()}.")
    return pos


# ----------------------------------------------------------------------------- the runs


FLAT_ACCURACY = "flat_digit_accuracy"  # the one scalar a run stores: the flat net's, for the class results


def _val_probs(model: "keras.Model", *, x: np.ndarray, y: np.ndarray | None = None,
               batch_size: int = 1024) -> dict[str, Any]:
    """A trained net's probabilities on every validation digit (kept as the run's artifact: the
    hierarchy is combined from them after training, by the page). With ``y`` (the flat net, the only
    one whose outputs are digits), also its accuracy, so the run's stored metrics carry one number."""
    probs = np.asarray(model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float32)
    out: dict[str, Any] = {PROBS: probs}
    if y is not None:
        out[FLAT_ACCURACY] = float(np.mean(probs.argmax(axis=1) == np.asarray(y)))
    return out


def _fit(x: np.ndarray, y: np.ndarray, val: tuple[np.ndarray, np.ndarray], epochs: int, batch_size: int) -> dict:
    kwargs: dict[str, Any] = dict(x=x, y=y, epochs=int(epochs), batch_size=int(min(max(1, batch_size), len(y))),
                                  shuffle=True)
    if len(val[1]):
        kwargs["validation_data"] = val
    return kwargs


def hierarchy_runs(data: DigitData, groups: Sequence[Sequence[int]], *, epochs: int, hidden: int,
                   learning_rate: float, batch_size: int, optimizer: str = "adam") -> list[ModelRun]:
    """The flat net (10 outputs), the coarse net (one output per group) and one net per group of 2+
    digits, trained only on that group's digits with labels 0..size-1; all the same width, optimizer
    and epochs, so the comparison is of the structure alone. Every run keeps its probabilities on
    ALL validation digits (``val_probs``); its validation curve is on its own task (groups for the
    coarse net, the group's digits for a group net)."""
    groups = check_groups(groups, N_CLASSES)
    if len(groups) < 2:
        raise ValueError("Divide and conquer needs at least two groups.")
    x, y, x_val, y_val = data.x_train, data.y_train, data.x_val, data.y_val
    evaluate = partial(_val_probs, x=x_val)
    build = partial(build_small_dense, int(hidden), optimizer, float(learning_rate))
    of = group_index(groups)
    runs = [
        ModelRun(FLAT, build, _fit(x, y, (x_val, y_val), epochs, batch_size),
                 evaluate=partial(_val_probs, x=x_val, y=y_val), steps_per_execution=STEPS_PER_EXECUTION),
        ModelRun(coarse_name(len(groups)), partial(build, n_classes=len(groups)),
                 _fit(x, of[y], (x_val, of[y_val]), epochs, batch_size), evaluate=evaluate,
                 steps_per_execution=STEPS_PER_EXECUTION),
    ]
    for i, g in enumerate(groups):
        if len(g) < 2:
            continue  # a single digit: P(digit | group) = 1, no net to train
        mine, mine_val = np.isin(y, g), np.isin(y_val, g)
        if not mine.any():
            raise ValueError(f"No training digit of group {i + 1} ({g}); use more training digits.")
        runs.append(ModelRun(group_name(i, g), partial(build, n_classes=len(g)),
                             _fit(x[mine], remap(y[mine], g), (x_val[mine_val], remap(y_val[mine_val], g)),
                                  epochs, batch_size),
                             evaluate=evaluate, steps_per_execution=STEPS_PER_EXECUTION))
    return runs


def dense_params(hidden: int, n_out: int, n_inputs: int = 784) -> int:
    """Parameters of 784 -> Dense(hidden) -> Dense(n_out): weights and biases of both layers."""
    return int(n_inputs * hidden + hidden + hidden * n_out + n_out)


# ----------------------------------------------------------------------------- combining


def combine(coarse_probs: np.ndarray, group_probs: Mapping[int, np.ndarray],
            groups: Sequence[Sequence[int]]) -> np.ndarray:
    """P(class) = P(group) x P(class | group): the hierarchy's (n, C) probabilities. ``group_probs``
    maps a group's index to its net's (n, size) probabilities; a single-class group needs none (its
    class gets P(group)). Rows sum to 1 when the inputs' rows do. A soft product, not a hard
    route: an unsure coarse net leaves room for the group nets, a confident wrong one does not."""
    groups = check_groups(groups)
    coarse = np.asarray(coarse_probs, dtype=np.float64)
    n_classes = sum(len(g) for g in groups)
    if coarse.ndim != 2 or coarse.shape[1] != len(groups):
        raise ValueError(f"The coarse probabilities need one column per group ({len(groups)}), got {coarse.shape}.")
    out = np.zeros((len(coarse), n_classes))
    for i, g in enumerate(groups):
        if len(g) == 1:
            out[:, g[0]] = coarse[:, i]
            continue
        if i not in group_probs:
            raise ValueError(f"No probabilities for group {i + 1} ({g}).")
        p = np.asarray(group_probs[i], dtype=np.float64)
        if p.shape != (len(coarse), len(g)):
            raise ValueError(f"Group {i + 1}'s probabilities must be {(len(coarse), len(g))}, got {p.shape}.")
        out[:, g] = coarse[:, [i]] * p
    return out


@dataclass(frozen=True)
class HierarchyProbs:
    """Every net's probabilities on the validation digits, as a finished run stored them."""

    flat: np.ndarray                # (n, 10)
    coarse: np.ndarray              # (n, k)
    groups: dict[int, np.ndarray]   # group index -> (n, size), groups of 2+ classes

    def combined(self, groups: Sequence[Sequence[int]]) -> np.ndarray:
        return combine(self.coarse, self.groups, groups)

    def predicted(self, groups: Sequence[Sequence[int]]) -> np.ndarray:
        """The hierarchy's answer per digit: the most probable class of the combined probabilities."""
        return self.combined(groups).argmax(axis=1)


def run_probabilities(artifacts: Mapping[str, np.ndarray], groups: Sequence[Sequence[int]]) -> HierarchyProbs | None:
    """The run's stored ``<name>/val_probs`` arrays, or None when one is missing (a stopped run
    skips the evaluation of the net it stopped in and never trains the ones after it)."""
    groups = check_groups(groups)
    wanted = {FLAT: FLAT, "coarse": coarse_name(len(groups))}
    wanted.update({i: group_name(i, g) for i, g in enumerate(groups) if len(g) > 1})
    found = {k: artifacts.get(f"{name}/{PROBS}") for k, name in wanted.items()}
    if any(v is None for v in found.values()):
        return None
    return HierarchyProbs(np.asarray(found.pop(FLAT)), np.asarray(found.pop("coarse")),
                          {int(i): np.asarray(v) for i, v in found.items()})


def summary(y_val: np.ndarray, probs: HierarchyProbs, groups: Sequence[Sequence[int]],
            params: Mapping[str, int]) -> pd.DataFrame:
    """One row per system: the flat net, the coarse net alone, the hierarchy. Digit accuracy; group
    accuracy (is the predicted digit, or the coarse net's group, in the right group?); of the
    system's errors, the share already in the wrong group (for the hierarchy: the coarse net had
    picked a wrong group, a mistake the group nets cannot repair); parameters (the hierarchy's are
    the coarse net's plus every group net's; ``params`` maps run names to counts)."""
    groups = check_groups(groups)
    y = np.asarray(y_val, dtype=np.int64)
    of = group_index(groups)
    flat_pred = probs.flat.argmax(axis=1)
    coarse_pred = probs.coarse.argmax(axis=1)
    hier_pred = probs.combined(groups).argmax(axis=1)

    def wrong_group_share(wrong: np.ndarray, wrong_group: np.ndarray) -> float:
        return float(np.mean(wrong_group[wrong])) if wrong.any() else float("nan")

    coarse = coarse_name(len(groups))
    group_nets = [group_name(i, g) for i, g in enumerate(groups) if len(g) > 1]
    rows = [
        {"system": SYSTEM_FLAT, "nets": 1, "parameters": int(params[FLAT]),
         "digit accuracy": float(np.mean(flat_pred == y)), "group accuracy": float(np.mean(of[flat_pred] == of[y])),
         "errors already in the wrong group": wrong_group_share(flat_pred != y, of[flat_pred] != of[y])},
        {"system": f"Coarse net alone ({len(groups)} groups)", "nets": 1, "parameters": int(params[coarse]),
         "digit accuracy": float("nan"), "group accuracy": float(np.mean(coarse_pred == of[y])),
         "errors already in the wrong group": float("nan")},
        {"system": hierarchy_name(len(group_nets)), "nets": 1 + len(group_nets),
         "parameters": int(params[coarse] + sum(params[n] for n in group_nets)),
         "digit accuracy": float(np.mean(hier_pred == y)), "group accuracy": float(np.mean(of[hier_pred] == of[y])),
         "errors already in the wrong group": wrong_group_share(hier_pred != y, coarse_pred != of[y])},
    ]
    return pd.DataFrame(rows)


def group_report(y_val: np.ndarray, probs: HierarchyProbs, groups: Sequence[Sequence[int]]) -> pd.DataFrame:
    """Each group net against the flat net on the same digits (the validation digits of that group):
    does the specialist tell its digits apart better? The flat net counts as right only when its
    answer over all ten digits is the true one."""
    groups = check_groups(groups)
    y = np.asarray(y_val, dtype=np.int64)
    rows = []
    for i, g in enumerate(groups):
        if len(g) < 2:
            continue
        mine = np.isin(y, g)
        if not mine.any():
            continue
        own = np.asarray(g)[probs.groups[i][mine].argmax(axis=1)]
        rows.append({"group": i + 1, "digits": ", ".join(map(str, g)), "validation digits": int(mine.sum()),
                     "group net": float(np.mean(own == y[mine])),
                     "flat net": float(np.mean(probs.flat[mine].argmax(axis=1) == y[mine]))})
    return pd.DataFrame(rows, columns=["group", "digits", "validation digits", "group net", "flat net"])


def groups_table(groups: Sequence[Sequence[int]], y_train: np.ndarray, hidden: int) -> pd.DataFrame:
    """Before training: each group, its training digits and the net that will tell its digits apart."""
    groups = check_groups(groups)
    counts = np.bincount(np.asarray(y_train, dtype=np.int64), minlength=sum(len(g) for g in groups))
    rows = []
    for i, g in enumerate(groups):
        net = (f"784 → Dense({int(hidden)}) → {len(g)}, {dense_params(hidden, len(g)):,} parameters" if len(g) > 1
               else "none: one digit, P(digit) = P(group)")
        rows.append({"group": i + 1, "digits": ", ".join(map(str, g)), "training digits": int(counts[g].sum()),
                     "its own net": net})
    return pd.DataFrame(rows)


def divide_verdict(table: pd.DataFrame, n_val: int) -> str:
    """The result in words, from ``summary``'s table: who won and whether by more than the noise
    of ``n_val`` validation digits, at what cost in parameters, and how much of the hierarchy's error
    the coarse net made."""
    rows = table.set_index("system")
    flat = rows.loc[SYSTEM_FLAT]
    hier = rows.iloc[-1]
    a_f, a_h = float(flat["digit accuracy"]), float(hier["digit accuracy"])
    diff = a_h - a_f
    noise = accuracy_noise((a_f + a_h) / 2, n_val)
    out = [f"**Flat net: {a_f:.1%}**, **hierarchy: {a_h:.1%}** of {n_val:,} validation digits."]
    if abs(diff) < noise:
        out.append(f"The {abs(diff) * 100:.1f}-point difference is within the noise (about ±{noise * 100:.1f} "
                   f"points): on ten digits the split neither helps nor hurts here.")
    elif diff > 0:
        out.append(f"The hierarchy wins by {diff * 100:.1f} points, more than the noise (about "
                   f"±{noise * 100:.1f}).")
    else:
        out.append(f"The flat net wins by {-diff * 100:.1f} points, more than the noise (about "
                   f"±{noise * 100:.1f}): each group net saw only its own digits, and one softmax over ten "
                   f"digits is no burden to split.")
    if "parameters" in rows.columns and float(flat["parameters"]) > 0:
        out.append(f"The hierarchy has {float(hier['parameters']) / float(flat['parameters']):.1f}× the flat "
                   f"net's parameters ({int(hier['parameters']):,} against {int(flat['parameters']):,}).")
    share = float(hier["errors already in the wrong group"])
    if share == share:
        out.append(f"{share:.0%} of the hierarchy's errors were made by the coarse net, which picked the wrong "
                   f"group (accuracy {float(rows.iloc[1]['group accuracy']):.1%}); no group net can repair those.")
    return " ".join(out)


# ----------------------------------------------------------------------------- figure


def dendrogram_figure(Z: np.ndarray, labels: Sequence[str], k: int | None = None, height: int = 340) -> go.Figure:
    """The merge tree as Plotly lines from scipy's ``dendrogram(no_plot=True)`` coordinates. With k,
    the cut is drawn and every link below it takes its group's colour (the groups table's numbering);
    links above the cut, the merges the coarse net decides between, stay grey."""
    from scipy.cluster.hierarchy import dendrogram

    Z = np.asarray(Z, dtype=np.float64)
    labels = [str(v) for v in labels]
    tree = dendrogram(Z, labels=labels, no_plot=True)
    order = [int(i) for i in tree["leaves"]]  # class index of each leaf, left to right
    fig = go.Figure()
    leaf_group: dict[int, int] = {}
    cut = None
    if k is not None:
        groups = cut_groups(Z, k)
        leaf_group = {c: i for i, g in enumerate(groups) for c in g}
        cut = cut_height(Z, k)
    lines: dict[int, tuple[list, list]] = {}  # group index (-1: above the cut) -> xs, ys with None gaps
    for xs, ys in zip(tree["icoord"], tree["dcoord"]):
        g = -1
        if cut is not None and max(ys) < cut:
            leaf = order[int(np.clip((min(xs) - 5) // 10, 0, len(order) - 1))]
            g = leaf_group[leaf]
        bx, by = lines.setdefault(g, ([], []))
        bx += list(xs) + [None]
        by += list(ys) + [None]
    for g in sorted(lines):
        xs, ys = lines[g]
        name = "above the cut" if g < 0 else f"group {g + 1}"
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name, hoverinfo="skip", showlegend=False,
                                 line=dict(color=group_color(g), width=2)))
    xs = [5 + 10 * i for i in range(len(order))]
    fig.add_trace(go.Scatter(
        x=xs, y=[0] * len(order), mode="markers", showlegend=False,
        marker=dict(size=11, color=[group_color(leaf_group.get(c, -1)) for c in order]),
        text=[f"{labels[c]}" + (f" · group {leaf_group[c] + 1}" if c in leaf_group else "") for c in order],
        hovertemplate="%{text}<extra></extra>"))
    if cut is not None:
        fig.add_hline(y=cut, line_dash="dash", line_color="#444444",
                      annotation_text=f"cut: {k} groups", annotation_position="top right")
    fig.update_xaxes(tickmode="array", tickvals=xs, ticktext=[labels[c] for c in order], title="digit",
                     showgrid=False, zeroline=False)
    fig.update_yaxes(title="merge distance (Ward)", rangemode="tozero")
    fig.update_layout(height=height, title="Agglomerative clustering of the digits' mean images",
                      margin=dict(l=10, r=10, t=40, b=10))
    return fig
