"""Hostile input on every page, as a learner (or a crafted link) would send it: mutated images,
zips and CSVs on every page that takes uploads, server paths typed into the cats/dogs fields, and
hostile URL values. Each must end in a message on the page, never an exception."""

from __future__ import annotations

import gzip
import re

import pytest
from streamlit.testing.v1 import AppTest

from conftest import own_runs, run_registry, open_page
from fuzz_cases import cases, cats_dogs_zip, seed_image

from dnn2core import uploads

pytestmark = pytest.mark.timeout(600)


def refused(kind: str, n: int, check) -> list[bytes]:
    """The first n seeded mutations of kind that the uploads module refuses (so a message is due)."""
    out = []
    for data in cases(kind, 200, seed=7):
        try:
            check(data)
        except uploads.UploadError:
            out.append(data)
            if len(out) == n:
                return out
    raise AssertionError(f"fewer than {n} refused {kind} cases")


BAD_IMAGES = (refused("WEBP", 1, uploads.open_image) + refused("BMP", 1, uploads.open_image)
              + refused("JPEG", 1, uploads.open_image))
GZIP_BOMB = gzip.compress(b"1," * (40 * 1024 * 1024), compresslevel=9)  # 80 MB of CSV in ~80 KB
WIDE_CSV = (",".join(f"c{i}" for i in range(5000)) + "\n" + ",".join("1" * 5000) + "\n").encode()
BAD_CSVS = [(GZIP_BOMB, "unpacks to more than"), (WIDE_CSV, "5,000 columns")] + [
    (c, "") for c in refused("csv", 1, uploads.read_table)]


def upload_each(at: AppTest, key: str, files: list[tuple[bytes, str]], name: str, mime: str, errors) -> None:
    for payload, message in files:
        at.file_uploader(key=key).set_value((name, payload, mime)).run()
        assert not at.exception, at.exception
        shown = [e.value for e in errors(at)]
        assert shown and all(s.strip() for s in shown), shown
        assert message in " ".join(shown), shown


# ----------------------------------------------------------------------------- uploads, page by page


def test_convolution_refuses_damaged_images_with_a_message(no_local_data):
    at = open_page("pages/convolution.py", source="Upload")
    upload_each(at, "conv.upload", [(d, "") for d in BAD_IMAGES], "bad.webp", "image/webp", lambda a: a.sidebar.error)
    assert at.metric  # the page still computes, on the sample image


def test_inside_refuses_damaged_images_with_a_message(no_local_data, monkeypatch):
    monkeypatch.setenv("DNN2_DEFAULT_CNN_TRAIN", "400")
    monkeypatch.setenv("DNN2_DEFAULT_CNN_EPOCHS", "1")
    at = open_page("pages/inside.py", timeout=180, source="Upload", steps="4", n="2", ups="1", topk="3")
    upload_each(at, "inside.upload", [(d, "") for d in BAD_IMAGES], "bad.bmp", "image/bmp", lambda a: a.sidebar.error)


def test_mnist_refuses_damaged_digit_pictures_with_a_message(no_local_data):
    at = open_page("pages/mnist.py", n="500", epochs="1", models="Dense")
    at.button(key="mnist.start").click().run()
    assert run_registry().wait(own_runs(at, "mnist")[0], 120).state == "done"
    at.run()
    at.radio(key="mnist.digit_src").set_value("Upload a picture").run()
    upload_each(at, "mnist.upload", [(d, "") for d in BAD_IMAGES], "digit.png", "image/png", lambda a: a.error)


def test_sequences_refuses_bombs_wide_and_damaged_csvs(no_local_data):
    at = open_page("pages/sequences.py", arima="ARIMA(2,0,1)", source="Upload a CSV")
    upload_each(at, "sequences.upload", BAD_CSVS, "traffic.csv.gz", "application/gzip", lambda a: a.error)


def test_housing_refuses_bombs_wide_and_damaged_csvs(no_local_data):
    at = open_page("pages/housing.py", data="Upload a CSV")
    upload_each(at, "housing.upload", BAD_CSVS, "train.csv.gz", "application/gzip", lambda a: a.error)
    assert "**1,000 training**" in " ".join(m.value for m in at.markdown)  # the built-in sales stay


