"""The Keras code every page shows, filled in with the settings of the run on screen.

Why one module: the code a learner copies must be code that runs, and it must build the network
the page trained with the numbers the run used (its digits, units, optimizer, epochs). Each
snippet here is plain Python written out as a ``string.Template`` (``$name`` fields: Python code
is full of braces, never of dollars), and one function per page fills it from the same settings
that key the run. Snippets that build networks are cut into parts by marker lines
(``# --- data ---``, ``# --- model ---``, ``# --- train ---``): ``section(code, "model")`` is
the part that builds and compiles the networks, which the tests execute on their own and compare,
parameter for parameter, with the dnn2core builders.

Nothing here imports Keras: a snippet is text.
"""

from __future__ import annotations

from string import Template
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from dnn2core.catsdogs import RunSpec as CatsDogsSpec

__all__ = [
    "cats_dogs_code",
    "convolution_code",
    "housing_code",
    "inside_code",
    "mnist_code",
    "one_pixel_attack_code",
    "section",
    "SECTIONS",
    "sequences_code",
    "tricks_code",
]

SECTIONS = ("data", "model", "train")
MNIST_TRAIN_DIGITS = 60_000  # keras.datasets.mnist's training set
OPTIMIZER_CLASSES = {"rmsprop": "RMSprop", "adam": "Adam", "sgd": "SGD"}


def _fill(template: str, **fields: Any) -> str:
    """A template with every field given (a missing one is a KeyError, not a silent ``$name``)."""
    return Template(template).substitute(fields)


def _marker(name: str) -> str:
    return f"# --- {name} ---"


def _join(*parts: str) -> str:
    """Non-empty parts, one blank line apart (none right after a section marker), ending in one newline."""
    markers = {_marker(n) for n in SECTIONS}
    out = ""
    for part in (p.strip("\n") for p in parts if p and p.strip()):
        out += ("" if not out else "\n" if out.splitlines()[-1] in markers else "\n\n") + part
    return out + "\n"


def section(code: str, name: str) -> str:
    """The lines of one part of a snippet (between its marker and the next one, markers excluded)."""
    if name not in SECTIONS:
        raise ValueError(f"Unknown section {name!r}; choose one of {SECTIONS}.")
    lines = code.splitlines()
    start = lines.index(_marker(name)) + 1
    end = next((i for i in range(start, len(lines)) if lines[i] in {_marker(s) for s in SECTIONS}), len(lines))
    return "\n".join(lines[start:end]).strip("\n") + "\n"


def _optimizer(name: str, learning_rate: float) -> str:
    return f"keras.optimizers.{OPTIMIZER_CLASSES[name]}(learning_rate={learning_rate:g})"


# =============================================================================== MNIST (Video 2)

MNIST_HEAD = """\
import numpy as np
import keras
from keras import layers

# --- data ---
(train_images, train_labels), (test_images, test_labels) = keras.datasets.mnist.load_data()"""

MNIST_SUBSET = """\
# the run trained on $n digits, drawn at random with seed $seed
chosen = np.sort(np.random.default_rng($seed).choice(len(train_images), size=$count, replace=False))
train_images, train_labels = train_images[chosen], train_labels[chosen]"""

MNIST_SCALE = """\
train_images = train_images.astype("float32") / 255
test_images = test_images.astype("float32") / 255

# --- model ---"""

MNIST_MODELS = {
    ("Dense", "sequential"): """\
dense = keras.Sequential([
    keras.Input(shape=(784,)),
    layers.Dense(64, activation="relu"),
    layers.Dense(10, activation="softmax"),
])""",
    ("Dense", "functional"): """\
inputs = keras.Input(shape=(784,))
features = layers.Dense(64, activation="relu")(inputs)
outputs = layers.Dense(10, activation="softmax")(features)
dense = keras.Model(inputs=inputs, outputs=outputs)""",
    ("CNN", "sequential"): """\
cnn = keras.Sequential([
    keras.Input(shape=(28, 28, 1)),
    layers.Conv2D(filters=32, kernel_size=3, activation="relu"),
    layers.MaxPooling2D(pool_size=2),
    layers.Conv2D(filters=64, kernel_size=3, activation="relu"),
    layers.MaxPooling2D(pool_size=2),
    layers.Conv2D(filters=128, kernel_size=3, activation="relu"),
    layers.Flatten(),
    layers.Dense(10, activation="softmax"),
])""",
    ("CNN", "functional"): """\
inputs = keras.Input(shape=(28, 28, 1))
x = layers.Conv2D(filters=32, kernel_size=3, activation="relu")(inputs)
x = layers.MaxPooling2D(pool_size=2)(x)
x = layers.Conv2D(filters=64, kernel_size=3, activation="relu")(x)
x = layers.MaxPooling2D(pool_size=2)(x)
x = layers.Conv2D(filters=128, kernel_size=3, activation="relu")(x)
x = layers.Flatten()(x)
outputs = layers.Dense(10, activation="softmax")(x)
cnn = keras.Model(inputs=inputs, outputs=outputs)""",
}

