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