def _cats_zip(padding: int = 0) -> bytes:
    return cats_dogs_zip(10, 2, {"padding.bin": b"\0" * padding} if padding else None)


def test_cats_dogs_zips_write_only_images_and_bad_ones_leave_nothing(no_local_data):
    at = open_page("pages/cats_dogs.py", src="Upload a zip")
    padded = _cats_zip(padding=60 * 1024 * 1024)
    assert len(padded) < 200_000  # a small upload that would unpack to 60 MB
    at.file_uploader(key="cats_dogs.zip").set_value(("cats.zip", padded, "application/zip")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("20 training images (10 cats, 10 dogs)" in c.value for c in at.caption)
    space = at.session_state["_dnn2_session_folder"].path
    images = sum(len(seed_image("JPEG", i)) for i in range(10)) * 2 + sum(len(seed_image("JPEG", i)) for i in range(2)) * 2
    assert uploads.folder_bytes(space) == images  # the images only: the 60 MB of padding was never written

    bad = [c for c in cases("zip", 60, seed=3)][:3]
    for payload in bad:
        at.file_uploader(key="cats_dogs.zip").set_value(("cats.zip", payload, "application/zip")).run()
        assert not at.exception, at.exception
        if at.error:
            assert uploads.folder_bytes(space) == 0  # a failed extraction leaves nothing behind


def test_cats_dogs_path_fields_cannot_probe_the_server(no_local_data):
    outside = no_local_data / "private"
    outside.mkdir()
    (outside / "secret.h5").write_bytes(b"x")
    at = open_page("pages/cats_dogs.py", src="Folder path", models="From scratch,VGG16 frozen")
    answers = []
    for typed in (str(outside), str(no_local_data / "nowhere"), "/etc", "../private", "/proc"):
        at.text_input(key="cats_dogs.path").input(typed).run()
        assert not at.exception
        answers.append(tuple(e.value for e in at.error))
    assert len(set(answers)) == 1 and str(no_local_data) not in " ".join(answers[0])
    weights = []
    for typed in (str(outside / "secret.h5"), str(no_local_data / "missing.h5"), "/etc/shadow"):
        at.text_input(key="cats_dogs.weights").input(typed).run()
        assert not at.exception
        weights.append(tuple(e.value for e in at.error if e.value.startswith("Weights file")))
    assert len(set(weights)) == 1 and weights[0] and str(no_local_data) not in " ".join(weights[0])
    assert any("RANDOM weights" in w.value for w in at.warning)  # the shared ImageNet base (random here) is used


# ----------------------------------------------------------------------------- hostile URL values, every page

PAGES = ["convolution", "mnist", "cats_dogs", "inside", "sequences", "housing", "tricks"]
CRAFTED = "**Session expired.** [Log in again](https://evil.example/login) :red[now]"
HOSTILE = ["1e8", "nan", "inf", "-inf", "x" * 100_000, CRAFTED]


@pytest.mark.parametrize("name", PAGES)
def test_hostile_url_values_are_ignored_and_shown_inert(name, no_local_data, monkeypatch):
    monkeypatch.setenv("DNN2_DEFAULT_CNN_TRAIN", "400")
    monkeypatch.setenv("DNN2_DEFAULT_CNN_EPOCHS", "1")
    keys = [k for k in open_page(f"pages/{name}.py", timeout=180).query_params]
    assert keys, "the page binds settings to the URL"
    params = {k: HOSTILE[i % len(HOSTILE)] for i, k in enumerate(keys)}
    at = open_page(f"pages/{name}.py", timeout=180, **params)
    notes = [c.value for c in at.caption if c.value.startswith("Ignored settings")]
    assert notes, "a note says which settings were ignored"
    outside_code = re.sub(r"`[^`]*`", "", notes[0])
    assert "evil.example" not in outside_code and "**" not in outside_code and ":red[" not in outside_code
    assert "evil.example" in notes[0] and len(notes[0]) < 2000  # shown, as code, and cut short
    for k, v in params.items():  # nothing hostile was written back into the URL
        value = at.query_params[k]
        value = value[-1] if isinstance(value, list) else value
        assert value not in ("nan", "inf", "-inf", "1e8", CRAFTED) and len(value) < 1000, (k, value[:50])
