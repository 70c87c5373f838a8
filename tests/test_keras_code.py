"""The Keras code the pages show (dnn2core.keras_code) is code that runs.

Each snippet's model part, executed on its own (Keras imported, no data, no training), builds
networks with exactly the parameters of the dnn2core builder the run used, for several settings.
The data parts, run on small stand-in data, select what the run selects; and every snippet says
the run's own numbers (its digits, units, optimizer, epochs), not the course's defaults."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from dnn2core import catsdogs as cd
from dnn2core import convolution as conv
from dnn2core import digits, experiments, interpret, models
from dnn2core import forecasting as fc
from dnn2core import hierarchy as hi
from dnn2core import keras_code as kc
from dnn2core import regression as reg
from dnn2core import tricks as tr
from dnn2core.data import Mnist


def run_model_part(code: str) -> dict:
    """Execute the snippet's ``# --- model ---`` part alone; returns the names it defined."""
    ns: dict = {}
    exec(compile("import keras\nfrom keras import layers\n" + kc.section(code, "model"), "<model part>", "exec"), ns)
    return ns


def fake_mnist(n_train: int = 1200, n_test: int = 1100, seed: int = 0) -> Mnist:
    rng = np.random.default_rng(seed)
    return Mnist(rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train).astype(np.uint8),
                 rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test).astype(np.uint8))


def keras_with_mnist(mnist: Mnist) -> SimpleNamespace:
    """Stands in for ``keras`` in a data part: ``keras.datasets.mnist.load_data()`` gives ``mnist``."""
    load = lambda: ((mnist.x_train, mnist.y_train), (mnist.x_test, mnist.y_test))  # noqa: E731
    return SimpleNamespace(datasets=SimpleNamespace(mnist=SimpleNamespace(load_data=load)))


def optimizer_of(model) -> tuple[str, float]:
    return type(model.optimizer).__name__, float(model.optimizer.learning_rate.numpy())


# ----------------------------------------------------------------------------- sections


def test_every_snippet_is_python_and_has_its_sections():
    spec = cd.RunSpec(approaches=("From scratch", "VGG16 frozen", "VGG16 fine-tuned", "MobileNetV2 frozen"))
    snippets = [
        kc.mnist_code(experiments.mnist_settings(models=["Dense", "CNN"], api="sequential", epochs=1, batch=32,
                                                 opt="rmsprop", lr=1e-3, n=500, val=0.1, seed=0)),
        kc.housing_code(experiments.housing_settings(epochs=5, batch=32, seed=0, noid=False, std=True, log=True,
                                                     stop=True, patience=5), 10, 100),
        kc.sequences_code(experiments.sequences_settings(gap=6, policy="drop", agg="mean", hours=0, h=6,
                                                         layout="course", extras=[], models=[], epochs=1, seed=0),
                          (1, 6)),
        kc.cats_dogs_code(spec),
        *[kc.tricks_code(part, s) for part, s in TRICKS_SETTINGS],
        *[kc.tricks_code("divide", s, groups) for s, groups in DIVIDE_SETTINGS],
    ]
    for code in snippets:
        compile(code, "<snippet>", "exec")
        lines = code.splitlines()
        assert [line for line in lines if line.startswith("# --- ")] == ["# --- data ---", "# --- model ---",
                                                                          "# --- train ---"]
    compile(kc.convolution_code(1, 3, 1, "valid", None, (28, 28, 1)), "<conv>", "exec")
    with pytest.raises(ValueError, match="Unknown section"):
        kc.section(snippets[0], "evaluate")


# ----------------------------------------------------------------------------- MNIST


@pytest.mark.parametrize("api,chosen", [("sequential", ["Dense", "CNN"]), ("functional", ["Dense", "CNN"]),
                                        ("functional", ["CNN"])])
def test_mnist_snippet_builds_the_course_networks(api, chosen):
    settings = experiments.mnist_settings(models=chosen, api=api, epochs=3, batch=64, opt="adam", lr=3e-3, n=5000,
                                          val=0.2, seed=7)
    code = kc.mnist_code(settings)
    ns = run_model_part(code)
    assert ns["cnn"].count_params() == models.build_mnist_cnn(api).count_params() == 104_202
    if "Dense" in chosen:
        assert ns["dense"].count_params() == models.build_mnist_dense(api).count_params() == 50_890
    else:
        assert "dense" not in ns
    assert optimizer_of(ns["cnn"]) == ("Adam", pytest.approx(3e-3))
    assert "epochs=3, batch_size=64" in code and "validation_split=0.2" in code


