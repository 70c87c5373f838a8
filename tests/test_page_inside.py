"""AppTest of "Inside the network": exemplars, the hypothesis test, saliency, the one-pixel attack
(single and batch), the learner's own model, VGG16's unavailable option and bad uploads.

The page's default CNN is trained on first use; here it is made cheap (400 digits, 1 epoch)
through the environment, and Streamlit's resource cache shares it across these tests."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import run_registry, open_page

COURSE_CNN = "The course's MNIST CNN (60,000 digits, 5 epochs)"
DEFAULT_CNN = "Small CNN trained here (MNIST)"
TINY = dict(steps="4", n="2", ups="1", topk="3", pop="20", gens="3")


@pytest.fixture(autouse=True)
def cheap_default_cnn(no_local_data, monkeypatch):
    monkeypatch.setenv("DNN2_DEFAULT_CNN_TRAIN", "400")
    monkeypatch.setenv("DNN2_DEFAULT_CNN_EPOCHS", "1")
    monkeypatch.delenv("DNN2_VGG16_WEIGHTS", raising=False)


def page(session: dict | None = None, **params) -> AppTest:
    return open_page("pages/inside.py", timeout=90, session=session, **{**TINY, **params})

def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def array(value) -> np.ndarray:
    """A Plotly JSON array: a plain list, or {"dtype", "bdata" (base64), "shape"} for numpy data."""
    if isinstance(value, dict):
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return out.reshape([int(n) for n in str(value.get("shape", len(out))).split(",")])
    return np.asarray(value, dtype=float)


def qp(at, name: str) -> str:
    value = at.query_params[name]
    return value[0] if isinstance(value, list) else value


def annotations(spec: dict) -> list[str]:
    return [a["text"] for a in spec["layout"].get("annotations", [])]


def tab(at: AppTest, name: str) -> AppTest:
    """Open one of the page's tabs (a switch reruns the page; only the open tab computes)."""
    at.session_state["inside.tab"] = name
    at.run()
    assert not at.exception, at.exception
    return at


def test_filters_panel_exemplars_hypothesis_and_grad_cam():
    """One learner's visit: exemplars, revisit from the cache, regularisers and seed, the hypothesis
    test, saliency and Grad-CAM — one session keeps the test cheap."""
    at = page(top="3", idx="7", cls="3", cam_layer="1", model="default")
    assert at.title[0].value == "Inside the network"
    assert at.selectbox(key="inside.model").value == "default"
    vgg = at.sidebar.toggle(key="inside.vgg_unavailable")
    assert vgg.disabled and vgg.value is False
    assert any("VGG16 is unavailable" in c.value and "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in c.value
               for c in at.sidebar.caption)
    assert any("trained here for 1 epoch(s) on 400 digits" in c.value for c in at.sidebar.caption)
    assert any("Press the button" in i.value and "seed 0 with these settings always gives the same ones" in i.value
               for i in at.info)  # nothing generated yet
    assert not at.dataframe and not charts(at)  # the closed tabs computed nothing

    # the hypothesis test: filters ranked by mean activation on test digit 7
    tab(at, "Test the hypothesis")
    frame = at.dataframe[0].value
    values = frame["mean activation"].tolist()
    assert len(frame) == 3 and values == sorted(values, reverse=True)

    # saliency and Grad-CAM of class 3, on conv layer 1, at the input's size
    tab(at, "Saliency & Grad-CAM")
    assert any("Explaining class **3**" in m.value for m in at.markdown)
    heat = next(c for c in charts(at) if any("Grad-CAM (" in t for t in annotations(c)))
    cam = array(heat["data"][-1]["z"])
    assert cam.shape == (28, 28) and cam.min() >= 0 and cam.max() <= 1

    # the exemplar grid: 2 filters, each with its exemplar and the 3 digits that excite it most
    tab(at, "Filter exemplars")
    at.button(key="inside.gen").click().run()
    assert not at.exception
    cache = at.session_state["inside.exemplar_cache"]
    assert len(cache) == 2 and all(v.shape == (28, 28, 1) for v in cache.values())
    grid = next(c for c in charts(at) if len(annotations(c)) == 2 * (1 + 3))
    titles = annotations(grid)
    assert titles[0].startswith("filter 0<br>reaches ") and titles[4].startswith("filter 1<br>reaches ")
    assert all("<br>label " in t for t in titles[1:4])  # each digit's activation, then its class
    assert any("Seed 0 · 4 steps" in c.value for c in at.caption)
    # square tiles with readable titles (issue 14): one picture that keeps its aspect ratio
    layout = grid["layout"]
    assert [d["type"] for d in grid["data"]] == ["image"] and layout["yaxis"]["scaleanchor"] == "x"
    assert min(a["font"]["size"] for a in layout["annotations"]) >= 13

    # revisiting settings already generated is instant: no click needed
    at.selectbox(key="inside.layer").set_value(0).run()
    assert any("Press the button" in i.value for i in at.info)
    at.selectbox(key="inside.layer").set_value(1).run()
    assert not any("Press the button" in i.value for i in at.info)
    assert qp(at, "layer") == "1" and qp(at, "steps") == "4"

    # regulariser switches and the seed: in the link, in the caption, in the cache key
    at.number_input(key="inside.seed").set_value(5)
    at.toggle(key="inside.jitter").set_value(False)
    at.toggle(key="inside.blur").set_value(False)
    at.toggle(key="inside.tv").set_value(True)
    at.toggle(key="inside.scale").set_value(True)
    at.button(key="inside.gen").click().run()
    assert not at.exception
    assert any("Seed 5" in c.value and "regularisers: scale, tv_weight" in c.value for c in at.caption)
    assert qp(at, "seed") == "5" and qp(at, "tv") == "1" and qp(at, "jitter") == "0"
    seeds = sorted(k[-1][-1] for k in at.session_state["inside.exemplar_cache"])
    assert seeds == [0, 0, 5, 5]

    # exemplars of the hypothesis test's top filters, next to their feature maps
    tab(at, "Test the hypothesis")
    at.button(key="inside.gen_top").click().run()
    assert not at.exception
    maps = next(c for c in charts(at) if any("feature map" in t for t in annotations(c)))
    assert sum("exemplar" in t for t in annotations(maps)) == 3


