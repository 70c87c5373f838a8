"""AppTest of the cats-vs-dogs page: a tiny live run on real images, the results panel, a photo, the
course's parameter counts, the 'no images' guidance and bad uploads."""

from __future__ import annotations

import io
import zipfile

import pytest
from streamlit.testing.v1 import AppTest

from conftest import qp, shared_data, own_runs, run_registry, open_page

pytestmark = pytest.mark.timeout(300)
PAGE = "pages/cats_dogs.py"


def page(**params) -> AppTest:
    at = open_page(PAGE, **params)
    assert at.title[0].value == "Cats vs dogs & VGG16"
    return at

def text(at) -> str:
    return " ".join(m.value for m in at.markdown) + " " + " ".join(c.value for c in at.caption)


def test_tiny_run_on_real_images_shows_results_and_classifies_a_photo(shared_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet weights here: random, labelled
    at = page(models="From scratch,VGG16 frozen", size="64", n="100", nval="100", epochs="1", seed="1")
    assert "2,000 training images (1,000 cats, 1,000 dogs)" in text(at)
    assert any("RANDOM weights" in w.value for w in at.warning)
    # the course's counts for this size: 2x2x512 features + 1 bias, and 7,079,424 after unfreezing
    assert "Trainable: **2,049**" in text(at) and "the base trains **7,079,424**" in text(at)
    # one size per sentence: the head at 64 px, the course's 224 px head named as such
    assert "with the head (2,049 parameters at this size) the whole model trains **7,081,473**" in text(at)
    at.button(key="cats_dogs.start").click().run()
    assert not at.exception, at.exception
    [key] = own_runs(at, "cats_dogs")
    run_registry().wait(key, 180)
    at.run()
    assert not at.exception, at.exception
    snap = run_registry().view(key).snapshot()
    assert snap.state == "done", snap.message
    assert set(snap.models) == {"From scratch", "VGG16 frozen (random weights)"}
    assert all(len(mp.history["val_accuracy"]) == 1 for mp in snap.models.values())
    assert "Finished" in text(at) and "All 200 images are usable." in text(at)
    accs = [m for m in at.metric if m.label in snap.models]  # one metric per approach, named by it
    assert len(accs) == 2 and all(m.value.endswith("%") for m in accs)
    assert "Extracting the frozen base's features took" in text(at)
    results = next(d.value for d in at.dataframe if "final val accuracy" in d.value.columns)
    assert results["epochs"].tolist() == [1, 1] and results["how"].tolist()[1] == "frozen (cached features)"
    assert 0.0 <= results["final val accuracy"].min() <= results["final val accuracy"].max() <= 1.0
    # a setting change never retrains; the URL follows
    at.slider(key="cats_dogs.epochs").set_value(3).run()
    assert len(run_registry().store.runs("cats_dogs", include_reference=False)) == 1 and qp(at, "epochs") == "3"
    assert "epochs=3" in " ".join(c.value for c in at.code)
    assert "Finished" not in text(at)  # no run of these settings yet
    at.slider(key="cats_dogs.epochs").set_value(1).run()  # back to the stored run's settings: it is shown again
    assert "Finished" in text(at)
    # the learner's own photo, then a broken one
    photo = shared_data("cats_and_dogs", "validation", "dogs", "dog.2000.jpg").read_bytes()
    at.file_uploader(key="cats_dogs.photo").set_value(("dog.jpg", photo, "image/jpeg")).run()
    assert not at.exception, at.exception
    assert not at.error
    bars = [c for c in at.get("plotly_chart") if "What each model says" in c.proto.spec]
    assert len(bars) == 1 and "VGG16 frozen (random weights)" in bars[0].proto.spec
    at.file_uploader(key="cats_dogs.photo").set_value(("x.jpg", b"not a photo", "image/jpeg")).run()
    assert any("not an image" in e.value for e in at.error)


def test_no_images_says_how_to_get_them(no_local_data):
    at = page()
    assert any("No cats/dogs images yet" in w.value for w in at.warning)
    body = text(at)
    assert "65 MB" in body and "cats_and_dogs_filtered.zip" in body and "Upload a zip" in body and "10 MB" in body
    assert at.button(key="cats_dogs.start").disabled
    at.radio(key="cats_dogs.src").set_value("Download").run()
    at.button(key="cats_dogs.download").click().run()
    assert any("switched off" in e.value for e in at.error)


def test_bad_zip_and_bad_path_get_clear_messages(no_local_data, monkeypatch):
    at = page(src="Upload a zip", epochs="4")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("train/cats/cat.0.jpg", b"x")
        zf.writestr("../../escape.jpg", b"x")
    at.file_uploader(key="cats_dogs.zip").set_value(("cats.zip", buf.getvalue(), "application/zip")).run()
    assert not at.exception, at.exception
    assert any("outside the archive" in e.value for e in at.error)
    assert not (no_local_data / "escape.jpg").exists()
    assert qp(at, "epochs") == "4" and qp(at, "src") == "Upload a zip"  # nothing lost
    at.radio(key="cats_dogs.src").set_value("Folder path").run()
    at.text_input(key="cats_dogs.path").input(str(no_local_data / "nowhere")).run()
    assert any("There is no folder" in e.value for e in at.error)
    before = at.error[0].value
    real = shared_data("cats_and_dogs")
    at.text_input(key="cats_dogs.path").input(str(real)).run()
    assert [e.value for e in at.error] == [before]  # outside the allowed roots: the same answer as absent
    monkeypatch.setenv("DNN2_DATA_DIR", str(real.parent))
    at.text_input(key="cats_dogs.path").input("cats_and_dogs").run()  # relative to the data folder
    assert not at.error and "2,000 training images" in text(at)


def test_stop_during_feature_extraction_ends_the_run(shared_data_dir, tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    # 500 images through VGG16 at 224 px take minutes on a CPU: Stop must not wait for them
    at = page(models="VGG16 frozen", size="224", n="500", nval="100", epochs="1")
    at.button(key="cats_dogs.start").click().run()
    [key] = own_runs(at, "cats_dogs")
    job = run_registry().view(key).job
    deadline = time.time() + 120  # a cold worker first imports TensorFlow and decodes the photos (4-5 s here)
    while time.time() < deadline and not any(m.phase.startswith("extracting") for m in job.snapshot().models.values()):
        time.sleep(0.1)
    at.run()  # inside the extraction now
    stop = [b for b in at.button if b.label == "Stop"]
    assert stop, "no Stop button while extracting"
    status = " ".join(m.value for m in at.markdown)
    assert "extracting VGG16 features: image" in status and "/600" in status  # not "batch 0/7" for a minute
    assert "then" not in status.split("extracting")[1][:120] or "more model" in status
    t0 = time.time()
    stop[0].click().run()
    assert job.join(30), "Stop did not end the extraction"
    assert time.time() - t0 < 30
    snap = job.snapshot()
    assert snap.state == "stopped" and snap.stop_reason == "stopped by you"
    assert snap.models["VGG16 frozen (random weights)"].epoch == 0
    assert "Stopped during feature extraction" in snap.message
    deadline = time.time() + 10  # nothing trained: the run is not kept, the settings can start again
    while time.time() < deadline and run_registry().store.get(key) is not None:
        time.sleep(0.1)
    assert run_registry().store.get(key) is None
    at.run()
    assert not at.exception, at.exception