def test_mnist_snippet_trains_on_the_runs_digits():
    """Issue 14: the code said 60,000 digits when the run used 5,000."""
    settings = experiments.mnist_settings(models=["Dense"], api="sequential", epochs=1, batch=32, opt="rmsprop",
                                          lr=1e-3, n=5000, val=0.1, seed=3)
    code = kc.mnist_code(settings)
    assert "5,000 digits" in code and "size=5000" in code and "60,000" not in code
    # on a stand-in MNIST the data part draws exactly the digits the run draws (digits.prepare)
    mnist = fake_mnist()
    small = kc.mnist_code(dict(settings, n=300))
    ns = {"np": np, "keras": keras_with_mnist(mnist)}
    exec(kc.section(small, "data"), ns)
    split = digits.prepare(mnist, 300, 3)
    np.testing.assert_array_equal(ns["train_labels"], split.y_train)
    np.testing.assert_allclose(ns["train_images"], split.x_train)
    np.testing.assert_allclose(ns["test_images"], split.x_test)
    full = kc.mnist_code(dict(settings, n=60_000))
    assert "all 60,000 training digits" in full and "choice(" not in full


# ----------------------------------------------------------------------------- tricks of the trade


BASE = {"seed": 2}
TRICKS_SETTINGS = [
    ("shuffle", dict(BASE, part="shuffle", n=1000, epochs=3, batch=16, opt="sgd", keras=False)),
    ("shuffle", dict(BASE, part="shuffle", n=300, epochs=2, batch=tr.FULL_BATCH, opt="rmsprop", keras=True)),
    ("stop", dict(BASE, part="stop", n=500, epochs=40, patience=3, hidden=256, lr=3e-3, compare=True)),
    ("stop", dict(BASE, part="stop", n=250, epochs=10, patience=2, hidden=32, lr=1e-4, compare=False)),
    ("prior", dict(BASE, part="prior", rare=3, keep=0.05, n=1000, epochs=5)),
]


DIVIDE_SETTINGS = [
    (dict(BASE, part="divide", n=4000, k=4, epochs=5, hidden=64), [[0], [1, 3, 5, 8], [2, 6], [4, 7, 9]]),
    (dict(BASE, part="divide", n=1000, k=2, epochs=3, hidden=32), [[0], [1, 2, 3, 4, 5, 6, 7, 8, 9]]),
    (dict(BASE, part="divide", n=2000, k=5, epochs=8, hidden=128), [[0], [1], [2, 6], [3, 5, 8], [4, 7, 9]]),
]


@pytest.mark.parametrize("part,settings", TRICKS_SETTINGS, ids=[f"{p}-{i}" for i, (p, _) in enumerate(TRICKS_SETTINGS)])
def test_tricks_snippet_builds_the_runs_network(part, settings):
    net = tr.net_settings(part, settings)
    code = kc.tricks_code(part, settings)
    model = run_model_part(code)["model"]
    built = tr.build_small_dense(net.hidden, net.optimizer, net.learning_rate)
    assert model.count_params() == built.count_params() == 784 * net.hidden + net.hidden + net.hidden * 10 + 10
    assert optimizer_of(model) == optimizer_of(built)
    assert f"epochs={net.epochs}, batch_size={net.batch_size}" in code


def test_tricks_snippets_say_the_runs_units_and_optimizer():
    """Issue 14: the early-stopping code showed Dense(64) with "sgd" while the run used 256 units, Adam 3e-3."""
    stop = kc.tricks_code("stop", TRICKS_SETTINGS[2][1])
    assert "layers.Dense(256, " in stop and "Adam(learning_rate=0.003)" in stop
    assert "Dense(64" not in stop and "sgd" not in stop.lower()
    assert "patience=3" in stop and "restore_best_weights=True" in stop and "all 40 epochs" in stop
    shuffle = kc.tricks_code("shuffle", TRICKS_SETTINGS[0][1])
    assert "SGD(learning_rate=0.05)" in shuffle and "shuffle=False" in shuffle and "batch_size=16" in shuffle
    full_batch = kc.tricks_code("shuffle", TRICKS_SETTINGS[1][1])
    assert "batch_size=300" in full_batch and "fit(shuffle=True)" in full_batch  # the whole set in one batch