MNIST_COMPILE = """\
$var.compile(
    optimizer=$optimizer,
    loss="sparse_categorical_crossentropy",
    metrics=["accuracy"],
)
$var.summary()"""

MNIST_FIT = """\
history_$var = $var.fit(
    train_images.reshape($shape), train_labels, epochs=$epochs, batch_size=$batch,
    validation_split=$val, shuffle=True)
test_loss, test_acc = $var.evaluate(test_images.reshape($shape), test_labels)"""


def mnist_code(settings: Mapping[str, Any]) -> str:
    """The MNIST page's run as a notebook: ``settings`` as ``experiments.mnist_settings`` makes them
    (models, api, epochs, batch, opt, lr, n, val, seed), so the code trains on the run's n digits."""
    names = [m for m in ("Dense", "CNN") if m in (settings["models"] or ["Dense", "CNN"])]
    n = int(settings["n"])
    data = [MNIST_HEAD]
    if n < MNIST_TRAIN_DIGITS:
        data.append(_fill(MNIST_SUBSET, n=f"{n:,}", count=n, seed=int(settings["seed"])))
    else:
        data.append(f"# the run trained on all {MNIST_TRAIN_DIGITS:,} training digits")
    models, fits = [], []
    for name in names:
        var = name.lower()
        models.append(MNIST_MODELS[(name, settings["api"])] + "\n"
                      + _fill(MNIST_COMPILE, var=var, optimizer=_optimizer(settings["opt"], float(settings["lr"]))))
        fits.append(_fill(MNIST_FIT, var=var, shape="-1, 784" if name == "Dense" else "-1, 28, 28, 1",
                          epochs=int(settings["epochs"]), batch=int(settings["batch"]), val=f"{float(settings['val']):g}"))
    return _join("\n".join(data), MNIST_SCALE, *models, _marker("train"), *fits)


# =============================================================================== tricks of the trade

TRICKS_DATA = """\
import numpy as np
import keras
from keras import layers

# --- data ---
(x_all, y_all), (x_test, y_test) = keras.datasets.mnist.load_data()
chosen = np.random.default_rng($seed).permutation(len(y_all))[:$count]     # the run's $n digits
x_train, y_train = x_all[chosen].reshape(-1, 784) / 255, y_all[chosen]
x_val, y_val = x_test[:1000].reshape(-1, 784) / 255, y_test[:1000]       # 1,000 separate digits"""

TRICKS_RARE = """\
# keep $share of the ${rare}s (at least one); every other digit stays
rare = np.flatnonzero(y_train == $rare)
kept = np.random.default_rng($seed).choice(rare, size=max(1, round($keep * len(rare))), replace=False)
mask = y_train != $rare
mask[kept] = True
x_train, y_train = x_train[mask], y_train[mask]"""

TRICKS_MODEL = """\
# --- model ---
model = keras.Sequential([
    keras.Input(shape=(784,)),
    layers.Dense($hidden, activation="relu"),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=$optimizer,
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])

# --- train ---"""

TRICKS_SHUFFLE = """\
order = np.argsort(y_train, kind="stable")            # all 0s, then all 1s, ...
x_ordered, y_ordered = x_train[order], y_train[order]
# shuffle=False matters: fit() reshuffles every epoch by default, undoing the order
model.fit(x_ordered, y_ordered, epochs=$epochs, batch_size=$batch, shuffle=False,
          validation_data=(x_val, y_val))   # not validation_split: it takes the LAST rows

# the comparison: the same network, new weights, on the same digits shuffled
shuffled = keras.models.clone_model(model)
shuffled.compile(optimizer=$optimizer,
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"])
mixed = np.random.default_rng($seed).permutation(len(y_train))
shuffled.fit(x_train[mixed], y_train[mixed], epochs=$epochs, batch_size=$batch, shuffle=True,
             validation_data=(x_val, y_val))"""

TRICKS_KERAS_SHUFFLE = """\
# and the sorted digits with fit(shuffle=True), Keras' default: it undoes the sorting
# (a third fresh copy, fitted on x_ordered, y_ordered with shuffle=True)"""

