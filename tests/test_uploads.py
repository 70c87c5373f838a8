"""The upload helper refuses bad files with learner-readable messages and never half-loads."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dnn2core import uploads


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_good_png_and_jpeg_load_as_arrays():
    rgb = Image.fromarray((np.random.default_rng(0).random((30, 40, 3)) * 255).astype(np.uint8))
    a = uploads.image_array(encode(rgb))
    assert a.shape == (30, 40, 3) and a.dtype == np.uint8
    g = uploads.image_array(encode(rgb.convert("L"), "JPEG"))
    assert g.shape == (30, 40)


def test_large_image_is_downscaled_keeping_aspect():
    big = Image.new("RGB", (2000, 1000), (10, 20, 30))
    a = uploads.image_array(encode(big, "JPEG"), max_side=256)
    assert a.shape == (128, 256, 3)


@pytest.mark.parametrize("w,h", [(20_000, 20_000), (10_000, 10_000)])
def test_decompression_bombs_are_refused_before_decoding(w, h):
    data = encode(Image.new("L", (w, h)))
    assert len(data) < 500_000  # tiny on disk: exactly why the pixel count must be checked first
    with pytest.raises(uploads.UploadError, match="megapixels"):
        uploads.open_image(data)


def test_pixel_limit_is_configurable():
    data = encode(Image.new("L", (300, 300)))
    with pytest.raises(uploads.UploadError, match="300 x 300"):
        uploads.open_image(data, max_pixels=50_000)


def test_truncated_file_is_refused():
    data = encode(Image.fromarray((np.random.default_rng(1).random((200, 200, 3)) * 255).astype(np.uint8)), "JPEG")
    with pytest.raises(uploads.UploadError, match="damaged or incomplete"):
        uploads.open_image(data[: len(data) // 2])


@pytest.mark.parametrize("payload", [b"hello, this is a CSV,1,2,3\n", b"%PDF-1.4 fake", b"\x00" * 100])
def test_non_images_are_refused(payload):
    with pytest.raises(uploads.UploadError, match="not an image"):
        uploads.open_image(payload)


def test_empty_and_oversized_files():
    with pytest.raises(uploads.UploadError, match="empty"):
        uploads.open_image(b"")
    with pytest.raises(uploads.UploadError, match="larger than"):
        uploads.open_image(b"0" * 2048, max_bytes=1024)


def test_transparency_and_palette_become_rgb_on_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red
    a = uploads.image_array(encode(rgba))
    assert a.shape == (4, 4, 3) and (a == 255).all()
    pal = Image.new("P", (4, 4))
    assert uploads.image_array(encode(pal)).ndim == 3


def test_sixteen_bit_grayscale_is_rescaled():
    arr = np.arange(16, dtype=np.uint16).reshape(4, 4) * 1000
    a = uploads.image_array(encode(Image.fromarray(arr)))
    assert a.dtype == np.uint8 and a.min() == 0 and a.max() == 255


def test_pillow_global_settings_untouched():
    from PIL import ImageFile
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


# ----------------------------------------------------------------------------- tables: gzip bombs, wide files

def test_gzip_bomb_is_refused_within_the_cap_of_memory():
    import gzip
    import tracemalloc

    import pandas  # noqa: F401 - imported before measuring: its first import alone allocates ~30 MB

    bomb = gzip.compress(b"1," * (25 * 1024 * 1024), compresslevel=9)  # 50 MB of CSV in ~50 KB
    tracemalloc.start()
    try:
        with pytest.raises(uploads.UploadError, match="unpacks to more than 1 MB"):
            uploads.read_table(bomb, max_unpacked=1024 * 1024)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # the cap, not the 50 MB the file would unpack to


def test_gzip_members_are_all_read_and_damage_is_an_upload_error():
    import gzip

    two = gzip.compress(b"a,b\n1,2\n") + gzip.compress(b"3,4\n")
    df = uploads.read_table(two)
    assert df.to_numpy().tolist() == [[1, 2], [3, 4]]
    whole = gzip.compress(b"a,b\n" + b"1,2\n" * 1000)
    with pytest.raises(uploads.UploadError, match="damaged or incomplete"):
        uploads.read_table(whole[: len(whole) // 2])
    with pytest.raises(uploads.UploadError, match="damaged or incomplete"):
        uploads.read_table(whole[:10] + b"\xff" * 40 + whole[50:])


def test_tables_wider_than_the_limit_are_refused_before_parsing():
    header = ",".join(f"c{i}" for i in range(2001)).encode()
    with pytest.raises(uploads.UploadError, match="2,001 columns; at most 2,000"):
        uploads.read_table(header + b"\n" + b",".join([b"1"] * 2001) + b"\n")
    ok = ",".join(f"c{i}" for i in range(2000)).encode() + b"\n" + b",".join([b"1"] * 2000) + b"\n"
    assert uploads.read_table(ok).shape == (1, 2000)


# ----------------------------------------------------------------------------- zips


def _zip(entries: dict[str, bytes], method: int = 0) -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, payload in entries.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def _jpeg(seed: int = 0) -> bytes:
    arr = (np.random.default_rng(seed).random((16, 16, 3)) * 255).astype(np.uint8)
    return encode(Image.fromarray(arr), "JPEG")


def test_only_real_images_are_written(tmp_path):
    img = _jpeg()
    data = _zip({"a/cat.1.jpg": img, "pad.bin": b"\0" * 5_000_000, "fake.jpg": b"\0" * 100_000,
                 "__MACOSX/a/._cat.1.jpg": img, "a/.hidden.jpg": img}, method=8)
    got = uploads.extract_zip(data, tmp_path / "out")
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert [p.name for p in files] == ["cat.1.jpg"] and got.bytes_written == len(img) == files[0].stat().st_size
    assert got.images == 1 and got.skipped == 4


def _patch_header(data: bytes, offsets: tuple[int, int], value: int) -> bytes:
    """Rewrite a 2-byte field of every member: at offsets[0] in local headers, offsets[1] in the
    central directory (zipfile itself cannot write encrypted or Deflate64 members)."""
    out = bytearray(data)
    for sig, offset in ((b"PK\x03\x04", offsets[0]), (b"PK\x01\x02", offsets[1])):
        pos = out.find(sig)
        while pos >= 0:
            out[pos + offset:pos + offset + 2] = value.to_bytes(2, "little")
            pos = out.find(sig, pos + 4)
    return bytes(out)


def _patch_method(data: bytes, method: int) -> bytes:
    return _patch_header(data, (8, 10), method)


def test_unreadable_zips_become_upload_errors_and_leave_nothing(tmp_path):
    import zipfile

    img = _jpeg()
    cases = {
        "deflate64": (_patch_method(_zip({"a.jpg": img}), 9), "compression method"),
        "long name": (_zip({"x" * 300 + ".jpg": img}), "too long"),
        "folder clash": (_zip({"a.jpg": img, "a.jpg/b.jpg": img}), "clashes with a folder"),
        "bad crc": (_zip({"a.jpg": img})[:40] + bytes([img[10] ^ 0xFF]) + _zip({"a.jpg": img})[41:], "damaged"),
    }
    cases["encrypted"] = (_patch_header(_zip({"a.jpg": img}), (6, 8), 1), "password-protected")
    for name, (data, message) in cases.items():
        dest = tmp_path / name.replace(" ", "_")
        with pytest.raises(uploads.UploadError, match=message):
            uploads.extract_zip(data, dest)
        assert not dest.exists(), name


def test_zip_slip_links_and_bombs_are_refused_before_writing(tmp_path):
    import zipfile

    with pytest.raises(uploads.UploadError, match="outside the archive"):
        uploads.extract_zip(_zip({"../evil.jpg": _jpeg()}), tmp_path / "slip")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        link = zipfile.ZipInfo("link.jpg")
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
    with pytest.raises(uploads.UploadError, match="symbolic link"):
        uploads.extract_zip(buf.getvalue(), tmp_path / "link")
    big = _zip({f"{i}.jpg": b"\xff\xd8\xff" + b"\0" * 1_000_000 for i in range(3)}, method=8)
    with pytest.raises(uploads.UploadError, match="unpack to 3 MB; at most 2 MB"):
        uploads.extract_zip(big, tmp_path / "bomb", max_uncompressed=2_000_000)
    with pytest.raises(uploads.UploadError, match="remaining upload space"):
        uploads.extract_zip(big, tmp_path / "quota", quota_left=1_000_000)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- session folders


def test_quota_counts_what_is_on_disk(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.bin").write_bytes(b"0" * 1000)
    (tmp_path / "y.bin").write_bytes(b"0" * 500)
    assert uploads.folder_bytes(tmp_path) == 1500
    assert uploads.quota_left(tmp_path, 4000) == 2500 and uploads.quota_left(tmp_path, 1000) == 0
    assert uploads.folder_bytes(tmp_path / "gone") == 0


def test_sweep_removes_only_stale_dnn2_folders(tmp_path):
    import os
    import time

    now = time.time()
    for name in ("dnn2-old", "dnn2-new", "other-old"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f.jpg").write_bytes(b"x")
    for name in ("dnn2-old", "other-old"):
        for p in (tmp_path / name / "f.jpg", tmp_path / name):
            os.utime(p, (now - 2 * 86400, now - 2 * 86400))
    removed = uploads.sweep_stale(tmp_path, max_age_s=86400, now=now)
    assert [p.name for p in removed] == ["dnn2-old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dnn2-new", "other-old"]


# ----------------------------------------------------------------------------- typed paths


@pytest.fixture
def roots(tmp_path, monkeypatch):
    monkeypatch.delenv(uploads.ALLOW_SERVER_PATHS_ENV, raising=False)
    data = tmp_path / "data"
    (data / "cats").mkdir(parents=True)
    (data / "w.h5").write_bytes(b"x")
    (tmp_path / "secret").mkdir()
    (data / "escape").symlink_to(tmp_path / "secret")
    return [uploads.Root("the data folder", data), uploads.Root("the Keras cache", tmp_path / "keras")]


def test_typed_paths_resolve_only_under_the_roots(roots, tmp_path):
    path, name = uploads.resolve_server_path("cats", roots)
    assert path == (tmp_path / "data" / "cats").resolve() and name == "the data folder/cats"
    assert uploads.resolve_server_path(str(tmp_path / "data" / "w.h5"), roots, want="file")[1] == "the data folder/w.h5"
    answers = set()
    for typed in (str(tmp_path / "secret"), str(tmp_path / "nowhere"), "escape", "../secret", "/proc", "/etc",
                  "x" * 5000, "a\x00b"):
        with pytest.raises(uploads.UploadError) as err:
            uploads.resolve_server_path(typed, roots)
        answers.add(str(err.value))
    assert len(answers) == 1  # outside and absent read the same: the field cannot probe the server
    assert str(tmp_path) not in answers.pop()
    with pytest.raises(uploads.UploadError, match="the data folder/w.h5 is not a folder"):
        uploads.resolve_server_path("w.h5", roots)


def test_single_user_machines_may_allow_any_path(roots, tmp_path, monkeypatch):
    monkeypatch.setenv(uploads.ALLOW_SERVER_PATHS_ENV, "1")
    path, name = uploads.resolve_server_path(str(tmp_path / "secret"), roots)
    assert path == (tmp_path / "secret").resolve() and name == str(tmp_path / "secret")


def test_display_path_never_shows_a_server_path(roots, tmp_path):
    assert uploads.display_path(tmp_path / "data" / "cats", roots) == "the data folder/cats"
    assert uploads.display_path(tmp_path / "elsewhere" / "x", roots) == "a file"


# ----------------------------------------------------------------------------- .keras model files


def _keras_zip(config: dict | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    import json

    entries = {"metadata.json": b'{"keras_version": "3.0.0"}',
               "config.json": json.dumps(config or {"module": "keras", "class_name": "Sequential",
                                                    "config": {"layers": []}}).encode(),
               "model.weights.h5": b"\x89HDF\r\n\x1a\n" + b"\0" * 100}
    return _zip({**entries, **(extra or {})})


def test_a_tiny_keras_model_loads_in_safe_mode_and_leaves_no_file(tmp_path, monkeypatch):
    import tempfile

    from model_files import tiny_cnn

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the private copy goes
    data = tiny_cnn()
    got = uploads.load_keras_model(io.BytesIO(data))
    assert [layer.name for layer in got.model.layers][:3] == ["conv_a", "pool_a", "conv_b"]
    assert got.model.output_shape == (None, 10) and got.size == len(data)
    import hashlib

    assert got.digest == hashlib.sha256(data).hexdigest()
    assert list(tmp_path.iterdir()) == []  # the temporary copy is gone
    assert not got.model.compiled  # compile=False: no optimizer state built from the file


def test_keras_archives_are_checked_before_keras_sees_them():
    assert uploads.check_keras_archive(_keras_zip())["class_name"] == "Sequential"
    cases = {
        "not a Keras model": b"GIF89a not a zip",
        "damaged or incomplete": _keras_zip()[:-30],
        "outside the archive": _keras_zip(extra={"../config.json": b"{}"}),
        "not part of a Keras model file": _keras_zip(extra={"run.sh": b"rm -rf /"}),
        "lacks config.json": _zip({"metadata.json": b"{}", "model.weights.h5": b"x"}),
        "not valid JSON": _zip({"config.json": b"{nope", "model.weights.h5": b"x"}),
        "custom code": _keras_zip({"module": "keras", "class_name": "Sequential", "config": {"layers": [
            {"module": "my_project.layers", "class_name": "Sneaky", "config": {}}]}}),
        "custom object 'Custom>Scale'": _keras_zip({"module": "keras", "class_name": "Sequential", "config": {
            "layers": [{"module": "keras.layers", "class_name": "Scale", "registered_name": "Custom>Scale"}]}}),
        "Lambda layer": _keras_zip({"module": "keras", "class_name": "Sequential", "config": {"layers": [
            {"module": "keras.layers", "class_name": "Lambda", "config": {"function": "..."}}]}}),
        "nested too deeply": _keras_zip(_deep(300)),
    }
    for words, data in cases.items():
        with pytest.raises(uploads.UploadError, match=words):
            uploads.check_keras_archive(data)


def _deep(n: int) -> dict:
    node: dict = {"module": "keras", "class_name": "Sequential", "config": {}}
    for _ in range(n):
        node = {"module": "keras", "class_name": "Sequential", "config": {"layer": node}}
    return node


def test_keras_zip_bombs_are_refused_by_size_and_by_ratio():
    import zipfile

    from model_files import zip_bomb

    with pytest.raises(uploads.UploadError, match="unpacks 1,0[0-9][0-9] times larger .* zip bomb"):
        uploads.check_keras_archive(zip_bomb(20))
    stored = _keras_zip(extra={"assets/blob.bin": b"\1" * 3_000_000})  # stored: no ratio, but too large
    with pytest.raises(uploads.UploadError, match="unpacks to 3 MB; at most 2 MB"):
        uploads.check_keras_archive(stored, max_unpacked=2_000_000)
    with pytest.raises(uploads.UploadError, match="config.json is 0.0 MB; at most 0 MB"):
        uploads.check_keras_archive(_keras_zip(), max_config=10)
    many = _zip({f"assets/{i}.txt": b"" for i in range(1001)} | {"config.json": b"{}"})
    with pytest.raises(uploads.UploadError, match="1,002 entries"):
        uploads.check_keras_archive(many)
    assert zipfile.is_zipfile(io.BytesIO(zip_bomb(2)))


def test_safe_mode_refuses_a_lambda_layer_even_past_our_own_check(monkeypatch):
    """Defence in depth: with the config check switched off, Keras' safe mode still refuses."""
    from model_files import with_lambda

    monkeypatch.setattr(uploads, "_config_problem", lambda node, depth=0: None)
    with pytest.raises(uploads.UploadError, match="safe mode"):
        uploads.load_keras_model(with_lambda())


def test_model_files_over_the_limit_are_refused_unread():
    class Endless(io.RawIOBase):
        """A stream that never ends: only max_bytes + 1 may be read from it."""

        read_so_far = 0

        def readable(self):
            return True

        def read(self, n=-1):
            n = 1 << 20 if n is None or n < 0 else n
            Endless.read_so_far += n
            return b"PK\x03\x04" + b"\0" * (n - 4)

    with pytest.raises(uploads.UploadError, match="larger than 1 MB"):
        uploads.load_keras_model(Endless(), max_bytes=1024 * 1024)
    assert Endless.read_so_far == 1024 * 1024 + 1