@pytest.mark.parametrize("settings,groups", DIVIDE_SETTINGS, ids=[f"divide-{s['k']}" for s, _ in DIVIDE_SETTINGS])
def test_divide_snippet_builds_the_runs_networks(settings, groups):
    """The flat, coarse and group nets of the code have the parameters (and optimizer) of the run's."""
    net = tr.net_settings("divide", settings)
    code = kc.tricks_code("divide", settings, groups)
    ns = run_model_part(code)
    d = tr.digit_data(fake_mnist(), 300, 100, 0)
    runs = hi.hierarchy_runs(d, groups, epochs=net.epochs, hidden=net.hidden, learning_rate=net.learning_rate,
                             batch_size=net.batch_size)
    shown = [ns["flat"], ns["coarse"], *(ns["group_nets"][g] for g in sorted(ns["group_nets"]))]
    assert len(shown) == len(runs)
    for model, run in zip(shown, runs):
        built = run.build()
        assert model.count_params() == built.count_params(), run.name
        assert model.output_shape == built.output_shape and optimizer_of(model) == optimizer_of(built)
    assert sorted(ns["group_nets"]) == [i for i, g in enumerate(groups) if len(g) > 1]
    assert f"epochs={net.epochs}, batch_size={net.batch_size}" in code and f"Dense({net.hidden}, " in code
    assert f'fcluster(tree, {settings["k"]}, criterion="maxclust")' in code and 'method="ward"' in code
    assert "this run's groups: " + " | ".join(" ".join(map(str, g)) for g in groups) in code
    with pytest.raises(ValueError, match="needs the run's groups"):
        kc.tricks_code("divide", settings)


class FixedNet:
    """A stand-in net: fit does nothing, predict gives fixed random probabilities."""

    def __init__(self, outputs: int, seed: int) -> None:
        self.outputs, self.seed = outputs, seed

    def fit(self, *args, **kwargs):
        return SimpleNamespace(history={})

    def predict(self, x, **kwargs):
        return np.random.default_rng(self.seed).dirichlet(np.ones(self.outputs), len(x))


def test_divide_data_and_train_parts_compute_what_the_run_computes():
    """On a stand-in MNIST: the snippet's groups are hierarchy.cut_groups of the run's digits, and its
    combined probabilities are hierarchy.combine of the same nets' outputs."""
    mnist = fake_mnist(seed=3)
    for k in (2, 3, 5):
        settings = dict(BASE, part="divide", n=1000, k=k, epochs=1, hidden=8)
        d = tr.digit_data(mnist, 1000, 1000, settings["seed"])
        groups = hi.cut_groups(hi.class_linkage(hi.class_means(d.x_train, d.y_train)), k)
        code = kc.tricks_code("divide", settings, groups)
        ns = {"np": np, "keras": keras_with_mnist(mnist)}
        exec(kc.section(code, "data"), ns)
        assert ns["groups"] == groups and ns["group_of"].tolist() == hi.group_index(groups).tolist()
        np.testing.assert_array_equal(ns["y_train"], d.y_train)
        ns["flat"], ns["coarse"] = FixedNet(10, 1), FixedNet(len(groups), 2)
        ns["group_nets"] = {g: FixedNet(len(digits), 10 + g) for g, digits in enumerate(groups) if len(digits) > 1}
        exec(kc.section(code, "train"), ns)
        x_val = d.x_val
        expected = hi.combine(ns["coarse"].predict(x_val),
                              {g: net.predict(x_val) for g, net in ns["group_nets"].items()}, groups)
        np.testing.assert_allclose(ns["probs"], expected)
        np.testing.assert_allclose(ns["probs"].sum(axis=1), 1.0)