TRICKS_STOP = """\
stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=$patience,
                                     restore_best_weights=True)
history = model.fit(x_train, y_train, epochs=$epochs, batch_size=$batch,
                    validation_data=(x_val, y_val), callbacks=[stop])
best = int(np.argmin(history.history["val_loss"]))
print("best epoch", best + 1, history.history["val_loss"][best])
print("kept weights", model.evaluate(x_val, y_val, batch_size=$batch, verbose=0)[0])  # the same value"""

TRICKS_STOP_COMPARE = """\
# the comparison: a fresh copy trained for all $epochs epochs, without the callback"""

TRICKS_PRIOR = """\
counts = np.bincount(y_train, minlength=10)
present = np.flatnonzero(counts)
# class weights: every class carries the same total weight
weights = {int(c): len(y_train) / (len(present) * counts[c]) for c in present}
model.fit(x_train, y_train, epochs=$epochs, batch_size=$batch, class_weight=weights,
          validation_data=(x_val, y_val))
# (the page also trains fresh copies without correction, on subsampled and on duplicated digits)

# or: a moved decision threshold on the uncorrected model (no retraining)
others = np.delete(counts, $rare)
factor = others[others > 0].mean() / counts[$rare]
probs = model.predict(x_val)
probs[:, $rare] *= factor
predicted = probs.argmax(axis=1)"""


TRICKS_DIVIDE_DATA = """\
# a hierarchy on the digits: agglomerative clustering (Ward) of their mean images
from scipy.cluster.hierarchy import fcluster, linkage

means = np.stack([x_train[y_train == d].mean(axis=0) for d in range(10)])
tree = linkage(means, method="ward")
cluster = fcluster(tree, $k, criterion="maxclust")   # cut into $k groups
groups = sorted((np.flatnonzero(cluster == c).tolist() for c in np.unique(cluster)), key=min)
# this run's groups: $groups
group_of = np.empty(10, dtype=int)                  # digit -> its group
for g, digits in enumerate(groups):
    group_of[digits] = g"""

TRICKS_DIVIDE_MODEL = """\
# --- model ---
def small_net(outputs):
    net = keras.Sequential([
        keras.Input(shape=(784,)),
        layers.Dense($hidden, activation="relu"),
        layers.Dense(outputs, activation="softmax"),
    ])
    net.compile(optimizer=$optimizer,
                loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return net

flat = small_net(10)     # the comparison: one softmax over all ten digits
coarse = small_net($k)    # which group?
# one net per group of 2+ digits, telling only its own digits apart (sizes $sizes)
group_nets = {g: small_net(size) for g, size in enumerate($sizes) if size > 1}

# --- train ---"""

TRICKS_DIVIDE_TRAIN = """\
fit = dict(epochs=$epochs, batch_size=$batch)
flat.fit(x_train, y_train, validation_data=(x_val, y_val), **fit)
coarse.fit(x_train, group_of[y_train], validation_data=(x_val, group_of[y_val]), **fit)
for g, net in group_nets.items():
    mine, seen = np.isin(y_train, groups[g]), np.isin(y_val, groups[g])   # only this group's digits,
    net.fit(x_train[mine], np.searchsorted(groups[g], y_train[mine]),       # relabelled 0, 1, ...
            validation_data=(x_val[seen], np.searchsorted(groups[g], y_val[seen])), **fit)

# P(digit) = P(group) * P(digit | group); a one-digit group's digit gets P(group)
p_group = coarse.predict(x_val)
probs = np.zeros((len(x_val), 10))
for g, digits in enumerate(groups):
    probs[:, digits] = p_group[:, [g]] * (group_nets[g].predict(x_val) if g in group_nets else 1.0)
print("flat        ", np.mean(flat.predict(x_val).argmax(axis=1) == y_val))
print("hierarchical", np.mean(probs.argmax(axis=1) == y_val))"""


