"""Filter exemplars, feature maps, top-activating images, saliency and Grad-CAM (dnn2core.interpret).

Models are tiny or hand-built so the expected answer is known: a 1x1 conv whose filters are
"brightness" and "darkness", a detector whose Grad-CAM must sit on the blob it detects, and
the course's CNN trained briefly on a few hundred digits."""

from __future__ import annotations

import numpy as np
import pytest

from dnn2core import interpret, pretrained


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """The course's CNN, trained for 1 epoch on 500 digits of the embedded sample (a few seconds);
    pinned to the sample so the result does not depend on DNN2_DATA_DIR."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DNN2_DATA_DIR", str(tmp_path_factory.mktemp("no-data")))
        mp.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("no-keras")))
        return interpret.default_mnist_cnn(seed=0, train_size=500, epochs=1)


def _brightness_model():
    """1x1 conv, no bias, ReLU: filter 0 = the pixel value, filter 1 = minus the pixel value."""
    import keras

    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, activation="relu", name="light")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.array([1.0, -1.0], dtype=np.float32).reshape(1, 1, 1, 2)])
    return model


def _blob_detector():
    """Conv 3x3 (mean filter, ReLU) -> global average -> softmax: class 1 when a bright blob exists."""
    import keras

    inputs = keras.Input((16, 16, 1))
    conv = keras.layers.Conv2D(1, 3, padding="same", activation="relu", name="detector")
    dense = keras.layers.Dense(2, activation="softmax", name="head")
    model = keras.Model(inputs, dense(keras.layers.GlobalAveragePooling2D()(conv(inputs))))
    conv.set_weights([np.full((3, 3, 1, 1), 1 / 9, np.float32), np.zeros(1, np.float32)])
    dense.set_weights([np.array([[0.0, 40.0]], np.float32), np.array([0.0, -1.0], np.float32)])
    return model


def _nested_sigmoid_model():
    """A cats/dogs-like model: 0-255 input, Rescaling, a nested conv base, one sigmoid unit."""
    import keras

    keras.utils.set_random_seed(1)
    base = keras.Sequential([keras.Input((24, 24, 3)), keras.layers.Conv2D(4, 3, activation="relu", name="conv_a"),
                             keras.layers.Conv2D(6, 3, activation="relu", name="conv_b")], name="base")
    return keras.Sequential([keras.Input((24, 24, 3)), keras.layers.Rescaling(1 / 255), base,
                             keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(1, activation="sigmoid")])


# ----------------------------------------------------------------------------- the default model


def test_default_cnn_is_the_course_cnn_and_learns(cnn):
    assert cnn.model.count_params() == 104_202
    assert interpret.conv_layers(cnn.model)[-1] == interpret.last_conv_layer(cnn.model)
    assert len(interpret.conv_layers(cnn.model)) == 3
    assert cnn.train_size == 500 and cnn.epochs == 1
    assert cnn.test_accuracy > 0.5  # chance is 0.1; 1 epoch on 500 digits gives ~0.6-0.8
    assert "500 digits" in cnn.description


def test_default_cnn_reads_its_size_from_the_environment(monkeypatch):
    monkeypatch.setenv("DNN2_DEFAULT_CNN_TRAIN", "5")
    with pytest.raises(ValueError, match="at least 10 training digits"):
        interpret.default_mnist_cnn()


# ----------------------------------------------------------------------------- exemplars


@pytest.mark.parametrize("filter_index", [1, 2, 3])
def test_exemplar_excites_its_filter_far_more_than_the_starting_noise(cnn, filter_index):
    """Pixels are kept in [0, 1], so activations are bounded: 2-4x the noise's after 30 steps."""
    layer = interpret.last_conv_layer(cnn.model)
    calls = []
    ex = interpret.filter_exemplar(cnn.model, layer, filter_index, steps=30, jitter=1, blur=0.5,
                                   progress=lambda d, t: calls.append((d, t)))
    assert ex.shape == (28, 28, 1) and ex.dtype == np.float32
    assert 0.0 <= ex.min() and ex.max() <= 1.0
    assert calls[-1] == (30, 30) and len(calls) == 30
    noise = interpret.initial_noise(28, 28, 1, seed=0)
    start, end = interpret.filter_activations(cnn.model, layer, np.stack([noise, ex]))[:, filter_index]
    assert end > 2 * start and end > start + 0.25, (start, end)