class StubModel:
    """Stands in for the trained network when a train part runs: fit does nothing, predict is uniform."""

    def fit(self, *args, **kwargs):
        return SimpleNamespace(history={"val_loss": [1.0]})

    def predict(self, x, **kwargs):
        return np.full((len(x), 10), 0.1)


def test_tricks_data_and_train_parts_select_what_the_run_selects():
    """On a stand-in MNIST: the digits, the thinned rare class, the class weights and the threshold
    factor of the rare-class snippet are the run's (tricks.digit_data, make_imbalanced, ...)."""
    mnist = fake_mnist(seed=5)
    settings = TRICKS_SETTINGS[4][1]
    code = kc.tricks_code("prior", settings)
    ns = {"np": np, "keras": keras_with_mnist(mnist)}
    exec(kc.section(code, "data"), ns)
    data = tr.digit_data(mnist, settings["n"], 1000, settings["seed"])
    x, y = tr.make_imbalanced(data.x_train, data.y_train, settings["rare"], settings["keep"], settings["seed"])
    np.testing.assert_array_equal(ns["y_train"], y)
    np.testing.assert_allclose(ns["x_train"], x, rtol=1e-6)
    np.testing.assert_allclose(ns["x_val"], data.x_val, rtol=1e-6)
    ns["model"] = StubModel()
    exec(kc.section(code, "train"), ns)
    assert ns["weights"] == pytest.approx(tr.class_weights(y))
    assert ns["factor"] == pytest.approx(tr.prior_factor(y, settings["rare"]))


# ----------------------------------------------------------------------------- house prices


