"""A drawing pad for digits (streamlit-drawable-canvas, a components-v2 widget).

Imported only where a page draws: the package registers its component when imported, which needs
Streamlit's runtime, and the home and convolution pages must not pay for it."""

from __future__ import annotations

from dnn2core.digits import CANVAS_SIDE, CANVAS_STROKE


def draw_digit(key: str) -> bytes | None:
    """The canvas, white ink on black as MNIST digits are; its PNG after each stroke (None before)."""
    from streamlit_drawable_canvas import st_canvas

    result = st_canvas(stroke_width=CANVAS_STROKE, stroke_color="#FFFFFF", background_color="#000000",
                       height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw", return_image_data=True,
                       key=key)
    return result.image_bytes