def test_the_seed_wording_is_true_same_seed_same_exemplar():
    """Issue 14: "random without a fixed seed" contradicted "the seed is fixed". The page says the
    noise comes from the Seed; generating again with the same seed gives the same exemplar."""
    at = page(model="default")
    words = " ".join(m.value for m in at.markdown)
    assert "random without a fixed seed" not in words and "drawn from the **Seed**" in words
    at.button(key="inside.gen").click().run()
    first = dict(at.session_state["inside.exemplar_cache"])
    at.session_state["inside.exemplar_cache"] = {}
    at.button(key="inside.gen").click().run()
    again = at.session_state["inside.exemplar_cache"]
    assert first.keys() == again.keys() and len(first) == 2
    assert all(np.array_equal(first[k], again[k]) for k in first)


def test_only_the_open_tab_computes_and_reruns_reuse_results(monkeypatch):
    """Issue 14: a rerun after a widget change must not recompute what did not change. Count the
    calls of the heavy functions across reruns."""
    from dnn2core import interpret

    calls: dict[str, int] = {}

    def counting(name):
        real = getattr(interpret, name)

        def wrapper(*a, **kw):
            calls[name] = calls.get(name, 0) + 1
            return real(*a, **kw)
        return wrapper

    for name in ("predict_probs", "feature_maps", "saliency_map", "grad_cam", "exemplar_grid"):
        monkeypatch.setattr(interpret, name, counting(name))
    at = page(model="reference")  # the course's CNN: nothing trains here, so every call is the page's
    assert calls == {"predict_probs": 1}  # the sidebar's prediction; no tab work on the exemplars tab
    at.slider(key="inside.topk").set_value(2).run()
    at.slider(key="inside.steps").set_value(5).run()
    assert calls == {"predict_probs": 1}
    tab(at, "Saliency & Grad-CAM")
    assert calls.get("saliency_map") == 1 and calls.get("grad_cam") == 1
    seen = dict(calls)  # (saliency and Grad-CAM check the class with a prediction of their own)
    tab(at, "Test the hypothesis")
    at.slider(key="inside.top").set_value(2).run()  # a change in this tab: the maps are reused
    assert calls.get("feature_maps") == 1
    tab(at, "Saliency & Grad-CAM")  # back: nothing recomputed
    assert calls == {**seen, "feature_maps": 1}
    at.number_input(key="inside.idx").set_value(3).run()  # another image: computed once more
    assert calls["saliency_map"] == calls["grad_cam"] == 2 and calls["feature_maps"] == 1 and not at.exception
    assert calls["predict_probs"] == seen["predict_probs"] + 3