def houses(n: int = 160, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    area = rng.uniform(500, 3000, n)
    return pd.DataFrame({"Id": np.arange(1, n + 1), "LotArea": rng.uniform(2000, 20000, n), "GrLivArea": area,
                         "Street": rng.choice(["Pave", "Grvl"], n), "YearBuilt": rng.integers(1900, 2010, n),
                         "SalePrice": 50_000 + 80 * area + rng.normal(0, 10_000, n)})


@pytest.mark.parametrize("noid,std,log,stop", [(False, False, False, False), (True, True, True, True),
                                               (False, True, False, True)])
def test_housing_snippet_is_the_runs_pipeline_and_network(noid, std, log, stop):
    df = houses()
    settings = experiments.housing_settings(epochs=7, batch=16, seed=4, noid=noid, std=std, log=log, stop=stop,
                                            patience=25)
    train, dev, prep = experiments.housing_prepare(df, settings)
    code = kc.housing_code(settings, prep.n_features, len(train))
    model = run_model_part(code)["house_model"]
    assert model.count_params() == reg.build_house_regressor(prep.n_features).count_params() \
        == reg.house_param_count(prep.n_features)
    assert f"keras.Input(shape=({prep.n_features},))" in code and "epochs=7, batch_size=16" in code
    assert code.count('layers.Dense(64, activation="relu")') == 4 and "Dense(1, activation=None)" in code
    assert f"df.iloc[:{len(train)}], df.iloc[{len(train)}:]" in code and "np.split(df, [121])" in code
    assert ("restore_best_weights=True" in code) == stop and ("patience=25" in code) == stop
    assert "validation_data=(dev_features, dev_observations)" in code and ("np.log" in code) == log
    # the data part, on the same table, gives the run's rows, features and target
    ns = {"np": np, "pd": SimpleNamespace(read_csv=lambda path: df.copy())}
    from sklearn.utils import shuffle
    ns["shuffle"] = shuffle
    exec(kc.section(code, "data"), ns)
    assert list(ns["training_features"].columns) == list(prep.feature_names)
    np.testing.assert_allclose(ns["training_features"].to_numpy(), prep.x_train, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ns["dev_features"].to_numpy(), prep.x_dev, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ns["training_observations"].to_numpy(), prep.y_train, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- forecasting


def hourly(n: int = 600) -> pd.Series:
    index = pd.date_range("2024-01-01", periods=n, freq="h")
    values = 100 + 50 * np.sin(2 * np.pi * np.arange(n) / 24) + np.random.default_rng(0).normal(0, 5, n)
    return pd.Series(values, index=index)


@pytest.mark.parametrize("layout,extras,h", [("course", [], 6), ("sequence", [], 6),
                                             ("course", ["hour of day"], 8),
                                             ("sequence", ["hour of day", "day of week"], 4)])
def test_sequences_snippet_builds_the_runs_forecasters(layout, extras, h):
    settings = experiments.sequences_settings(gap=6, policy="drop", agg="mean", hours=0, h=h, layout=layout,
                                              extras=extras, models=list(fc.MODEL_KINDS), epochs=7, seed=0)
    prep = experiments.sequences_prepare(hourly(), settings)
    code = kc.sequences_code(settings, prep.input_shape)
    ns = run_model_part(code)
    for kind in fc.MODEL_KINDS:
        expected = fc.build_forecaster(kind, prep.input_shape, prep.f).count_params()
        assert ns[f"model_{kind.lower()}"].count_params() == expected == fc.expected_params(kind, prep.input_shape)
    assert f"h, f = {h}, 24" in code and "epochs=7, batch_size=32" in code and "layers.LSTM(16)" in code
    assert ("reshape(-1, h, 1)" in code) == (layout == "sequence")


def test_sequences_data_part_makes_the_runs_windows():
    settings = experiments.sequences_settings(gap=6, policy="drop", agg="mean", hours=500, h=6, layout="sequence",
                                              extras=[], models=["LSTM"], epochs=1, seed=0)
    series = hourly()
    prep = experiments.sequences_prepare(series, settings)
    code = kc.sequences_code(settings, prep.input_shape)
    assert "raw_data[-500:]" in code and "model_dense" not in code
    ns = {"np": np, "raw_data": series.to_numpy()}
    exec(kc.section(code, "data"), ns)
    np.testing.assert_allclose(ns["trainX"], prep.X_train, atol=1e-6)
    np.testing.assert_allclose(ns["valY"], prep.Y_val, atol=1e-6)


# ----------------------------------------------------------------------------- cats vs dogs


@pytest.mark.parametrize("deeper,aug,dropout,size", [(False, False, 0.0, 150), (True, True, 0.5, 96)])
def test_cats_dogs_snippet_builds_the_scratch_networks(deeper, aug, dropout, size):
    spec = cd.RunSpec(approaches=("From scratch",), image_size=size, deeper=deeper, scratch_augmentation=aug,
                      dropout=dropout, epochs=4)
    code = kc.cats_dogs_code(spec)
    model = run_model_part(code)["model"]
    assert model.count_params() == cd.build_catsdogs_scratch((size, size, 3), deeper, aug, dropout).count_params()
    assert f"image_size=({size}, {size})" in code and "epochs=4" in code
    assert "conv_base" not in code


def test_cats_dogs_snippet_builds_the_transfer_networks_and_fine_tunes_like_the_run():
    """VGG16 (fast path, then fine-tuning) and MobileNetV2, with random weights (tests never download).
    The train part runs too, on a tiny dataset with every fit stubbed: the head's weights move into
    the combined model and fine-tuning unfreezes what the run unfreezes."""
    import tensorflow as tf

    size = 64
    spec = cd.RunSpec(approaches=("VGG16 fine-tuned", "MobileNetV2 frozen"), image_size=size, epochs=3,
                      finetune_epochs=2)
    code = kc.cats_dogs_code(spec, weights=None)
    assert 'weights="imagenet"' in kc.cats_dogs_code(spec)
    ns = run_model_part(code)
    vgg = cd.build_vgg16_transfer(None, (size, size, 3))
    assert ns["model_with_vgg16_bottom"].count_params() == vgg.count_params()
    assert models.param_totals(ns["model_with_vgg16_bottom"]) == models.param_totals(vgg)
    assert ns["head"].count_params() == cd.build_head(cd.feature_shape("vgg16", size)).count_params()
    mobile = cd.build_transfer("mobilenet_v2", None, (size, size, 3))
    assert models.param_totals(ns["model_with_mobilenet_v2"]) == models.param_totals(mobile)

    images = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype(np.float32)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.array([[0.0], [1.0], [0.0], [1.0]]))).batch(2)
    for name in ("head", "model_with_vgg16_bottom", "model_with_mobilenet_v2"):
        ns[name].fit = lambda *args, **kwargs: None
    ns.update(train_dataset=dataset, validation_dataset=dataset)
    exec(kc.section(code, "train"), ns)
    assert ns["train_features"].shape == (4, *cd.feature_shape("vgg16", size))
    np.testing.assert_array_equal(ns["model_with_vgg16_bottom"].layers[-1].get_weights()[0],
                                  ns["head"].layers[-1].get_weights()[0])
    tuned = cd.unfreeze_top(vgg, 4, spec.finetune_learning_rate)
    assert models.param_totals(ns["model_with_vgg16_bottom"]) == models.param_totals(tuned)
    assert optimizer_of(ns["model_with_vgg16_bottom"]) == ("RMSprop", pytest.approx(1e-5))