def tricks_code(part: str, settings: Mapping[str, Any], groups: Sequence[Sequence[int]] | None = None) -> str:
    """One Tricks experiment as a notebook. ``settings``: the run's (as the Tricks page keys it:
    n, epochs, seed and the part's own); the network and its optimizer come from
    ``tricks.net_settings``, the very numbers the run trains with. ``groups``: divide and conquer's
    cut of the class tree (it depends on the digits, not only on the settings), which the model part
    needs to size the group nets."""
    from dnn2core.tricks import net_settings

    net = net_settings(part, settings)
    seed, n = int(settings["seed"]), int(settings["n"])
    optimizer = _optimizer(net.optimizer, net.learning_rate)
    data = [_fill(TRICKS_DATA, seed=seed, count=n, n=f"{n:,}")]
    if part == "divide":
        if groups is None:
            raise ValueError("The divide-and-conquer code needs the run's groups.")
        k = int(settings["k"])
        shown = " | ".join(" ".join(str(int(c)) for c in g) for g in groups)
        data.append(_fill(TRICKS_DIVIDE_DATA, k=k, groups=shown))
        model = _fill(TRICKS_DIVIDE_MODEL, hidden=net.hidden, optimizer=optimizer, k=len(groups),
                      sizes=[len(g) for g in groups])
        return _join(*data, model, _fill(TRICKS_DIVIDE_TRAIN, epochs=net.epochs, batch=net.batch_size))
    if part == "prior":
        keep = float(settings["keep"])
        data.append(_fill(TRICKS_RARE, share=f"{keep:.0%}", rare=int(settings["rare"]), seed=seed, keep=f"{keep:g}"))
    model = _fill(TRICKS_MODEL, hidden=net.hidden, optimizer=optimizer)
    fields = dict(epochs=net.epochs, batch=net.batch_size, optimizer=optimizer, seed=seed)
    if part == "shuffle":
        train = [_fill(TRICKS_SHUFFLE, **fields)] + ([TRICKS_KERAS_SHUFFLE] if settings.get("keras") else [])
    elif part == "stop":
        train = [_fill(TRICKS_STOP, patience=int(settings["patience"]), **fields)]
        if settings.get("compare"):
            train.append(_fill(TRICKS_STOP_COMPARE, epochs=net.epochs))
    elif part == "prior":
        train = [_fill(TRICKS_PRIOR, rare=int(settings["rare"]), **fields)]
    else:
        raise ValueError(f"Unknown experiment {part!r}; choose shuffle, stop, prior or divide.")
    return _join(*data, model, *train)


# =============================================================================== house prices (Video 7)

HOUSING_DATA = """\
import numpy as np
import pandas as pd
import keras
from keras import layers
from sklearn.utils import shuffle

# --- data ---
df = pd.read_csv("train.csv")                  # Kaggle House Prices
df = df.select_dtypes("number").dropna()      # = df._get_numeric_data().dropna()"""

HOUSING_DROP_ID = """\
df = df.drop(columns=["Id"])                 # a row number says nothing about a price"""

HOUSING_SPLIT = """\
df = shuffle(df, random_state=$seed)
training_set, dev_set = df.iloc[:$n_train], df.iloc[$n_train:]
# the text's np.split(df, [121]) puts 121 rows first; np.split(df, [1000]) is meant
# (and with pandas 3 np.split returns plain arrays, so iloc is used here)

training_features = training_set.drop(columns=["SalePrice"])
training_observations = training_set["SalePrice"]
dev_features = dev_set.drop(columns=["SalePrice"])
dev_observations = dev_set["SalePrice"]"""

HOUSING_STANDARDISE = """\
mean, std = training_features.mean(), training_features.std(ddof=0).replace(0, 1)
training_features = (training_features - mean) / std   # statistics of the training rows only
dev_features = (dev_features - mean) / std"""

HOUSING_LOG = """\
offset = np.log(training_observations).mean()   # centred, so the net starts near the answer
training_observations = np.log(training_observations) - offset  # errors become relative
dev_observations = np.log(dev_observations) - offset"""

HOUSING_MODEL = """\
# --- model ---
house_model = keras.Sequential([
    keras.Input(shape=($n_features,)),            # this run's $n_features feature columns
    layers.Dense(64, activation="relu"),
    layers.Dense(64, activation="relu"),
    layers.Dense(64, activation="relu"),
    layers.Dense(64, activation="relu"),
    layers.Dense(1, activation=None),
])
house_model.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])

# --- train ---"""

HOUSING_STOP = """\
stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=$patience, restore_best_weights=True)"""

HOUSING_FIT = """\
house_model_history = house_model.fit(training_features, training_observations,
    epochs=$epochs, batch_size=$batch, verbose=0,$callbacks
    validation_data=(dev_features, dev_observations))"""

HOUSING_DOLLARS = """\
predicted = np.exp(house_model.predict(dev_features).ravel() + offset)
print("dev MAE in dollars:", np.mean(np.abs(predicted - np.exp(dev_observations + offset))))"""