def test_attack_panel_single_targeted_and_batch():
    at = tab(page(px="2", aseed="4", idx="0"), "One-pixel attack")
    assert any("30,000" in i.value for i in at.info)  # the honest note
    assert any("up to **81 model queries**" in c.value for c in at.caption)
    at.button(key="inside.attack_go").click().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Result"] in ("fooled", "not fooled")
    assert 21 <= int(metrics["Model queries"].replace(",", "")) <= 81
    assert 1 <= int(metrics["Generations"]) <= 3
    shown = at.session_state["inside.attack_result"]
    res = shown["result"]
    assert len(res.pixels) <= 2 and res.popsize == 20
    assert np.count_nonzero(np.any(shown["original"] != res.image, axis=-1)) <= 2
    specs = charts(at)
    attack = next(c for c in specs if any(s.get("type") == "circle" for s in c["layout"].get("shapes", [])))
    assert len([s for s in attack["layout"]["shapes"] if s["type"] == "circle"]) == 2 * len(res.pixels)
    curve = next(c for c in specs if c["layout"].get("title", {}).get("text") == "Best candidate, per generation")
    assert len(array(curve["data"][0]["y"])) == res.generations + 1

    # targeted: the target class is a setting in the link, and the result tracks it
    at.toggle(key="inside.targeted").set_value(True).run()
    at.selectbox(key="inside.target").set_value("8")
    at.button(key="inside.attack_go").click().run()
    assert not at.exception
    res = at.session_state["inside.attack_result"]["result"]
    assert res.target == 8 and res.target_curve is not None and qp(at, "target") == "8"

    # batch mode: success rate over the first 3 test digits
    at.toggle(key="inside.targeted").set_value(False)
    at.slider(key="inside.batch_n").set_value(3)
    at.select_slider(key="inside.pop").set_value(10)
    at.slider(key="inside.gens").set_value(2)
    at.button(key="inside.batch.start").click().run()
    assert not at.exception
    [key] = [k for p, k in at.session_state["_runs.own"] if p == "inside.batch"]
    record = run_registry().wait(key, 120)
    assert record.state == "done" and record.experiment == "inside" and record.settings["n"] == 3
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Success rate"] == "n/a" or metrics["Success rate"].endswith("%")
    summary = run_registry().view(key).snapshot().models["One-pixel attack"].results["summary"]
    assert summary["attacked"] + summary["skipped"] == 3
    assert summary["mean_queries"] <= 1 + 10 * 3


def test_a_batch_attack_waits_in_the_training_queue_and_stops(monkeypatch):
    """A heavy batch takes a gate slot like a training: it queues behind one, and Stop ends it."""
    from dnn2ui.live import shared_gate

    at = tab(page(model="default", pop="400", gens="100", batch_n="20"), "One-pixel attack")
    gate = shared_gate()
    gate.enqueue("someone-else")  # a training holds the only slot (on a 1-slot server)
    assert gate.acquire("someone-else", __import__("threading").Event())
    try:
        at.button(key="inside.batch.start").click().run()
        [key] = [k for p, k in at.session_state["_runs.own"] if p == "inside.batch"]
        view = run_registry().view(key)
        if gate.max_running == 1:
            import time
            time.sleep(0.5)
            assert view.job.snapshot().state == "queued"
    finally:
        gate.release("someone-else")
    import time
    deadline = time.time() + 60
    while time.time() < deadline and run_registry().view(key).job.snapshot().models["One-pixel attack"].epoch < 1:
        time.sleep(0.2)
    run_registry().stop(key)
    record = run_registry().wait(key, 60)
    assert record is not None and record.state == "stopped"
    done = record.progress["models"]["One-pixel attack"]["results"]["summary"]
    assert 1 <= done["attacked"] + done["skipped"] < 20


def _train_tiny_mnist_cnn() -> str:
    """A finished MNIST run in this test's store, trained as the MNIST page trains it."""
    from dnn2core import data, experiments, runs

    mnist = data.load_mnist().data
    settings = experiments.mnist_settings(models=["CNN"], api="sequential", epochs=1, batch=64, opt="rmsprop", lr=1e-3,
                                          n=500, val=0.1, seed=0)
    spec = runs.RunSpec("mnist", settings, data=experiments.mnist_fingerprint(mnist), version=experiments.MNIST_VERSION)
    view, started = run_registry().start(spec, lambda: experiments.mnist_runs(mnist, settings),
                                         budget=experiments.mnist_budget(), seed=0, label="CNN · 1 ep", session="t")
    assert started and run_registry().wait(spec.key, 120).state == "done"
    return spec.key


