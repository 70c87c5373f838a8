"""dnn2core.convolution against TensorFlow's own ops, known preset outputs and the course example."""

from __future__ import annotations

import numpy as np
import pytest

from dnn2core import convolution as conv


@pytest.fixture(scope="module")
def tf():
    import tensorflow as tf
    return tf


def _tf_conv(tf, x, w, stride, padding):
    return tf.nn.conv2d(x[None].astype(np.float64), w.astype(np.float64), strides=stride,
                        padding=padding.upper()).numpy()[0]


@pytest.mark.parametrize("seed", range(24))
def test_conv2d_matches_tf_nn_conv2d(tf, seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(5, 24, size=2)
    c, k_filters = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    kh, kw = min(kh, h), min(kw, w)
    stride = int(rng.integers(1, 5))
    padding = ["valid", "same"][seed % 2]
    x = rng.normal(size=(h, w, c))
    kern = rng.normal(size=(kh, kw, c, k_filters))
    bias = rng.normal(size=k_filters)
    ours = conv.conv2d(x, kern, bias=bias, stride=stride, padding=padding)
    ref = _tf_conv(tf, x, kern, stride, padding) + bias
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n,k,s", [(8, 2, 2), (7, 4, 3), (10, 4, 1), (6, 3, 4), (9, 2, 3)])
def test_same_padding_even_sizes_and_strides_match_tf(tf, n, k, s):
    rng = np.random.default_rng(n * 100 + k * 10 + s)
    x = rng.normal(size=(n, n + 1, 2))
    kern = rng.normal(size=(k, k, 2, 3))
    np.testing.assert_allclose(conv.conv2d(x, kern, stride=s, padding="same"),
                               _tf_conv(tf, x, kern, s, "same"), atol=1e-10)


def test_float32_path_matches_tf_and_keeps_dtype(tf):
    rng = np.random.default_rng(1)
    x = rng.random((40, 33, 3), dtype=np.float32)
    kern = rng.standard_normal((5, 5, 3, 8)).astype(np.float32)
    ours = conv.conv2d(x, kern, stride=2, padding="same", activation="relu")
    ref = np.maximum(tf.nn.conv2d(x[None], kern, strides=2, padding="SAME").numpy()[0], 0)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-4)


def test_two_d_kernel_on_gray_and_rgb():
    x = np.arange(25.0).reshape(5, 5)
    k = np.ones((3, 3))
    out = conv.conv2d(x, k)
    assert out.shape == (3, 3)
    assert out[0, 0] == pytest.approx(x[:3, :3].sum())
    rgb = np.stack([x, 2 * x, 3 * x], axis=2)
    out_rgb = conv.conv2d(rgb, k)  # the same 2D kernel on every channel, summed
    assert out_rgb.shape == (3, 3)
    assert out_rgb[0, 0] == pytest.approx(6 * x[:3, :3].sum())


@pytest.mark.parametrize("activation,fn", [("relu", lambda z: np.maximum(z, 0)), ("sigmoid", lambda z: 1 / (1 + np.exp(-z))),
                                           ("tanh", np.tanh), (None, lambda z: z), ("none", lambda z: z)])
def test_activations(activation, fn):
    rng = np.random.default_rng(3)
    x, k = rng.normal(size=(6, 6)), rng.normal(size=(3, 3))
    np.testing.assert_allclose(conv.conv2d(x, k, bias=0.3, activation=activation),
                               fn(conv.conv2d(x, k, bias=0.3)))


@pytest.mark.parametrize("seed", range(12))
def test_max_pool_matches_tf(tf, seed):
    rng = np.random.default_rng(100 + seed)
    h, w, c = int(rng.integers(4, 20)), int(rng.integers(4, 20)), int(rng.integers(1, 4))
    pool = int(rng.integers(1, 4))
    stride = int(rng.integers(1, 4))
    padding = ["valid", "same"][seed % 2]
    x = rng.normal(size=(h, w, c))
    ours = conv.max_pool2d(x, pool, stride, padding)
    ref = tf.nn.max_pool2d(x[None], ksize=pool, strides=stride, padding=padding.upper()).numpy()[0]
    np.testing.assert_allclose(ours, ref)