def test_exemplar_is_reproducible_with_its_seed_and_differs_without(cnn):
    layer = interpret.conv_layers(cnn.model)[1]
    a = interpret.filter_exemplar(cnn.model, layer, 3, steps=6, jitter=1, seed=7)
    b = interpret.filter_exemplar(cnn.model, layer, 3, steps=6, jitter=1, seed=7)
    c = interpret.filter_exemplar(cnn.model, layer, 3, steps=6, jitter=1, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_regularisers_smooth_the_exemplar(cnn):
    """Total variation and blur exist to remove pixel-level noise: the result must be smoother."""
    layer = interpret.conv_layers(cnn.model)[0]
    plain = interpret.filter_exemplar(cnn.model, layer, 5, steps=20, upscaling_steps=0)
    smooth = interpret.filter_exemplar(cnn.model, layer, 5, steps=20, upscaling_steps=0, tv_weight=5.0,
                                       blur=1.0, scale=0.05)

    def roughness(img):
        return float(np.abs(np.diff(img[..., 0], axis=0)).mean() + np.abs(np.diff(img[..., 0], axis=1)).mean())
    assert roughness(smooth) < roughness(plain)


def test_exemplar_rejects_what_cannot_work(cnn):
    layer = interpret.conv_layers(cnn.model)[0]
    with pytest.raises(ValueError, match="32 filters"):
        interpret.filter_exemplar(cnn.model, layer, 32)
    with pytest.raises(ValueError, match="only takes 28x28"):
        interpret.filter_exemplar(cnn.model, layer, 0, size=64)
    with pytest.raises(ValueError, match="no layer named"):
        interpret.filter_exemplar(cnn.model, "nope", 0)
    with pytest.raises(ValueError, match="at least 1 gradient step"):
        interpret.filter_exemplar(cnn.model, layer, 0, steps=0)


def test_vgg16_block_exemplar_at_any_size():
    """VGG16's base takes any size: Graetz feeds the growing image itself (random weights here)."""
    model = pretrained.build_base("vgg16", None)
    assert interpret.conv_layers(model)[-1] == "block5_conv3" and len(interpret.conv_layers(model)) == 13
    ex = interpret.filter_exemplar(model, "block1_conv2", 4, steps=6, size=32, upscaling_steps=1,
                                   preprocess=interpret.vgg16_preprocess)
    assert ex.shape == (32, 32, 3)
    noise = interpret.initial_noise(32, 32, 3, seed=0)
    start, end = interpret.filter_activations(model, "block1_conv2", np.stack([noise, ex]),
                                              preprocess=interpret.vgg16_preprocess)[:, 4]
    assert end > 2 * start


def test_vgg16_preprocess_matches_keras():
    import keras

    x = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float32)
    ours = np.asarray(interpret.vgg16_preprocess(x))
    np.testing.assert_allclose(ours, keras.applications.vgg16.preprocess_input(x * 255.0), atol=1e-3)


# ----------------------------------------------------------------------------- activations


def test_top_activating_returns_the_brightest_and_darkest_images():
    model = _brightness_model()
    levels = np.array([0.2, 0.9, -0.5, 0.5, -0.8], dtype=np.float32)
    images = np.ones((5, 8, 8, 1), np.float32) * levels[:, None, None, None]
    acts = interpret.filter_activations(model, "light", images)
    np.testing.assert_allclose(acts[:, 0], np.maximum(levels, 0), atol=1e-6)
    idx, vals = interpret.top_activating(model, "light", 0, images, k=2)
    assert idx.tolist() == [1, 3] and vals == pytest.approx([0.9, 0.5])
    idx, vals = interpret.top_activating(model, "light", 1, images, k=1, activations=acts)
    assert idx.tolist() == [4] and vals == pytest.approx([0.8])
    with pytest.raises(ValueError, match="2 filters"):
        interpret.top_activating(model, "light", 2, images, activations=acts)


def test_feature_maps_and_ranking():
    model = _brightness_model()
    image = np.zeros((8, 8, 1), np.float32)
    image[:4] = -1.0  # top half dark, bottom half black: only the "darkness" filter fires
    maps = interpret.feature_maps(model, "light", image)
    assert maps.shape == (8, 8, 2)
    ranking = interpret.rank_filters(maps)
    assert ranking["filter"].tolist() == [1, 0]
    assert ranking["mean activation"].tolist() == pytest.approx([0.5, 0.0])
    assert ranking["active area"].tolist() == pytest.approx([0.5, 0.0])