def test_the_learners_own_mnist_cnn_is_offered():
    key = _train_tiny_mnist_cnn()
    at = page(session={"_runs.own": [("mnist", key)]}, model=f"mnist:{key[:8]}")
    assert at.selectbox(key="inside.model").value == f"mnist:{key[:8]}"
    assert at.selectbox(key="inside.model").options == ["Your MNIST CNN (CNN · 1 ep)", COURSE_CNN,
                                                       "Small CNN trained here (MNIST)"]
    at.button(key="inside.gen").click().run()
    assert not at.exception
    mine = run_registry().view(key).models["CNN"]
    assert all(k[0] == f"mnist:{key[:8]}" and k[1] == id(mine) for k in at.session_state["inside.exemplar_cache"])
    # after a refresh (a new session) the learner's own run is no longer "theirs": not offered
    fresh = page()
    assert fresh.selectbox(key="inside.model").options == [COURSE_CNN, "Small CNN trained here (MNIST)"]
    # with no model in the link, the course's own CNN (a shipped reference run) is shown: nothing to train
    assert fresh.selectbox(key="inside.model").value == "reference"


def _png(w, h, value=0):
    buf = io.BytesIO()
    Image.new("L", (w, h), value).save(buf, "PNG")
    return buf.getvalue()


def _png_claiming(w, h):
    """A small PNG whose header claims w x h pixels: the size check must refuse it before decoding
    (and the test need not build a 400-megapixel image)."""
    import struct
    import zlib

    raw = bytearray(_png(8, 8))
    ihdr = struct.pack(">II", w, h) + bytes(raw[24:29])
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(raw)


def test_uploads_bad_ones_get_a_message_and_a_digit_is_centred():
    at = tab(page(source="Upload", px="3"), "Test the hypothesis")
    for payload, message in ((b"not an image at all", "not an image"), (_png_claiming(20000, 20000), "megapixels"),
                             (_png(40, 40, 255), "blank")):
        at.file_uploader(key="inside.upload").set_value(("bad.png", payload, "image/png")).run()
        assert not at.exception
        assert any(message in e.value for e in at.sidebar.error), [e.value for e in at.sidebar.error]
        assert at.slider(key="inside.px").value == 3  # settings kept
        assert at.dataframe  # and the ranking still shows, on a dataset digit
    img = np.full((120, 90), 255, np.uint8)
    img[20:100, 40:50] = 0  # a dark "1" on white paper
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    at.file_uploader(key="inside.upload").set_value(("one.png", buf.getvalue(), "image/png")).run()
    assert not at.exception and not at.sidebar.error
    assert any("centred like an MNIST digit" in c.value for c in at.sidebar.caption)
    assert at.selectbox(key="inside.label").value in [str(d) for d in range(10)]


def test_vgg16_is_offered_when_its_weights_are_on_disk(tmp_path, monkeypatch):
    """Weights found => VGG16 is a choice; exemplars take any size; no classifier to attack.
    (Random weights stand in for the 58 MB ImageNet file, which tests never download.)"""
    from dnn2core import pretrained

    weights = tmp_path / "vgg16.h5"
    weights.write_bytes(b"stand-in")
    monkeypatch.setenv("DNN2_VGG16_WEIGHTS", str(weights))
    monkeypatch.setattr(pretrained, "load_base", lambda arch, weights="imagenet", **kw: (
        _load_random_vgg16(), pretrained.WeightsInfo("vgg16", True, "DNN2_VGG16_WEIGHTS", "DNN2_VGG16_WEIGHTS")))
    at = page(model="vgg16", size="64", topk="2")
    assert at.selectbox(key="inside.model").value == "vgg16"
    assert not [t for t in at.sidebar.toggle if t.key == "inside.vgg_unavailable"]
    assert any("ImageNet weights from DNN2_VGG16_WEIGHTS" in c.value for c in at.sidebar.caption)
    assert any("no classifier" in w.value for w in at.warning)
    at.button(key="inside.gen").click().run()
    assert not at.exception
    cache = at.session_state["inside.exemplar_cache"]
    assert len(cache) == 2 and all(v.shape == (64, 64, 3) for v in cache.values())
    assert all(k[2] == "block1_conv2" for k in cache)


def _load_random_vgg16():
    import keras

    return keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))


# ----------------------------------------------------------------------------- the learner's own .keras model


def _upload_model(at: AppTest, name: str, payload: bytes) -> AppTest:
    at.sidebar.file_uploader(key="inside.model_upload").set_value((name, payload, "application/octet-stream")).run()
    assert not at.exception, at.exception
    return at