def test_cats_dogs_snippet_with_augmented_frozen_base_trains_the_full_model():
    spec = cd.RunSpec(approaches=("VGG16 frozen",), image_size=64, frozen_augmentation=True)
    code = kc.cats_dogs_code(spec, weights=None)
    ns = run_model_part(code)
    assert "head" not in ns and "get_features_and_labels" not in code  # no fast path with augmentation
    built = cd.build_vgg16_transfer(None, (64, 64, 3), augmentation=True)
    assert models.param_totals(ns["model_with_vgg16_bottom"]) == models.param_totals(built)
    assert "x = augmentation(inputs)" in code


# ----------------------------------------------------------------------------- convolution playground


@pytest.mark.parametrize("filters,k,stride,padding,act,shape,pool,pool_stride", [
    (1, 3, 1, "valid", "none", (28, 28, 1), 0, 2),
    (4, 5, 2, "same", "relu", (50, 40, 3), 2, 2),
    (3, 7, 3, "valid", "tanh", (64, 64, 3), 3, 1),
])
def test_convolution_snippet_is_the_playgrounds_layer(filters, k, stride, padding, act, shape, pool, pool_stride):
    code = kc.convolution_code(filters, k, stride, padding, act, shape, pool=pool, pool_stride=pool_stride)
    ns = run_model_part(code)
    h, w, c = shape
    oh, ow = conv.output_size(h, k, stride, padding), conv.output_size(w, k, stride, padding)
    assert ns["layer"].count_params() == conv.conv_layer_params(k, c, filters)
    assert tuple(ns["feature_maps"].shape) == (None, oh, ow, filters)
    assert f"shape {(None, oh, ow, filters)}" in code
    assert f"kernel_size={k}" in code and f"strides={stride}" in code and f"padding='{padding}'" in code
    assert ns["layer"].get_config()["activation"] == ("linear" if act == "none" else act)
    if pool:
        pooled = conv.max_pool2d(np.zeros((oh, ow, filters)), pool, pool_stride)
        assert tuple(ns["pooled"].shape) == (None, *pooled.shape)
    else:
        assert "pooled" not in ns


# ----------------------------------------------------------------------------- inside the network


def test_inside_snippets_run_on_a_cnn():
    """The exemplar and Grad-CAM code runs on the course's CNN with the layers the page chose, and
    the attack code runs with the page's budget (tiny here)."""
    import keras

    keras.utils.set_random_seed(0)
    model = models.build_mnist_cnn()
    layers = interpret.conv_layers(model)
    image = np.zeros((28, 28, 1), np.float32)
    image[6:22, 12:16] = 1.0
    ns = {"model": model, "image": image, "c": 3}
    exec(compile(kc.inside_code(layers[1], layers[-1]), "<inside>", "exec"), ns)
    exemplar = ns["filter_exemplar"](0, steps=2, stages=1)
    assert exemplar.shape == (28, 28, 1) and 0.0 <= exemplar.min() and exemplar.max() <= 1.0
    assert tuple(ns["cam"].shape) == tuple(model.get_layer(layers[-1]).output.shape[1:3])

    code = kc.one_pixel_attack_code(pixels=2, popsize=12, maxiter=2, seed=1)
    assert "pixels = 2" in code and "maxiter=2" in code and "rng=1" in code
    ns = {"model": model, "image": image, "label": int(np.argmax(model.predict(image[None], verbose=0)))}
    exec(compile(code, "<attack>", "exec"), ns)
    assert ns["result"].x.shape == (6,) and ns["result"].nit <= 2
