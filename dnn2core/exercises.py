""""Try this": two to four exercises at the end of every page, taken from the course's outcomes.

Each one asks the learner to predict before they look (the habit the course wants: a hypothesis,
then the experiment), sets the page up with one click (``settings`` are the page's URL setting
names, the same a shared link carries), and then explains the outcome. Where the page trains a
run, ``check`` reads that run's stored metrics and says in words whether it came out as the
course says, so the learner compares their prediction with *their* numbers, not only with ours.

Plain data and pure functions: the page's UI is in ``dnn2ui/exercises.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

Metrics = Mapping[str, Mapping[str, float]]  # a stored run's metrics: model name -> {metric: value}

OUTCOMES = {  # the course's learning outcomes, as its Quick Reference Guide numbers them (the home page lists them)
    1: "Process images in preparation for training a neural network",
    2: "Train a neural network to recognize items and images",
    3: "Use a pretrained network to enhance model performance",
    4: "Interpret a neural network model",
    5: "Train an LSTM network for time series analysis",
    6: "Compare an LSTM network to time series analysis",
    7: "Apply neural network techniques to a linear regression problem",
    8: "Compare neural networks to other machine learning methods",
}


@dataclass(frozen=True)
class Exercise:
    """One exercise: predict, set up with one click, run or look, then read the explanation."""

    key: str  # unique on its page (widget keys)
    title: str
    outcome: int  # the course's learning outcome it practises (OUTCOMES)
    question: str  # what to predict, before trying
    choices: tuple[str, ...]  # the predictions to choose from
    answer: int  # the index of the choice the course's argument expects
    explain: str  # why, shown once the learner has committed to a prediction
    settings: Mapping[str, Any] = field(default_factory=dict)  # URL settings the "Set it up" click applies
    check: Callable[[Metrics], str | None] | None = None  # a run of these settings -> what it shows, in words


def applies_to(exercise: Exercise, settings: Mapping[str, Any]) -> bool:
    """Whether a run's settings are the exercise's (every setting it names has that value), so its
    ``check`` may read the run. Lists compare as sets; numbers as numbers."""
    for name, want in exercise.settings.items():
        have = settings.get(name)
        if isinstance(want, (list, tuple)):
            if not isinstance(have, (list, tuple)) or set(map(str, have)) != set(map(str, want)):
                return False
        elif isinstance(want, bool) or isinstance(have, bool):
            if bool(have) != bool(want) or have is None:
                return False
        elif isinstance(want, (int, float)):
            try:
                if abs(float(have) - float(want)) > 1e-9 * max(1.0, abs(float(want))):
                    return False
            except (TypeError, ValueError):
                return False
        elif str(have) != str(want):
            return False
    return True


def _metric(metrics: Metrics, model: str, *names: str) -> float | None:
    row = metrics.get(model) or {}
    for name in names:
        value = row.get(name)
        if isinstance(value, (int, float)) and value == value:
            return float(value)
    return None


def _compare(metrics: Metrics, better: str, worse: str, names: tuple[str, ...], *, higher: bool, fmt: str,
             label: str) -> str | None:
    """'Your run: CNN 98.1% against Dense 96.0%: as the course says.' (or says it did not, and why that
    can happen); None when the run lacks either model."""
    a, b = _metric(metrics, better, *names), _metric(metrics, worse, *names)
    if a is None or b is None:
        return None
    held = a > b if higher else a < b
    words = "as the course says" if held else "not this time: see the explanation for why that can happen"
    return f"Your run: {label} {better} {a:{fmt}} against {worse} {b:{fmt}} — {words}."


def _cnn_beats_dense(metrics: Metrics) -> str | None:
    return _compare(metrics, "CNN", "Dense", ("test_accuracy", "val_accuracy"), higher=True, fmt=".1%",
                    label="test accuracy")


def _lstm_vs_dense(metrics: Metrics) -> str | None:
    return _compare(metrics, "LSTM", "Dense", ("val_mse", "val_loss"), higher=False, fmt=".4f",
                    label="validation MSE")


def _frozen_beats_scratch(metrics: Metrics) -> str | None:
    frozen = next((m for m in metrics if m.startswith("VGG16 frozen")), None)
    scratch = next((m for m in metrics if m.startswith("From scratch")), None)
    if frozen is None or scratch is None:
        return None
    return _compare(metrics, frozen, scratch, ("val_accuracy",), higher=True, fmt=".1%", label="validation accuracy")


def _shuffled_beats_ordered(metrics: Metrics) -> str | None:
    return _compare(metrics, "Shuffled", "Ordered by class", ("val_accuracy",), higher=True, fmt=".1%",
                    label="validation accuracy")


def _network_mae(metrics: Metrics) -> str | None:
    value = _metric(metrics, "Network", "dev_mae", "val_mae")
    if value is None:
        return None
    return (f"Your run: the network's dev MAE is ${value:,.0f}. Compare it with the baselines table on this "
            "page (linear regression, gradient boosting): on 1,000 houses and ~36 numeric columns the "
            "network rarely wins.")


EXERCISES: dict[str, tuple[Exercise, ...]] = {
    "convolution": (
        Exercise("size", "How big is the feature map?", 1,
                 "A 3×3 kernel slides over the image with stride 2 and *valid* padding. How many rows does the "
                 "feature map have, compared with the image?",
                 ("The same as the image", "About half", "Two fewer"), 1,
                 "Valid padding loses (k−1) = 2 rows, and stride 2 keeps every second position: "
                 "⌊(n − 3) / 2⌋ + 1 ≈ n / 2. With *same* padding and stride 1 the size is kept. Look at the "
                 "sizes in the plot titles after the click.",
                 settings={"k": 3, "stride": 2, "pad": "valid", "pool": 0, "preset": "vertical line"}),
        Exercise("edges", "Which filter finds which edge?", 1,
                 "The *vertical line* preset on the sample image: where will the feature map be brightest?",
                 ("On vertical edges", "On horizontal edges", "Everywhere alike"), 0,
                 "The kernel's weights change sign from left to right, so it answers where brightness changes "
                 "across a column: vertical edges. Switch the preset to *horizontal line* and the bright stripes "
                 "turn by 90°. A convolution layer learns such kernels instead of having them chosen.",
                 settings={"preset": "vertical line", "stride": 1, "pad": "same", "act": "none", "pool": 0}),
        Exercise("relu_pool", "What do ReLU and max-pooling keep?", 1,
                 "Add a ReLU and a 2×2 max-pool after the filter. What happens to the negative responses, and "
                 "to the map's size?",
                 ("Both are kept", "Negatives become 0, the size halves", "Negatives are flipped, the size stays"),
                 1,
                 "ReLU sets every negative response to zero (the filter's 'no' is not passed on) and a 2×2 pool "
                 "with stride 2 keeps the largest of each block: half the rows and columns, the strongest "
                 "evidence of the feature in each neighbourhood. That is the small shift tolerance the MNIST "
                 "page's *Moved digits* tab measures.",
                 settings={"act": "relu", "pool": 2, "pool_s": 2, "stride": 1, "pad": "same"}),
    ),
    "mnist": (
        Exercise("cnn_vs_dense", "Dense or convolutional?", 2,
                 "Both models train on the same 2,000 digits for 3 epochs. Which reaches the higher test "
                 "accuracy?", ("The dense network", "The CNN", "They tie"), 1,
                 "The CNN shares each 3×3 filter across the whole image, so what it learns about a stroke in one "
                 "place counts everywhere, with far fewer weights per feature than a dense layer that must "
                 "relearn it at every pixel. The course's full runs: 97% dense, 99.3% CNN.",
                 settings={"models": ["Dense", "CNN"], "n": 2000, "epochs": 3, "opt": "rmsprop", "lr": 1e-3,
                           "batch": 32}, check=_cnn_beats_dense),
        Exercise("lr", "A learning rate a hundred times larger", 2,
                 "Train the dense network with RMSprop at learning rate 0.1 instead of 0.001. What happens?",
                 ("It learns faster and better", "It learns about the same", "It learns much worse or not at all"),
                 2,
                 "Each update jumps so far that the loss bounces instead of descending; accuracy can stay near "
                 "chance (10%). Look at the loss curve, then compare both runs in the run table below the "
                 "training panel.",
                 settings={"models": ["Dense"], "lr": 0.1, "opt": "rmsprop", "epochs": 3, "n": 2000}),
        Exercise("moved", "Move the digits", 4,
                 "After a run, open *Moved digits*: the test digits are shifted a few pixels. Whose accuracy "
                 "falls faster?", ("The dense network's", "The CNN's", "Neither falls"), 0,
                 "The dense network ties each weight to one pixel, so a shifted stroke meets untrained weights; "
                 "the CNN's shared filters still fire and pooling absorbs a pixel or two. Neither is fully "
                 "invariant: a digit in the corner fools both.",
                 settings={"models": ["Dense", "CNN"], "n": 2000, "epochs": 3}),
    ),
    "cats_dogs": (
        Exercise("pretrained", "Scratch against a pretrained base", 3,
                 "The course's small CNN from scratch and a frozen VGG16 with one sigmoid neuron, on the same "
                 "2,000 photos. Which classifies the validation photos better?",
                 ("From scratch", "The frozen VGG16", "About the same"), 1,
                 "VGG16 learned edges, textures and parts of animals from 1.2 million ImageNet photos; only one "
                 "neuron has to be trained on top of its 25,088 features. From scratch, 2,000 photos are too few "
                 "to learn such features (the course: about 70% against 97%). Without ImageNet weights on this "
                 "server the base is random and the comparison says nothing: the page warns you.",
                 settings={"models": ["From scratch", "VGG16 frozen"], "epochs": 5},
                 check=_frozen_beats_scratch),
        Exercise("finetune", "Fine-tuning after freezing", 3,
                 "Why does the course train the frozen model first and only then unfreeze the last four layers "
                 "with a small learning rate?",
                 ("To save time", "A random head would send large gradients that wreck the pretrained filters",
                  "It makes no difference"), 1,
                 "A freshly initialised head makes large, random errors; their gradients flowing into unfrozen "
                 "pretrained layers would destroy what they learned. Train the head first, then adjust the top "
                 "of the base gently. See the fine-tuned curve carry on after the frozen epochs.",
                 settings={"models": ["VGG16 frozen", "VGG16 fine-tuned"], "ftepochs": 2}),
    ),
    "inside": (
        Exercise("exemplar", "What does an early filter want to see?", 4,
                 "Make exemplars for the first convolution layer, then for the last. Which look like parts of "
                 "objects?", ("The first layer's", "The last layer's", "Both alike"), 1,
                 "Early filters answer edges, colours and simple textures (the course's diagonal banding, 90° "
                 "edges); deeper filters combine them into more complex patterns. Exemplars are found by "
                 "gradient ascent on the input, not on the weights.", settings={}),
        Exercise("attack", "One pixel", 4,
                 "Can changing one pixel of a correctly classified digit change the CNN's answer?",
                 ("Never", "Sometimes", "Always"), 1,
                 "Sometimes: the differential-evolution attack searches pixel positions and values, and for some "
                 "digits one pixel crosses the decision boundary. How often it succeeds is a measure of how "
                 "brittle the model is; try the batch attack for a rate.", settings={"px": 1}),
    ),
    "sequences": (
        Exercise("ranking", "Which network forecasts traffic best?", 5,
                 "Dense, SimpleRNN and LSTM on the same windows of hourly traffic, at the course's 500 epochs "
                 "(the reference run). Which has the lowest validation error?",
                 ("Dense", "SimpleRNN", "LSTM"), 2,
                 "In the course's full run the LSTM wins: its gated cell state keeps what matters across the "
                 "window. At 10 epochs the ranking is often different (the dense net learns fastest), so read "
                 "the reference beside your short run before you conclude.",
                 settings={"epochs": 10, "models": ["Dense", "SimpleRNN", "LSTM"]}, check=_lstm_vs_dense),
        Exercise("layout", "1 step × h features, or h steps × 1 feature?", 5,
                 "The course feeds the LSTM one time step holding all h hours. Will the recurrent memory be used?",
                 ("Yes, fully", "No: with one step there is nothing to carry over", "Only the forget gate"), 1,
                 "With a single time step the cell state starts at zero and is read once: the forget gate "
                 "multiplies nothing, and the LSTM acts as a gated dense layer. Switch the input shape to the "
                 "true sequence and the gates get h steps to work with (see *The LSTM cell*).",
                 settings={"layout": "sequence"}),
        Exercise("arima", "Network against ARIMA", 6,
                 "Will a seasonal ARIMA model beat the networks on these forecasts?",
                 ("Never", "It can, with far less training", "Only on a GPU"), 1,
                 "A seasonal ARIMA captures the daily cycle with a handful of parameters and no training loop, "
                 "so on one series it is often as good or better. Networks earn their keep with many series, "
                 "extra inputs and long histories.", settings={}),
    ),
    "housing": (
        Exercise("standardise", "Standardise the features", 7,
                 "Train 100 epochs without and with standardised features. Which dev MAE is lower?",
                 ("Without", "With standardised features", "The same"), 1,
                 "Raw columns range from 1 to 200,000 (lot area): one learning rate cannot suit them all, and "
                 "the large ones dominate the first updates. Standardising puts every feature on the same scale.",
                 settings={"epochs": 100, "std": True}, check=_network_mae),
        Exercise("baselines", "Network against boosting", 8,
                 "On this table (1,460 houses), will the network beat gradient boosting?",
                 ("Yes, clearly", "No, boosting is as good or better", "Only with 5,000 epochs"), 1,
                 "Trees split on one feature at a time and need no scaling; on a small tabular data set they "
                 "are hard to beat. The network needs more data (or careful regularisation) to pull ahead — the "
                 "course's point in Video 7.", settings={"std": True, "log": True}),
        Exercise("long", "5,000 epochs", 7,
                 "The course trained 5,000 epochs. After the dev error's minimum, what does it do?",
                 ("Keeps falling", "Rises (overfitting), and can later fall again", "Stays flat"), 1,
                 "The training error keeps falling while the dev error turns up: overfitting. With a very large "
                 "network it can fall again ('double descent', Video 7). Open the 5,000-epoch reference run.",
                 settings={"epochs": 5000}),
    ),
    "tricks": (
        Exercise("order", "Sorted by class", 2,
                 "Train on digits sorted by class (all 0s, then all 1s, ...) without shuffling. What will the "
                 "validation accuracy be?", ("As good as shuffled", "Much worse", "Slightly better"), 1,
                 "The network fits the last classes it saw and forgets the earlier ones: the course's "
                 "'networks learn fastest from the most unexpected sample'. Shuffling mixes the classes in "
                 "every batch.", settings={"sh_epochs": 5, "sh_keras": False}, check=_shuffled_beats_ordered),
        Exercise("patience", "Patience 1", 2,
                 "Early stopping with patience 1 instead of 3: will it stop earlier or later, and is that better?",
                 ("Later; better", "Earlier; possibly too early", "No difference"), 1,
                 "One noisy epoch with a higher validation loss ends training: it may stop before the real "
                 "minimum. restore_best_weights keeps the best weights seen so far either way.",
                 settings={"es_patience": 1}),
        Exercise("rare", "A rare digit", 2,
                 "Keep only 2% of the 3s. Without correction, what will the 3s' recall be?",
                 ("Close to the others'", "Much lower", "Higher"), 1,
                 "With so few examples, predicting '3' rarely pays off in the loss, so the network learns to "
                 "avoid it. Class weights, duplication or a moved threshold each bring recall back, at a cost "
                 "in precision.", settings={"pr_class": 3, "pr_keep": 0.02}),
        Exercise("divide", "A hierarchy of ten digits", 2,
                 "Cluster the digits into 4 groups, train a coarse net and one net per group. Will the hierarchy "
                 "beat the flat network on the ten digits?",
                 ("Clearly", "No: about the same, or worse", "Only on the rare digits"), 1,
                 "Each group net is very good inside its group, but what the coarse net sends to the wrong group "
                 "is lost, and each net sees fewer digits. Divide and conquer pays off with thousands of "
                 "classes (the course's speech recognition), not with ten.", settings={"hd_k": 4, "hd_epochs": 5}),
    ),
}


def for_page(page: str) -> tuple[Exercise, ...]:
    """A page's exercises, in the order they are shown."""
    return EXERCISES.get(page, ())