def test_an_uploaded_keras_model_is_offered_and_every_tab_works_with_it():
    """Issue 14 (CNN Explainer's most-asked feature): upload a .keras file, then look inside it."""
    from model_files import tiny_cnn

    at = _upload_model(page(), "tiny.keras", tiny_cnn())
    picker = at.selectbox(key="inside.model")
    assert picker.value.startswith("upload:")
    assert picker.options == [COURSE_CNN, "Your model: tiny.keras", DEFAULT_CNN]
    assert any("input 28x28x1 (pixels 0-1), 2 Conv2D layer(s), 10 classes, class probabilities" in c.value
               and "Kept for this session only" in c.value for c in at.sidebar.caption)
    assert not at.sidebar.error
    assert at.selectbox(key="inside.layer").options == ["conv_a (4 filters)", "conv_b (6 filters)"]
    at.button(key="inside.gen").click().run()
    assert not at.exception
    cache = at.session_state["inside.exemplar_cache"]
    mine = at.session_state["inside.own_model"]["choice"].model
    assert sorted(k[3] for k in cache) == [0, 1] and all(k[:3] == (picker.value, id(mine), "conv_b") for k in cache)
    assert all(v.shape == (28, 28, 1) for v in cache.values())
    tab(at, "Test the hypothesis")
    assert len(at.dataframe[0].value) == 4 and at.dataframe[0].value["filter"].max() < 6
    tab(at, "Saliency & Grad-CAM")
    heat = next(c for c in charts(at) if any("Grad-CAM (conv_b)" in t for t in annotations(c)))
    assert array(heat["data"][-1]["z"]).shape == (28, 28)
    tab(at, "One-pixel attack")
    at.button(key="inside.attack_go").click().run()
    assert not at.exception
    res = at.session_state["inside.attack_result"]["result"]
    assert res.popsize == 20 and res.before.shape == (10,)
    assert qp(at, "u")  # attacks on an uploaded model are private to its uploader's link
    # the same model stays through reruns (not loaded again) and can be forgotten
    at.run()
    assert at.session_state["inside.own_model"]["choice"].model is mine
    at.sidebar.button(key="inside.forget_model").click().run()
    assert not at.exception and "inside.own_model" not in at.session_state
    assert at.selectbox(key="inside.model").options == [COURSE_CNN, DEFAULT_CNN]
    assert at.selectbox(key="inside.model").value == "reference"


def test_a_colour_model_with_logits_gets_photos_and_probabilities():
    from model_files import colour_logits

    at = _upload_model(page(), "colour.keras", colour_logits())
    assert any("input 32x32x3 (pixels 0-255)" in c.value and "logits (a softmax is applied" in c.value
               for c in at.sidebar.caption)
    assert any("built-in sample photos, resized to 32x32" in c.value for c in at.sidebar.caption)
    assert at.selectbox(key="inside.label").options == ["class 0", "class 1", "class 2"]  # photos have no labels
    tab(at, "Saliency & Grad-CAM")
    said = next(m.value for m in at.markdown if m.value.startswith("The model says"))
    assert "%" in said and "Explaining class" in said
    heat = next(c for c in charts(at) if any("Grad-CAM (colour_conv)" in t for t in annotations(c)))
    assert array(heat["data"][-1]["z"]).shape == (32, 32)


def test_hostile_model_files_are_refused_and_the_page_keeps_working():
    from dnn2core import uploads
    from model_files import hostile

    at = page()
    cases = hostile() + [("huge.keras", b"PK\x03\x04" + b"\0" * (uploads.MAX_MODEL_BYTES + 10), "larger than")]
    for name, payload, words in cases:
        _upload_model(at, name, payload)
        errors = [e.value for e in at.sidebar.error]
        assert any(e.startswith(name) and words in e for e in errors), (name, errors)
        assert "inside.own_model" not in at.session_state
        assert at.selectbox(key="inside.model").value == "reference"  # the page carries on
        assert at.selectbox(key="inside.model").options == [COURSE_CNN, DEFAULT_CNN]
        assert at.selectbox(key="inside.layer").value == 1
    at.run()  # the same refused file is not tried again, its message stays
    assert any("huge.keras" in e.value for e in at.sidebar.error)
    # after the refusals a good model still loads
    from model_files import tiny_cnn

    _upload_model(at, "tiny.keras", tiny_cnn())
    assert not at.sidebar.error and at.selectbox(key="inside.model").value.startswith("upload:")