# ----------------------------------------------------------------------------- saliency and Grad-CAM


def test_grad_cam_sits_on_the_blob_the_model_detects():
    model = _blob_detector()
    image = np.zeros((16, 16, 1), np.float32)
    image[2:6, 3:7] = 1.0
    probs = interpret.predict_probs(model, image)[0]
    assert probs.argmax() == 1  # the blob is detected
    cam = interpret.grad_cam(model, image, class_index=1)
    assert cam.shape == (16, 16) and cam.min() >= 0.0 and cam.max() == pytest.approx(1.0)
    near = np.zeros((16, 16), bool)
    near[1:7, 2:8] = True  # the blob grown by the 3x3 window
    assert cam[near].sum() / cam.sum() > 0.99
    assert cam[2:6, 3:7].mean() > 0.5
    sal = interpret.saliency_map(model, image, class_index=1)
    assert sal.shape == (16, 16) and sal.min() >= 0.0 and sal.max() == pytest.approx(1.0)
    near2 = np.zeros((16, 16), bool)
    near2[0:8, 1:9] = True
    assert sal[near2].sum() / sal.sum() > 0.99


def test_grad_cam_on_the_cnn_is_upsampled_to_the_input(cnn):
    from dnn2core import data

    digit = data.load_mnist().data.x_test[0].astype(np.float32)[..., None] / 255.0
    for layer in interpret.conv_layers(cnn.model):
        cam = interpret.grad_cam(cnn.model, digit, layer_name=layer)
        assert cam.shape == (28, 28) and cam.min() >= 0.0 and cam.max() <= 1.0
    with pytest.raises(ValueError, match="10 classes"):
        interpret.grad_cam(cnn.model, digit, class_index=10)


def test_nested_base_sigmoid_model_like_cats_and_dogs():
    model = _nested_sigmoid_model()
    assert interpret.conv_layers(model) == ["base/conv_a", "base/conv_b"]
    images = np.random.default_rng(0).uniform(0, 255, (3, 24, 24, 3)).astype(np.float32)
    assert interpret.guess_value_range(images) == (0.0, 255.0)
    probs = interpret.predict_probs(model, images)
    assert probs.shape == (3, 2) and np.allclose(probs.sum(axis=1), 1.0)
    assert interpret.feature_maps(model, "base/conv_b", images[0]).shape == (20, 20, 6)
    for c in (0, 1):
        cam = interpret.grad_cam(model, images[0], class_index=c, layer_name="base/conv_b")
        assert cam.shape == (24, 24) and cam.min() >= 0.0
    ex = interpret.filter_exemplar(model, "base/conv_a", 1, steps=10, value_range=(0.0, 255.0))
    assert ex.shape == (24, 24, 3) and ex.max() <= 255.0 and ex.max() > 1.5
    start = interpret.initial_noise(24, 24, 3, value_range=(0.0, 255.0))
    a0, a1 = interpret.filter_activations(model, "base/conv_a", np.stack([start, ex]))[:, 1]
    assert a1 > a0


# ----------------------------------------------------------------------------- helpers


