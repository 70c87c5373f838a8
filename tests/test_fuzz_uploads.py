"""Fuzz: seeded mutations of real images, zips and CSVs through dnn2core.uploads. Every case must
give a result or an UploadError with a message; any other exception is an escape (goal: none)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from fuzz_cases import IMAGE_FORMATS, cases, run_cases

from dnn2core import uploads

N_IMAGES = 500  # per format
N_ZIPS = 300
N_CSVS = 300


def test_every_seed_is_valid_before_mutation(tmp_path):
    """The mutations start from files that load, so an escape is the mutation's doing."""
    for fmt in IMAGE_FORMATS:
        from fuzz_cases import seed_image

        assert uploads.image_array(seed_image(fmt)).shape[:2] == (24, 32)
    from fuzz_cases import seed_csv, seed_zip

    got = uploads.extract_zip(seed_zip(), tmp_path / "z")
    assert got.images == 8 and got.skipped == 1  # readme.txt is never written
    assert len(uploads.read_table(seed_csv(True))) == 24


@pytest.mark.parametrize("fmt", IMAGE_FORMATS)
def test_mutated_images_give_an_image_or_an_upload_error(fmt):
    results = {"ok": 0, "refused": 0}

    def call(data: bytes, _i: int) -> None:
        try:
            im = uploads.open_image(data, max_pixels=1_000_000)
        except uploads.UploadError as exc:
            assert str(exc)  # a message for the learner, never empty
            results["refused"] += 1
            raise
        assert isinstance(im, Image.Image) and im.mode in ("L", "RGB") and min(im.size) >= 1
        assert np.asarray(im).dtype == np.uint8
        results["ok"] += 1

    escaped = run_cases(fmt, N_IMAGES, call, uploads.UploadError)
    assert escaped == [], f"{len(escaped)} of {N_IMAGES} {fmt} cases escaped: {escaped[:5]}"
    assert results["ok"] + results["refused"] == N_IMAGES and results["refused"] > N_IMAGES // 10


def test_mutated_zips_extract_images_or_refuse_and_leave_nothing(tmp_path):
    outcomes = {"ok": 0, "refused": 0}

    def call(data: bytes, i: int) -> None:
        dest = tmp_path / f"case{i}"
        try:
            got = uploads.extract_zip(data, dest)
        except uploads.UploadError:
            assert not dest.exists(), "a failed extraction must be removed"
            outcomes["refused"] += 1
            raise
        written = [p for p in dest.rglob("*") if p.is_file()]
        assert len(written) == got.images and all(p.suffix == ".jpg" for p in written)
        assert sum(p.stat().st_size for p in written) == got.bytes_written
        outcomes["ok"] += 1
        shutil.rmtree(dest)

    escaped = run_cases("zip", N_ZIPS, call, uploads.UploadError)
    assert escaped == [], f"{len(escaped)} of {N_ZIPS} zip cases escaped: {escaped[:5]}"
    assert outcomes["refused"] > 0 and outcomes["ok"] + outcomes["refused"] == N_ZIPS


def test_mutated_csvs_give_a_table_or_an_upload_error():
    outcomes = {"ok": 0, "refused": 0}

    def call(data: bytes, _i: int) -> None:
        try:
            df = uploads.read_table(data)
        except uploads.UploadError:
            outcomes["refused"] += 1
            raise
        assert len(df) >= 1 and df.shape[1] <= uploads.MAX_TABLE_COLUMNS
        outcomes["ok"] += 1

    escaped = run_cases("csv", N_CSVS, call, uploads.UploadError)
    assert escaped == [], f"{len(escaped)} of {N_CSVS} CSV cases escaped: {escaped[:5]}"
    assert outcomes["ok"] > 0 and outcomes["refused"] > 0


def test_the_cases_are_seeded():
    assert list(cases("PNG", 5)) == list(cases("PNG", 5))
    assert list(cases("PNG", 5, seed=1)) != list(cases("PNG", 5))


N_MODELS = 150


def test_mutated_and_hostile_keras_files_load_or_are_refused_with_a_message():
    """Seeded mutations of a tiny .keras CNN, plus the hostile files the page refuses (not a zip, a
    truncated one, a zip bomb, a Lambda layer, a dense-only model, a 1-D input), through the same two
    steps as the page: uploads.load_keras_model, then interpret.check_image_classifier. Each must give
    a usable model, an UploadError or a ValueError with a message; anything else is an escape."""
    from fuzz_cases import mutate
    from model_files import hostile, tiny_cnn

    from dnn2core import interpret

    seed = tiny_cnn()
    rng = np.random.default_rng([0, sum(map(ord, "keras"))])
    cases = [(f"mutation {i}", mutate(seed, rng), None) for i in range(N_MODELS)]
    # the zip's checksums catch most byte damage; these mutate what Keras parses (config.json, the
    # weights) inside a well-formed zip
    for i in range(N_MODELS // 3):
        cases.append((f"member mutation {i}", _repacked(seed, "config.json" if i % 2 else "model.weights.h5",
                                                       lambda raw: mutate(raw, rng)), None))
    cases += [(name, data, words) for name, data, words in hostile()]
    outcomes = {"ok": 0, "refused": 0}
    escaped = []
    for name, data, words in cases:
        try:
            model = uploads.load_keras_model(data).model
            interpret.check_image_classifier(model)
            outcomes["ok"] += 1
            assert words is None, f"{name} was accepted"
        except (uploads.UploadError, ValueError) as exc:
            assert str(exc), name
            assert words is None or words in str(exc), (name, str(exc))
            outcomes["refused"] += 1
        except Exception as exc:  # noqa: BLE001 - exactly what the fuzz looks for
            escaped.append((name, f"{type(exc).__name__}: {exc}"[:200]))
    assert escaped == [], f"{len(escaped)} of {len(cases)} .keras cases escaped: {escaped[:5]}"
    assert outcomes["refused"] >= len(hostile()) and outcomes["ok"] + outcomes["refused"] == len(cases)
    again = np.random.default_rng([0, sum(map(ord, "keras"))])
    assert mutate(seed, again) == cases[0][1]  # seeded: the same cases every run


def _repacked(data: bytes, member: str, change) -> bytes:
    """The .keras zip ``data`` written again with ``change`` applied to one member (valid checksums)."""
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            raw = src.read(info)
            dst.writestr(info.filename, change(raw) if info.filename == member else raw)
    return out.getvalue()