def housing_code(settings: Mapping[str, Any], n_features: int, n_train: int) -> str:
    """The house-price run as a notebook (the course's code, its slips fixed). ``settings`` as
    ``experiments.housing_settings`` makes them; ``n_features`` and ``n_train``: the run's split."""
    stop = bool(settings.get("stop"))
    data = [HOUSING_DATA, HOUSING_DROP_ID if settings.get("noid") else "",
            _fill(HOUSING_SPLIT, seed=int(settings["seed"]), n_train=int(n_train))]
    train = [_fill(HOUSING_STOP, patience=int(settings["patience"])) if stop else "",
             _fill(HOUSING_FIT, epochs=int(settings["epochs"]), batch=int(settings["batch"]),
                   callbacks="\n    callbacks=[stop]," if stop else "")]
    return _join("\n".join(p for p in data if p), HOUSING_STANDARDISE if settings.get("std") else "",
                 HOUSING_LOG if settings.get("log") else "", _fill(HOUSING_MODEL, n_features=int(n_features)),
                 *train, HOUSING_DOLLARS if settings.get("log") else "")


# =============================================================================== forecasting traffic (Video 6)

SEQUENCES_DATA = """\
import numpy as np
import keras
from keras import layers

# --- data ---
# raw_data: a 1-D array of hourly values, already cleaned (no gaps)
def build_window(data, h, f):
    dataX, dataY = [], []
    for i in range(len(data) - h - f):
        dataX.append(data[i:(i + h)])
        dataY.append(data[(i + h):(i + h + f)])
    dataX = np.array(dataX)
    dataX = np.reshape(dataX, (dataX.shape[0], 1, dataX.shape[1]))
    dataY = np.array(dataY)
    return dataX, dataY
$last
h, f = $h, $f
num_train_samples = int(0.8 * len(raw_data))
train_part = raw_data[:num_train_samples + h + f - 1]      # every point a training window sees
lo, hi = train_part.min(), train_part.max()                # scaler fitted on the training part only
data = (raw_data - lo) / (hi - lo)
dataX, dataY = build_window(data, h, f)"""

SEQUENCES_LAYER = {
    "Dense": """\
    layers.Flatten(),
    layers.Dense($units, activation="relu"),""",
    "SimpleRNN": """\
    layers.SimpleRNN($units),""",
    "LSTM": """\
    layers.LSTM($units),""",
}

SEQUENCES_MODEL = """\
$var = keras.Sequential([
    keras.Input(shape=$shape),
$layer
    layers.Dense($f),
])
$var.compile(optimizer="rmsprop", loss="mse", metrics=["mae"])"""

SEQUENCES_FIT = """\
history_$kind = $var.fit(
    trainX, trainY, epochs=$epochs, batch_size=$batch,
    validation_data=(valX, valY))"""


def sequences_code(settings: Mapping[str, Any], input_shape: Sequence[int]) -> str:
    """The forecasting run as a notebook. ``settings`` as ``experiments.sequences_settings`` makes
    them; ``input_shape``: the run's window shape (course layout (1, h + calendar inputs), or a
    true sequence (h, 1 + calendar inputs))."""
    from dnn2core import forecasting as fc

    h, f, extras = int(settings["h"]), fc.FORECAST_HOURS, list(settings["extras"])
    hours = int(settings.get("hours") or 0)
    data = [_fill(SEQUENCES_DATA, h=h, f=f, last=f"\nraw_data = raw_data[-{hours}:]                   "
                                                     f"# the run's last {hours:,} hours\n" if hours else "")]
    if settings["layout"] == "sequence":
        data.append("dataX = dataX.reshape(-1, h, 1)                 # h time steps of 1 feature")
    if extras:
        data.append(f"# + {2 * len(extras)} calendar inputs (sin/cos of {' and '.join(extras)}) appended to each "
                    + ("window" if settings["layout"] == "course" else "time step"))
    data.append("trainX, trainY = dataX[:num_train_samples], dataY[:num_train_samples]\n"
                "valX, valY = dataX[num_train_samples:], dataY[num_train_samples:]")
    kinds = [k for k in fc.MODEL_KINDS if k in (settings["models"] or fc.MODEL_KINDS)]
    shape = tuple(int(d) for d in input_shape)
    models = [_fill(SEQUENCES_MODEL, var=f"model_{k.lower()}", shape=shape, f=f,
                    layer=_fill(SEQUENCES_LAYER[k], units=fc.UNITS)) for k in kinds]
    fits = [_fill(SEQUENCES_FIT, kind=k.lower(), var=f"model_{k.lower()}", epochs=int(settings["epochs"]),
                  batch=fc.BATCH_SIZE) for k in kinds]
    return _join("\n".join(data), _marker("model"), *models, _marker("train"), *fits)


# =============================================================================== cats vs dogs (Videos 3-4)