def test_max_pool_default_stride_is_pool_size():
    x = np.arange(16.0).reshape(4, 4)
    np.testing.assert_array_equal(conv.max_pool2d(x, 2), [[5, 7], [13, 15]])


@pytest.mark.parametrize("n,k,s,padding,expected", [
    (28, 3, 1, "valid", 26), (26, 2, 2, "valid", 13), (13, 3, 1, "valid", 11), (11, 2, 2, "valid", 5),
    (224, 3, 1, "same", 224), (7, 3, 2, "same", 4), (12, 5, 3, "valid", 3), (3, 5, 1, "valid", 0)])
def test_output_size(n, k, s, padding, expected):
    assert conv.output_size(n, k, s, padding) == expected


def test_bad_arguments_get_clear_messages():
    with pytest.raises(ValueError, match="Stride"):
        conv.conv2d(np.zeros((5, 5)), np.ones((3, 3)), stride=0)
    with pytest.raises(ValueError, match="does not fit"):
        conv.conv2d(np.zeros((4, 4)), np.ones((5, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        conv.conv2d(np.zeros((5, 5)), np.array([[1.0, np.nan], [0, 0]]))
    with pytest.raises(ValueError, match="empty"):
        conv.conv2d(np.zeros((5, 5)), np.zeros((0, 0)))
    with pytest.raises(ValueError, match="Padding"):
        conv.conv2d(np.zeros((5, 5)), np.ones((3, 3)), padding="full")
    with pytest.raises(ValueError, match="channels"):
        conv.conv2d(np.zeros((5, 5, 3)), np.ones((3, 3, 2)))
    with pytest.raises(ValueError, match="Unknown activation"):
        conv.conv2d(np.zeros((5, 5)), np.ones((3, 3)), activation="swishy")


def test_parse_kernel_refuses_empty_and_non_finite_cells():
    assert conv.parse_kernel([[1, "2"], [3.5, -4]]).tolist() == [[1, 2], [3.5, -4]]
    with pytest.raises(ValueError, match="Row 1, column 2 .* empty"):
        conv.parse_kernel([[1, None], [3, 4]])
    with pytest.raises(ValueError, match="Row 2, column 1 .* empty"):
        conv.parse_kernel([[1, 2], [float("nan"), 4]])
    with pytest.raises(ValueError, match="finite"):
        conv.parse_kernel([[1, 2], ["inf", 4]])
    with pytest.raises(ValueError, match="not a number"):
        conv.parse_kernel([[1, 2], ["abc", 4]])


# ----------------------------------------------------------------------------- presets, one known output each

STEP = np.tile(np.r_[np.zeros(4), np.ones(4)], (8, 1))  # dark left half, bright right half (vertical edge)
HSTEP = STEP.T.copy()                                   # dark top, bright bottom


def test_preset_identity_returns_input():
    x = np.random.default_rng(0).normal(size=(9, 9))
    np.testing.assert_allclose(conv.conv2d(x, conv.preset_kernel("identity", 5), padding="same"), x)


def test_preset_vertical_line_is_the_course_kernel_and_finds_a_line():
    np.testing.assert_array_equal(conv.preset_kernel("vertical line", 3), [[-1, 2, -1]] * 3)
    x = np.zeros((5, 7))
    x[:, 3] = 1.0
    out = conv.conv2d(x, conv.preset_kernel("vertical line", 3))
    np.testing.assert_allclose(out[:, 2], 6.0)   # centred on the line: 3 rows x 2
    np.testing.assert_allclose(out[:, 1], -3.0)  # beside it: 3 rows x -1


def test_preset_horizontal_edges_fires_on_a_horizontal_edge_only():
    k = conv.preset_kernel("horizontal edges", 3)
    assert np.abs(conv.conv2d(STEP, k)).max() == 0  # vertical edge: no response
    out = conv.conv2d(HSTEP, k)
    assert out.min() == -3.0 and out.max() == 0.0    # bright below: kernel's bottom row is -1


def test_preset_sobel_known_values():
    out = conv.conv2d(STEP, conv.preset_kernel("sobel x", 3))
    np.testing.assert_allclose(out[:, 2], 4.0)   # the edge column: 1+2+1
    np.testing.assert_allclose(out[:, 0], 0.0)
    np.testing.assert_array_equal(conv.preset_kernel("sobel x", 5)[2], [-6, -12, 0, 12, 6])
    np.testing.assert_allclose(conv.conv2d(HSTEP, conv.preset_kernel("sobel y", 3))[2, :], 4.0)


def test_preset_laplacian_zero_on_flat_and_ramps():
    ramp = np.add.outer(np.arange(9.0), 2 * np.arange(9.0))
    for size in (3, 5, 7):
        assert conv.preset_kernel("laplacian", size).sum() == 0
        np.testing.assert_allclose(conv.conv2d(ramp, conv.preset_kernel("laplacian", size)), 0.0, atol=1e-9)
    dot = np.zeros((5, 5))
    dot[2, 2] = 1.0
    assert conv.conv2d(dot, conv.preset_kernel("laplacian", 3), padding="same")[2, 2] == -4.0


@pytest.mark.parametrize("name", ["box blur", "gaussian", "sharpen"])
def test_smoothing_and_sharpen_keep_flat_regions(name):
    flat = np.full((9, 9), 0.7)
    for size in (3, 5, 7):
        np.testing.assert_allclose(conv.conv2d(flat, conv.preset_kernel(name, size)), 0.7)


def test_preset_gaussian_and_sharpen_known_values():
    np.testing.assert_allclose(conv.preset_kernel("gaussian", 3), np.outer([1, 2, 1], [1, 2, 1]) / 16)
    np.testing.assert_array_equal(conv.preset_kernel("sharpen", 3), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    dot = np.zeros((5, 5))
    dot[2, 2] = 1.0
    assert conv.conv2d(dot, conv.preset_kernel("box blur", 3), padding="same")[1, 1] == pytest.approx(1 / 9)


def test_preset_emboss_known_output():
    np.testing.assert_array_equal(conv.preset_kernel("emboss", 3), [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    flat = np.ones((4, 4))
    np.testing.assert_allclose(conv.conv2d(flat, conv.preset_kernel("emboss", 3)), 1.0)


def test_every_preset_has_every_size():
    for name in conv.PRESETS:
        for size in (3, 5, 7):
            k = conv.preset_kernel(name, size)
            assert k.shape == (size, size) and np.isfinite(k).all()
    with pytest.raises(ValueError):
        conv.preset_kernel("sobel x", 4)


# ----------------------------------------------------------------------------- the course example, layer maths

def test_course_worked_example_term_by_term():
    ex = conv.explain_position(conv.COURSE_PATCH, conv.COURSE_KERNEL, conv.COURSE_BIAS, activation="relu")
    assert ex.sum_of_products == pytest.approx(-1.4)
    assert ex.pre_activation == pytest.approx(-0.4)
    assert ex.output == 0.0
    assert conv.COURSE_PRINTED_PRE_ACTIVATION == -2.2


def test_explain_position_agrees_with_conv2d_everywhere():
    rng = np.random.default_rng(7)
    x, k = rng.normal(size=(9, 8)), rng.normal(size=(3, 3))
    for padding in ("valid", "same"):
        full = conv.conv2d(x, k, bias=0.5, stride=2, padding=padding, activation="tanh")
        for r in range(full.shape[0]):
            for c in range(full.shape[1]):
                ex = conv.explain_position(x, k, 0.5, 2, padding, "tanh", r, c)
                assert ex.output == pytest.approx(full[r, c])
    with pytest.raises(ValueError, match="outside"):
        conv.explain_position(x, k, row=50, col=0)


def test_layer_params_and_filter_bank():
    assert conv.conv_layer_params(3, 1, 32) == 320       # the course's first MNIST conv layer
    assert conv.conv_layer_params(3, 32, 64) == 18_496
    assert conv.conv_layer_params(3, 5, 1) - 1 == 45     # the 3x3x5 filter's 45 weights
    bank = conv.filter_bank(["sobel x", "identity"], 3, 3)
    assert bank.shape == (3, 3, 3, 2)
    maps = conv.conv2d(np.ones((6, 6, 3)), bank)
    assert maps.shape == (4, 4, 2)
    np.testing.assert_allclose(maps[..., 1], 3.0)  # identity summed over 3 channels


def test_formula_text():
    assert conv.formula_text(28, 3, 1, "valid").endswith("= 26")
    assert conv.formula_text(7, 3, 2, "same").endswith("= 4")


def test_run_playground_shapes():
    img = (np.random.default_rng(0).random((50, 40, 3)) * 255).astype(np.uint8)
    res = conv.run_playground(img, conv.preset_kernel("sobel x", 3), 0.1, 2, "valid", "relu", 2, 2)
    assert res.out_shape == (24, 19) and res.pooled_shape == (12, 9)
    assert res.feature_map.min() >= 0


# ----------------------------------------------------------------------------- inspecting one cell (issue 14)

def test_clamp_cell_keeps_the_cell_or_moves_it_to_the_edge():
    assert conv.clamp_cell(30, 40, (94, 94)) == (30, 40)        # still inside: unchanged, not reset to (0, 0)
    assert conv.clamp_cell(127, 108, (63, 54)) == (62, 53)      # stride 1 -> 4 on the photo: the last cell
    assert conv.clamp_cell(5, 200, (26, 26)) == (5, 25)         # one axis at a time
    assert conv.clamp_cell(-3, -1, (10, 12)) == (0, 0)
    assert conv.clamp_cell(7, 7, (1, 1)) == (0, 0)
    with pytest.raises(ValueError, match="at least one cell"):
        conv.clamp_cell(0, 0, (0, 5))


def test_cell_from_selection_reads_the_clicked_point():
    event = {"selection": {"points": [{"x": 18, "y": 28, "curve_number": 1, "point_index": 2650}],
                           "point_indices": [2650], "box": [], "lasso": []}}
    assert conv.cell_from_selection(event) == (28, 18)           # (row, column) = (y, x)
    assert conv.cell_from_selection({"selection": {"points": [{"x": 3.0, "y": 6.0}]}}) == (6, 3)
    assert conv.cell_from_selection({"selection": {"points": [], "box": []}}) is None
    assert conv.cell_from_selection({"selection": {"points": [{"x": None, "y": 2}]}}) is None
    assert conv.cell_from_selection(None) is None and conv.cell_from_selection({}) is None


def test_pick_step_limits_the_click_targets():
    assert conv.pick_step((94, 94)) == 1                          # 8,836 targets: every cell
    assert conv.pick_step((254, 216)) == 3                        # the photo: 85 x 72 = 6,120 targets
    assert conv.pick_step((100, 100), max_points=10_000) == 1
    assert conv.pick_step((101, 100), max_points=10_000) == 2
    with pytest.raises(ValueError):
        conv.pick_step((5, 5), max_points=0)


def test_robust_limits_ignore_a_few_extreme_cells():
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, size=(100, 100))
    z[0, :5] = 50.0                                               # 5 of 10,000 cells: below the 1 %
    lo, hi = conv.robust_limits(z)
    assert lo == -hi                                              # signed: symmetric, zero stays white
    assert 0.97 < hi < 1.0                                        # set by the bulk, not by the 50s
    np.testing.assert_allclose(conv.robust_limits(np.arange(101.0)), (1.0, 99.0))  # non-negative: percentiles
    assert conv.robust_limits(np.full((4, 4), 2.0)) == (1.5, 2.5)  # constant: a unit range around it
    assert conv.robust_limits(np.zeros((3, 3))) == (-0.5, 0.5)
    assert conv.robust_limits(-np.arange(101.0)) == (-99.0, 99.0)   # all negative: still centred on 0
    assert conv.robust_limits(np.arange(101.0), symmetric=True) == (-99.0, 99.0)
    assert conv.robust_limits(np.array([np.nan, np.inf])) == (0.0, 1.0)


def test_channel_names_and_sums():
    assert conv.channel_names(3) == ["red", "green", "blue"]
    assert conv.channel_names(1) == ["channel 1"] and conv.channel_names(2) == ["channel 1", "channel 2"]
    products = np.stack([np.full((3, 3), 1.0), np.full((3, 3), -2.0), np.eye(3)], axis=2)
    np.testing.assert_allclose(conv.channel_sums(products), [9.0, -18.0, 3.0])
    np.testing.assert_allclose(conv.channel_sums(np.ones((3, 3))), [9.0])


def test_rgb_explanation_splits_into_channel_sums_that_add_up():
    rng = np.random.default_rng(3)
    img = rng.random((12, 10, 3))
    e = conv.explain_position(img, conv.preset_kernel("sobel x", 3), 0.5, 2, "same", "relu", 3, 4)
    sums = conv.channel_sums(e.products)
    assert sums.shape == (3,) and e.patch.shape == (3, 3, 3)
    assert sums.sum() == pytest.approx(e.sum_of_products)
    np.testing.assert_allclose(sums[1], (e.patch[:, :, 1] * conv.preset_kernel("sobel x", 3)).sum())


def test_sizes_are_written_rows_first():
    assert conv.size_text((171, 256, 3)) == "171 × 256 × 3"
    assert conv.rows_first_detail("218x256 px, US Navy portrait", (256, 218, 3)) == \
        "256 × 218 px (rows × columns), US Navy portrait"
    assert conv.rows_first_detail("drawn by code", (96, 96)) == "drawn by code"
    assert conv.upload_note((800, 600), (256, 192)) == \
        "Uploaded 600 × 800 px (rows × columns), downscaled to 192 × 256"
    assert conv.upload_note((64, 32), (64, 32)) == "Uploaded 32 × 64 px (rows × columns)"


def test_sum_of_products_latex_breaks_into_lines():
    tex = conv.sum_of_products_latex(conv.COURSE_PATCH, conv.COURSE_KERNEL)
    lines = tex.removeprefix(r"\begin{aligned}").removesuffix(r"\end{aligned}").split(r" \\ ")
    assert lines == [r"\sum_i p_i f_i &= (-0.4)(-1) + (0.2)(2) + (2.1)(-1)",
                     r"&\quad + (0.1)(-1) + (1.7)(2) + (1.4)(-1)",
                     r"&\quad + (0)(-1) + (-0.4)(2) + (1.2)(-1)",
                     r"&= -1.4"]
    with pytest.raises(ValueError, match="same size"):
        conv.sum_of_products_latex(np.ones((3, 3)), np.ones((2, 2)))


def test_output_latex_lists_the_channel_sums_and_the_bias_once():
    tex = conv.output_latex(-0.1, 1.0, 0.9, "relu", 0.9, channel_totals=[0.2, -0.5, 0.2],
                            channel_labels=["red", "green", "blue"])
    assert r"\Sigma_{\text{red}} + \Sigma_{\text{green}} + \Sigma_{\text{blue}}" in tex
    assert "= 0.2000 + (-0.5000) + 0.2000 = -0.1000" in tex
    assert "1 + (-0.1000) = 0.9000" in tex and r"\text{relu}(0.9000) = 0.9000" in tex
    gray = conv.output_latex(2.0, 0.0, 2.0, "none", 2.0)
    assert r"\Sigma" not in gray and r"\sum_i p_i f_i &= 2.0000" in gray


def test_feature_map_figure_has_robust_colours_and_click_targets():
    from dnn2core import plots

    z = np.arange(20.0).reshape(4, 5) - 5.0
    fig = plots.feature_map_figure(z, "Feature map 4 × 5", cell=(1, 2), limits=(-3.0, 3.0), pick_step=2)
    heat, targets = fig.data
    assert (heat.zmin, heat.zmax, heat.hoverinfo) == (-3.0, 3.0, "skip")
    assert targets.type == "scatter" and targets.mode == "text"            # selectable, draws nothing
    assert list(zip(targets.y, targets.x)) == [(0, 0), (0, 2), (0, 4), (2, 0), (2, 2), (2, 4)]
    np.testing.assert_allclose(targets.customdata, [-5.0, -3.0, -1.0, 5.0, 7.0, 9.0])
    assert tuple(fig.layout.xaxis.range) == (-0.5, 4.5) and tuple(fig.layout.yaxis.range) == (3.5, -0.5)
    plain = plots.feature_map_figure(z)                                    # without: as before
    assert len(plain.data) == 1 and plain.data[0].zmid == 0.0 and plain.data[0].zmin is None
    grid = plots.maps_grid_figure(np.stack([z, 2 * z], axis=2), ["a", "b"], limits=[(-1.0, 1.0), (-2.0, 2.0)])
    assert [(t.zmin, t.zmax) for t in grid.data] == [(-1.0, 1.0), (-2.0, 2.0)]