def test_vgg16_weights_are_found_or_explained(tmp_path, monkeypatch):
    """One finder for both pages: the administrator's variable, then Keras' cache; never a download."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("DNN2_VGG16_WEIGHTS", raising=False)
    notop = pretrained.BASES["vgg16"].weights_file
    path, source, reason = pretrained.find_weights("vgg16")
    assert path is None and source == "random" and notop in reason and "DNN2_VGG16_WEIGHTS" in reason
    monkeypatch.setenv("DNN2_VGG16_WEIGHTS", str(tmp_path / "missing.h5"))
    path, _, reason = pretrained.find_weights("vgg16")
    assert path is None and "does not exist" in reason and str(tmp_path) not in reason
    cached = tmp_path / "keras" / "models" / notop
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    monkeypatch.delenv("DNN2_VGG16_WEIGHTS")
    assert pretrained.find_weights("vgg16")[:2] == (cached, "Keras cache")
    own = tmp_path / "mine.h5"
    own.write_bytes(b"x")
    monkeypatch.setenv("DNN2_VGG16_WEIGHTS", str(own))
    assert pretrained.find_weights("vgg16")[:2] == (own, "DNN2_VGG16_WEIGHTS")


def test_fit_image_converts_size_channels_and_scale():
    gray = np.tile(np.arange(64, dtype=np.uint8)[None] * 4, (32, 1))
    rgb = interpret.fit_image(gray, (16, 16, 3), (0.0, 255.0))
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.float32 and rgb.max() <= 255.0 and rgb.max() > 200
    g = interpret.fit_image(np.zeros((10, 20, 3), np.uint8), (None, None, 1), size=48)
    assert g.shape == (48, 48, 1) and g.max() == 0.0


def test_images_from_fit_reads_arrays_and_datasets():
    import tensorflow as tf

    x = np.random.default_rng(0).random((30, 4, 4, 3)).astype(np.float32)
    y = np.arange(30) % 2
    got = interpret.images_from_fit({"validation_data": (x, y)}, limit=10)
    assert got[0].shape == (10, 4, 4, 3) and got[1].tolist() == y[:10].tolist()
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.float32))).batch(8)
    got = interpret.images_from_fit({"validation_data": ds}, limit=20)
    assert got[0].shape == (20, 4, 4, 3) and got[1].tolist() == y[:20].tolist()
    assert interpret.images_from_fit({}) is None


def test_figures_have_one_panel_per_image():
    img = np.zeros((8, 8), np.uint8)
    fig = interpret.image_grid_figure([[img, img, img], [img, img, img]], [["a", "b", "c"], ["d", "e", "f"]])
    assert len(fig.data) == 1 and [a.text for a in fig.layout.annotations] == list("abcdef")  # one mosaic
    fig = interpret.maps_and_exemplars_figure([np.zeros((4, 4))] * 3, [img, None, img], ["0", "1", "2"])
    assert len(fig.data) == 5
    fig = interpret.heat_overlay_figure(img, [np.zeros((8, 8)), np.ones((8, 8))], ["s", "g"])
    assert len(fig.data) == 5


def test_nested_base_behind_non_layer_preprocessing_ops():
    """The cats/dogs page's functional model: preprocess_input (plain ops, not layers) -> VGG16 base
    -> sigmoid. Feature maps of a base layer must see the preprocessed image, as the model does."""
    import keras

    inputs = keras.Input((32, 32, 3))
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    x = base(keras.applications.vgg16.preprocess_input(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Flatten()(x)))
    image = np.random.default_rng(0).uniform(0, 255, (32, 32, 3)).astype(np.float32)
    ours = interpret.feature_maps(model, "vgg16/block1_conv1", image)
    direct = keras.Model(base.inputs[0], base.get_layer("block1_conv1").output)(
        keras.applications.vgg16.preprocess_input(image[None].copy()))
    np.testing.assert_allclose(ours, np.asarray(direct)[0], rtol=1e-4, atol=1e-3)
    cam = interpret.grad_cam(model, image, class_index=1, layer_name="vgg16/block5_conv3")
    assert cam.shape == (32, 32) and cam.min() >= 0.0


# ----------------------------------------------------------------------------- figures: square tiles, readable titles


def _tiles(fig) -> list[tuple[dict, dict]]:
    """(x axis, y axis) layout of every tile that holds a trace."""
    layout = fig.to_plotly_json()["layout"]
    out = []
    for trace in fig.data:
        x, y = trace.xaxis or "x", trace.yaxis or "y"
        out.append((layout["xaxis" + x[1:]], layout["yaxis" + y[1:]]))
    return out


def _mosaic(fig) -> np.ndarray:
    """The picture of an image_grid_figure, decoded from its PNG source."""
    import base64
    import io

    from PIL import Image

    source = fig.data[0].source
    assert source.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))))


def test_grid_tiles_are_square_keep_the_aspect_ratio_and_have_readable_titles():
    """Issue 14: tiles were stretched sideways and their titles tiny. The grid is one picture whose
    y axis is tied to its x axis at ratio 1 (a pixel stays square however wide the page is); every
    tile is a square holding its image whole, aspect ratio kept; titles are 13 px or more, centred
    right above their own tile."""
    a = np.arange(28 * 28, dtype=np.uint32).reshape(28, 28).astype(np.uint8)
    b = 255 - a
    wide = np.zeros((14, 28), np.uint8)  # a 2:1 picture keeps its shape: white above and below
    fig = interpret.image_grid_figure([[a, b, wide], [b, a, a]],
                                      [["filter 0<br>reaches 1.00", "0.90<br>label 7", "x"], ["d", "e", "f"]])
    assert len(fig.data) == 1 and fig.data[0].type == "image"
    ya = fig.layout.yaxis
    assert ya.scaleanchor == "x" and ya.scaleratio == 1 and ya.constrain == fig.layout.xaxis.constrain == "domain"
    mosaic = _mosaic(fig)
    annotations = fig.layout.annotations
    assert [t.text for t in annotations] == ["filter 0<br>reaches 1.00", "0.90<br>label 7", "x", "d", "e", "f"]
    assert min(t.font.size for t in annotations) >= 13
    tops = sorted({round(t.y + 0.5) for t in annotations})
    lefts = sorted({round(t.x - 13.5) for t in annotations})
    assert len(tops) == 2 and len(lefts) == 3
    tile = lambda r, c: mosaic[tops[r]:tops[r] + 28, lefts[c]:lefts[c] + 28]  # noqa: E731
    np.testing.assert_array_equal(tile(0, 0), a)  # 28-pixel images are drawn at their own size
    np.testing.assert_array_equal(tile(0, 1), b)
    np.testing.assert_array_equal(tile(1, 0), b)
    np.testing.assert_array_equal(tile(0, 2)[7:21], wide)
    assert (tile(0, 2)[:7] == 255).all() and (tile(0, 2)[21:] == 255).all()
    assert (mosaic[: tops[0]] == 255).all()  # the title band is white
    # at its natural height a tile is as high as it is wide on the page (cell=120)
    plot_h = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert plot_h * 28 / mosaic.shape[0] == pytest.approx(120, rel=0.03)


def test_a_large_exemplar_grid_is_built_in_one_go():
    """16 filters x (exemplar + 8 images): make_subplots took 2.4 s for this grid (its per-tile axis
    updates grow with the square of the tiles) and the browser drew 144 heat maps on every rerun; one
    picture with its titles takes a fraction of that, and big images are shrunk to the tile size."""
    import time

    img = np.zeros((28, 28), np.uint8)
    t = time.perf_counter()
    fig = interpret.image_grid_figure([[img] * 9] * 16, [["t"] * 9] * 16)
    seconds = time.perf_counter() - t
    assert len(fig.data) == 1 and len(fig.layout.annotations) == 144
    assert seconds < 1.5, seconds  # generous: a loaded 2-core machine
    # 9 columns of 120 px would not fit the main column at 1280x720: the tiles shrink so that at the
    # figure's height the picture is at most 800 px wide (no stretch, no empty band under it)
    mosaic = _mosaic(fig)
    plot_h = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    assert 700 < plot_h * mosaic.shape[1] / mosaic.shape[0] <= 800
    photo = np.random.default_rng(0).integers(0, 255, (224, 224, 3), dtype=np.uint8)
    mosaic = _mosaic(interpret.image_grid_figure([[photo, photo]], [["a", "b"]], cell=100))
    assert mosaic.shape[1] == 2 * 100 + 14 and mosaic.shape[2] == 3  # 224 px shrunk to 100


def test_maps_and_heat_figures_use_square_tiles():
    maps = [np.arange(16.0).reshape(4, 4)] * 3
    fig = interpret.maps_and_exemplars_figure(maps, [np.zeros((8, 8), np.uint8), None, None], ["f0", "f1", "f2"])
    assert [a.text for a in fig.layout.annotations] == ["f0<br>feature map", "f0<br>exemplar",
                                                      "f1<br>feature map", "f2<br>feature map"]
    assert all(ya["scaleanchor"] for _, ya in _tiles(fig))
    heat = interpret.heat_overlay_figure(np.zeros((8, 8), np.uint8), [np.zeros((8, 8))], ["Grad-CAM"])
    assert [a.text for a in heat.layout.annotations] == ["input", "Grad-CAM"]
    assert len({(t.xaxis, t.yaxis) for t in heat.data}) == 2  # the heat map lies over the faded image
    assert all(a.font.size >= 13 for a in heat.layout.annotations)


def test_array_digest_tells_values_shapes_and_types_apart():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert interpret.array_digest(a) == interpret.array_digest(a.copy())
    assert interpret.array_digest(a) == interpret.array_digest(np.asfortranarray(a))  # same values
    b = a.copy()
    b[1, 2] += 1e-3
    assert len({interpret.array_digest(x) for x in (a, b, a.reshape(4, 3), a.astype(np.float64))}) == 4


# ----------------------------------------------------------------------------- a learner's own model


def _loaded(data: bytes):
    from dnn2core import uploads

    return uploads.load_keras_model(data).model


def test_an_uploaded_digit_cnn_is_checked_and_gets_mnist_digits():
    from model_files import tiny_cnn

    model = _loaded(tiny_cnn())
    check = interpret.check_image_classifier(model)
    assert check.input_shape == (28, 28, 1) and check.n_classes == 10 and check.output == "probabilities"
    assert check.value_range == (0.0, 1.0) and check.conv_layers == ("conv_a", "conv_b")
    x = np.random.default_rng(0).random((5, 28, 28, 1)).astype(np.float32)
    y = np.arange(5)
    choice = interpret.uploaded_model_choice(model, "upload:abc", "Your model: tiny.keras", check, digits=(x, y))
    assert choice.kind == "upload" and choice.digit_input and choice.class_names == tuple("0123456789")
    np.testing.assert_array_equal(choice.images, x)
    assert choice.labels.tolist() == [0, 1, 2, 3, 4] and choice.images_note == "5 MNIST test digits"
    picture = np.full((60, 40), 255, np.uint8)
    picture[10:50, 18:22] = 0  # a dark "1" on white paper
    image, note = choice.prepare_upload(picture)
    assert image.shape == (28, 28, 1) and image.max() == pytest.approx(1.0) and "centred" in note
    maps = interpret.feature_maps(model, "conv_b", choice.images[0])
    assert maps.shape == (11, 11, 6)


def test_uploaded_logits_get_a_softmax_and_a_rescaling_model_gets_0_255_photos():
    from model_files import colour_logits

    model = _loaded(colour_logits())
    x = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    logits = np.asarray(model(x))
    check = interpret.check_image_classifier(model)
    assert check.output == "logits" and check.n_classes == 3 and check.value_range == (0.0, 255.0)
    probs = interpret.predict_probs(model, x)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    photos = np.random.default_rng(2).random((3, 224, 224, 3)).astype(np.float32)
    choice = interpret.uploaded_model_choice(model, "upload:def", "Your model", check, photos=photos)
    assert choice.images.shape == (3, 32, 32, 3) and choice.labels is None
    assert 0 <= choice.images.min() and choice.images.max() > 1.5  # in the model's 0-255 scale
    assert choice.class_names == ("class 0", "class 1", "class 2") and not choice.digit_input
    assert "3 built-in sample photos, resized to 32x32" in choice.images_note
    assert interpret.grad_cam(model, choice.images[0], 1, "colour_conv").shape == (32, 32)


def test_models_the_page_cannot_use_are_refused_with_the_reason():
    import keras

    from model_files import dense_only, one_d_input

    with pytest.raises(ValueError, match="no Conv2D layer"):
        interpret.check_image_classifier(_loaded(dense_only()))
    with pytest.raises(ValueError, match=r"shape \(100,\), not images"):
        interpret.check_image_classifier(_loaded(one_d_input()))

    def conv_model(shape, head):
        inputs = keras.Input(shape)
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inputs))
        return keras.Model(inputs, head(x))

    cases = {
        "4 channels": conv_model((28, 28, 4), keras.layers.Dense(10, activation="softmax")),
        "8 to 512 pixels": conv_model((1024, 1024, 3), keras.layers.Dense(10, activation="softmax")),
        "ends in relu": conv_model((28, 28, 1), keras.layers.Dense(10, activation="relu")),
        "no class probabilities": conv_model((28, 28, 1), keras.layers.Dropout(0.1)),
    }
    two_in = [keras.Input((28, 28, 1)), keras.Input((28, 28, 1))]
    merged = keras.layers.Add()([keras.layers.Conv2D(2, 3)(t) for t in two_in])
    cases["2 inputs"] = keras.Model(two_in, keras.layers.Dense(2)(keras.layers.Flatten()(merged)))
    one_in = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(keras.layers.Conv2D(2, 3)(one_in))
    cases["2 outputs"] = keras.Model(one_in, [keras.layers.Dense(2)(flat), keras.layers.Dense(3)(flat)])
    for words, model in cases.items():
        with pytest.raises(ValueError, match=words):
            interpret.check_image_classifier(model)