CATS_DOGS_DATA = """\
import keras
from keras import layers

# --- data ---
train_dataset = keras.utils.image_dataset_from_directory("$folder/train",
    image_size=($s, $s), batch_size=$batch, label_mode="binary")
validation_dataset = keras.utils.image_dataset_from_directory("$folder/validation",
    image_size=($s, $s), batch_size=$batch, label_mode="binary")
train_dataset = train_dataset.cache().prefetch(2)
validation_dataset = validation_dataset.cache().prefetch(2)

# --- model ---"""

CATS_DOGS_AUGMENTATION = """\
augmentation = keras.Sequential([layers.RandomFlip("horizontal"),
    layers.RandomRotation(0.1), layers.RandomZoom(0.2)])"""

CATS_DOGS_SCRATCH = """\
model = keras.Sequential([
    keras.Input(shape=($s, $s, 3)),
$layers
    layers.Dense(1, activation="sigmoid")
])
model.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])"""

CATS_DOGS_VGG16 = """\
conv_base = keras.applications.vgg16.VGG16(
    weights=$weights,
    include_top=False,
    input_shape=($s, $s, 3))
conv_base.trainable = False

inputs = keras.Input(shape=($s, $s, 3))
$inputs_to_x
x = conv_base(x)
x = layers.Flatten()(x)
outputs = layers.Dense(1, activation="sigmoid")(x)
model_with_vgg16_bottom = keras.Model(inputs, outputs)
model_with_vgg16_bottom.compile(loss="binary_crossentropy", optimizer="rmsprop",
                                metrics=["accuracy"])"""

CATS_DOGS_HEAD = """\
# Fast path: the same Dense layer alone, trained on the frozen base's stored features
head_inputs = keras.Input(shape=($side, $side, 512))
head_outputs = layers.Dense(1, activation="sigmoid")(layers.Flatten()(head_inputs))
head = keras.Model(head_inputs, head_outputs)
head.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])"""

CATS_DOGS_MOBILENET = """\
mobile_base = keras.applications.mobilenet_v2.MobileNetV2(
    weights=$weights,
    include_top=False,
    input_shape=($s, $s, 3))
mobile_base.trainable = False

inputs = keras.Input(shape=($s, $s, 3))
x = keras.applications.mobilenet_v2.preprocess_input(inputs)   # to -1..1
x = mobile_base(x)
x = layers.GlobalAveragePooling2D()(x)                           # 1,280 numbers, not a 5x5x1,280 flatten
outputs = layers.Dense(1, activation="sigmoid")(x)
model_with_mobilenet_v2 = keras.Model(inputs, outputs)
model_with_mobilenet_v2.compile(loss="binary_crossentropy", optimizer="rmsprop", metrics=["accuracy"])"""

CATS_DOGS_SCRATCH_FIT = """\
history = model.fit(train_dataset, epochs=$epochs, validation_data=validation_dataset)"""

CATS_DOGS_FEATURES = """\
# Fast path: run the frozen base once, then train the head on the stored features.
import numpy as np
def get_features_and_labels(dataset):
    features, labels = [], []
    for images, batch_labels in dataset:
        x = keras.applications.vgg16.preprocess_input(images)
        features.append(conv_base.predict(x, verbose=0))
        labels.append(batch_labels.numpy())
    return np.concatenate(features), np.concatenate(labels)
train_features, train_labels = get_features_and_labels(train_dataset)
val_features, val_labels = get_features_and_labels(validation_dataset)
head.fit(train_features, train_labels, epochs=$epochs,
         validation_data=(val_features, val_labels))
# the same network end to end (the course's code), with the trained head's weights:
model_with_vgg16_bottom.layers[-1].set_weights(head.layers[-1].get_weights())"""

CATS_DOGS_VGG16_FIT = """\
history_with_vgg16_bottom = model_with_vgg16_bottom.fit(train_dataset, epochs=$epochs,
    validation_data=validation_dataset)"""

CATS_DOGS_FINE_TUNE = """\
# Fine-tuning (Video 4): unfreeze the last four layers of the base
conv_base.trainable = True
for layer in conv_base.layers[:-4]:
    layer.trainable = False
model_with_vgg16_bottom.compile(loss="binary_crossentropy",
    optimizer=keras.optimizers.RMSprop(learning_rate=$lr),
    metrics=["accuracy"])
fine_tuning_history = model_with_vgg16_bottom.fit(train_dataset, epochs=$epochs,
    validation_data=validation_dataset)"""

CATS_DOGS_MOBILENET_FIT = """\
history_with_mobilenet_v2 = model_with_mobilenet_v2.fit(train_dataset, epochs=$epochs,
    validation_data=validation_dataset)"""


def _scratch_layers(spec: "CatsDogsSpec") -> str:
    """The scratch network's layer list: the course's Conv2D 32/64/128 or the deeper 32 to 512."""
    lines = ["    augmentation,"] if spec.scratch_augmentation else []
    lines.append("    layers.Rescaling(1./255),")
    filters = (32, 64, 128, 256, 512) if spec.deeper else (32, 64, 128)
    for i, f in enumerate(filters):
        lines.append(f'    layers.Conv2D(filters={f}, kernel_size=3, activation="relu"),')
        if i < len(filters) - 1:
            lines.append("    layers.MaxPooling2D(pool_size=2),")
    lines.append("    layers.Flatten(),")
    if spec.dropout:
        lines.append(f"    layers.Dropout({spec.dropout:g}),")
    return "\n".join(lines)


def cats_dogs_code(spec: "CatsDogsSpec", folder: str = "cats_and_dogs_filtered",
                   weights: str | None = "imagenet") -> str:
    """The cats-vs-dogs run (``catsdogs.RunSpec``) as a notebook, Videos 3 and 4. ``weights`` is
    what the pretrained bases load (None: random weights, as in tests, which never download)."""
    s, w = int(spec.image_size), "None" if weights is None else f'"{weights}"'
    vgg = any(a.startswith("VGG16") for a in spec.approaches)
    fast = spec.fast_path and not spec.frozen_augmentation
    models: list[str] = []
    train: list[str] = []
    if spec.scratch_augmentation or spec.frozen_augmentation:
        models.append(CATS_DOGS_AUGMENTATION)
    if "From scratch" in spec.approaches:
        models.append(_fill(CATS_DOGS_SCRATCH, s=s, layers=_scratch_layers(spec)))
        train.append(_fill(CATS_DOGS_SCRATCH_FIT, epochs=int(spec.epochs)))
    if vgg:
        inputs_to_x = ("x = augmentation(inputs)\nx = keras.applications.vgg16.preprocess_input(x)"
                       if spec.frozen_augmentation else "x = keras.applications.vgg16.preprocess_input(inputs)")
        models.append(_fill(CATS_DOGS_VGG16, s=s, weights=w, inputs_to_x=inputs_to_x))
        if fast:
            models.append(_fill(CATS_DOGS_HEAD, side=s // 32))
            train.append(_fill(CATS_DOGS_FEATURES, epochs=int(spec.epochs)))
        else:
            train.append(_fill(CATS_DOGS_VGG16_FIT, epochs=int(spec.epochs)))
        if "VGG16 fine-tuned" in spec.approaches:
            train.append(_fill(CATS_DOGS_FINE_TUNE, lr=f"{spec.finetune_learning_rate:g}",
                               epochs=int(spec.finetune_epochs)))
    if "MobileNetV2 frozen" in spec.approaches:
        models.append(_fill(CATS_DOGS_MOBILENET, s=s, weights=w))
        train.append(_fill(CATS_DOGS_MOBILENET_FIT, epochs=int(spec.epochs)))
    return _join(_fill(CATS_DOGS_DATA, folder=folder, s=s, batch=int(spec.batch_size)), *models, _marker("train"),
                 *train)


# =============================================================================== convolution playground (Video 1)

CONVOLUTION_LAYER = """\
import keras
from keras import layers

# --- model ---
inputs = keras.Input(shape=$input_shape)
layer = layers.Conv2D(
    filters=$filters,
    kernel_size=$kernel_size,
    strides=$strides,
    padding=$padding,
    activation=$activation,
)
feature_maps = layer(inputs)             # shape $out_shape: $params parameters"""

CONVOLUTION_POOL = """\
pool = layers.MaxPooling2D(pool_size=$pool, strides=$pool_stride)
pooled = pool(feature_maps)              # shape $pooled_shape"""


def convolution_code(filters: int, kernel_size: int, stride: int, padding: str, activation: str | None,
                     input_shape: Sequence[int], pool: int = 0, pool_stride: int | None = None) -> str:
    """The Keras layer(s) equivalent to the playground's settings, on an input of ``input_shape``
    (H, W, C), with the output shape and parameter count the playground computes."""
    from dnn2core import convolution as conv

    h, w, c = (int(d) for d in input_shape)
    act = None if activation in (None, "none", "linear") else activation
    oh, ow = conv.output_size(h, kernel_size, stride, padding), conv.output_size(w, kernel_size, stride, padding)
    code = _fill(CONVOLUTION_LAYER, input_shape=(h, w, c), filters=int(filters), kernel_size=int(kernel_size),
                 strides=int(stride), padding=repr(padding), activation=repr(act),
                 out_shape=(None, oh, ow, int(filters)),
                 params=f"{conv.conv_layer_params(int(kernel_size), c, int(filters)):,}")
    if pool:
        ps = int(pool_stride or pool)
        pooled = (None, conv.output_size(oh, int(pool), ps), conv.output_size(ow, int(pool), ps), int(filters))
        code += "\n" + _fill(CONVOLUTION_POOL, pool=int(pool), pool_stride=ps, pooled_shape=pooled)
    return code + "\n"


# =============================================================================== inside the network (Video 5)

INSIDE = """\
import numpy as np
import tensorflow as tf
import keras

# model: a trained Keras CNN taking 28x28x1 images in [0, 1]
layer = model.get_layer("$layer")
features = keras.Model(inputs=model.inputs[0], outputs=layer.output)

def filter_exemplar(filter_index, steps=30, step_size=0.05, stages=3, factor=1.2, seed=0):
    rng = np.random.default_rng(seed)
    size = int(28 / factor ** (stages - 1))
    img = rng.uniform(0.4, 0.6, (1, size, size, 1)).astype("float32")
    for stage in range(stages):
        img = tf.Variable(img)
        for _ in range(steps // stages):
            with tf.GradientTape() as tape:
                x = tf.image.resize(img, (28, 28))          # the model takes 28x28
                loss = tf.reduce_mean(features(x)[..., filter_index])
            grads = tape.gradient(loss, img)
            grads /= tf.sqrt(tf.reduce_mean(grads ** 2)) + 1e-8   # normalised step
            img.assign(tf.clip_by_value(img + step_size * grads, 0, 1))
        size = min(28, int(size * factor))                      # upscale between stages
        img = tf.image.resize(img.numpy(), (size, size), method="bicubic").numpy()
    return tf.image.resize(img, (28, 28)).numpy()[0]

# Grad-CAM for class c (keras-io's recipe)
grad_model = keras.Model(model.inputs[0], [model.get_layer("$cam_layer").output, model.outputs[0]])
with tf.GradientTape() as tape:
    maps, probs = grad_model(image[None])
    score = probs[:, c]
weights = tf.reduce_mean(tape.gradient(score, maps), axis=(1, 2), keepdims=True)
cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1))[0]
"""

ONE_PIXEL_ATTACK = """\
import numpy as np
from scipy.optimize import differential_evolution

# model: a trained Keras CNN; image: 28x28x1 in [0, 1]; label: its true class
H, W, C = image.shape
pixels = $pixels
bounds = [(0, H - 1), (0, W - 1), (0.0, 1.0)] * pixels       # row, column, value per pixel
integrality = [True, True, False] * pixels

def perturb(candidates):                                       # candidates: (S, 3 * pixels)
    batch = np.repeat(image[None], len(candidates), axis=0)
    for k in range(pixels):
        r, c, v = candidates[:, 3 * k:3 * k + 3].T
        batch[np.arange(len(batch)), r.astype(int), c.astype(int), 0] = v
    return batch

def true_class_confidence(x):                                  # x: (3 * pixels, S), a whole generation
    probs = model.predict(perturb(x.T), verbose=0)             # one batched prediction
    return probs[:, label]

def stop_on_success(intermediate_result):
    probs = model.predict(perturb(intermediate_result.x[None]), verbose=0)
    return probs.argmax() != label                             # True stops the search

# scipy's popsize counts candidates per number searched: about $popsize per generation
result = differential_evolution(true_class_confidence, bounds, integrality=integrality,
                                vectorized=True, updating="deferred", popsize=max(1, $popsize // (3 * pixels)),
                                maxiter=$maxiter, polish=False, callback=stop_on_success, rng=$seed)
"""


def inside_code(layer: str = "conv2d_1", cam_layer: str = "conv2d_2") -> str:
    """A filter exemplar of ``layer`` and Grad-CAM on ``cam_layer`` in plain Keras and TensorFlow
    (the page's chosen layers; it expects ``model``, ``image`` and a class ``c`` to exist)."""
    return _fill(INSIDE, layer=layer, cam_layer=cam_layer)


def one_pixel_attack_code(pixels: int = 1, popsize: int = 400, maxiter: int = 75, seed: int = 0) -> str:
    """The one-pixel attack with SciPy's differential evolution, one batched prediction per
    generation, with the page's budget (it expects ``model``, ``image`` and ``label``)."""
    return _fill(ONE_PIXEL_ATTACK, pixels=int(pixels), popsize=int(popsize), maxiter=int(maxiter), seed=int(seed))
