"""The filters and feature maps panels, offscreen, on real models and real MNIST digits."""

from __future__ import annotations

import functools
import importlib.resources

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QPalette

from nnviz.core.modelfile import load_model
from nnviz.core.training import TrainConfig, Trainer
from nnviz.qt import colours
from nnviz.qt.panels.feature_maps import FeatureMapsPanel
from nnviz.qt.panels.filters import FiltersPanel

pytestmark = pytest.mark.usefixtures("row_major_images")

LENET = str(importlib.resources.files("nnviz.sample_models") / "lenet.nnviz")


@pytest.fixture
def shown(show_panel):
    """Put a panel on screen, drawn once: ``shown(FiltersPanel, session)``."""
    return functools.partial(show_panel, size=(420, 700))


def _weight(session, name):
    return session.view_model.state_dict()[name].detach().numpy().copy()


def _assert_levels(image, lo, hi):
    """Levels cover [lo, hi], rounded up by at most 10% (so they hold still in training);
    symmetric about zero for signed values, from zero for non-negative ones."""
    got_lo, got_hi = (float(v) for v in image.levels)
    assert hi <= got_hi <= hi * 1.1
    assert got_lo == (-got_hi if lo < 0 else 0.0)


def _outputs(model, x):
    """Every child's output of a sequential model, computed here with plain torch."""
    out, result = x, {}
    with torch.inference_mode():
        for name, child in model.named_children():
            out = child(out)
            result[name] = out.numpy().copy()
    return result


# ----- filters -----------------------------------------------------------------------------
def test_filter_tiles_are_the_conv_weights_in_place(shown, open_session, data):
    s = open_session(LENET, data)
    panel = shown(FiltersPanel, s)
    assert panel.layer_names() == ["conv1", "conv2"]
    # conv1 reads one channel: its 6 filters wrap into a grid in reading order, 3 rows
    # of 2 in this tall panel (the grid that draws them largest).
    w1 = _weight(s, "conv1.weight")
    mosaic = panel._mosaic
    assert (mosaic.rows, mosaic.cols) == (3, 2)
    for o in range(6):
        np.testing.assert_array_equal(mosaic.tile(*divmod(o, 2)), w1[o, 0])
    m1 = np.abs(w1).max()
    _assert_levels(panel.mosaic_image, -m1, m1)

    panel.set_layer("conv2")
    panel.refresh()
    w2 = _weight(s, "conv2.weight")
    mosaic = panel._mosaic
    # Filters by rows, in-channels by columns, a 1-pixel transparent gap between tiles.
    assert np.shares_memory(panel.mosaic_image.image, mosaic.image)  # no copy per frame
    assert mosaic.image.shape == (16 * 6 - 1, 6 * 6 - 1)
    for o, i in [(0, 0), (0, 5), (5, 3), (15, 0), (15, 5)]:
        np.testing.assert_array_equal(mosaic.tile(o, i), w2[o, i])
        np.testing.assert_array_equal(mosaic.image[o * 6 : o * 6 + 5, i * 6 : i * 6 + 5], w2[o, i])
    assert np.isnan(mosaic.image[5::6]).all() and np.isnan(mosaic.image[:, 5::6]).all()
    assert np.isfinite(mosaic.image).sum() == w2.size
    _assert_levels(panel.mosaic_image, -np.abs(w2).max(), np.abs(w2).max())
    assert tuple(panel.colour_bar.levels()) == tuple(panel.mosaic_image.levels)
    # Hover names the filter, in-channel, kernel row/col and the weight there.
    centre = panel.tile_centre(5, 3)
    text = panel.describe_at(centre.x(), centre.y())
    assert "conv2" in text and "filter 5" in text and "in-channel 3" in text
    assert "row 2, col 2" in text and f"{w2[5, 3, 2, 2]:+.4f}" in text
    assert panel.describe_at(5.5, 0.5) == ""  # on a gap


def test_averaged_filters_are_the_mean_over_in_channels(shown, open_session, data):
    s = open_session(LENET, data)
    panel = shown(FiltersPanel, s)
    panel.set_layer("conv2")
    panel.average.setChecked(True)
    assert panel.refresh()
    mean = _weight(s, "conv2.weight").mean(axis=1)
    mosaic = panel._mosaic
    assert (mosaic.rows, mosaic.cols) == (6, 3)  # 16 filters, one tile each, no empty row
    for o in range(16):
        np.testing.assert_allclose(mosaic.tile(*divmod(o, 3)), mean[o], rtol=1e-6)
    _assert_levels(panel.mosaic_image, -np.abs(mean).max(), np.abs(mean).max())
    centre = panel.tile_centre(6)
    assert "filter 6" in panel.describe_at(centre.x(), centre.y())
    assert "mean over 6 in-channels" in panel.describe_at(centre.x(), centre.y())


def test_per_filter_scaling_gives_each_tile_its_own_max(shown, open_session, data):
    s = open_session(LENET, data)
    panel = shown(FiltersPanel, s)
    panel.set_layer("conv2")
    panel.per_filter.setChecked(True)
    assert panel.refresh()
    w2 = _weight(s, "conv2.weight")
    for o, i in [(0, 0), (7, 2), (15, 5)]:
        tile = panel._mosaic.tile(o, i)
        assert np.abs(tile).max() == pytest.approx(1.0)
        np.testing.assert_allclose(tile, w2[o, i] / np.abs(w2[o, i]).max(), rtol=1e-6)
    assert panel.mosaic_image.levels == pytest.approx((-1.0, 1.0))
    # The hover still tells the real weight, not the scaled one.
    centre = panel.tile_centre(7, 2)
    assert f"{w2[7, 2, 2, 2]:+.4f}" in panel.describe_at(centre.x(), centre.y())


def test_clicking_a_filter_enlarges_it_with_its_bias(shown, open_session, data, qtbot):
    s = open_session(LENET, data)
    panel = shown(FiltersPanel, s)
    panel.set_layer("conv2")
    panel.refresh()
    w2, b2 = _weight(s, "conv2.weight"), _weight(s, "conv2.bias")
    with qtbot.waitSignal(panel.filter_selected) as blocker:
        panel.select_filter(3, 2)
    assert blocker.args == ["conv2", 3]
    np.testing.assert_array_equal(panel.detail_image.image, w2[3, 2])
    # The same colours as its tile.
    np.testing.assert_array_equal(panel.detail_image.levels, panel.mosaic_image.levels)
    assert "filter 3" in panel.detail_label.text() and "in-channel 2" in panel.detail_label.text()
    assert f"bias {b2[3]:+.4f}" in panel.detail_label.text()
    assert panel.highlight.isVisible()
    assert panel.highlight.rect().center() == panel.tile_centre(3, 2)

    # A real click on another tile of the mosaic, once the new axes are laid out.
    qtbot.wait(50)
    vb = panel.mosaic_plot.getViewBox()
    where = panel.graphics.mapFromScene(vb.mapViewToScene(panel.tile_centre(11, 4)))
    with qtbot.waitSignal(panel.filter_selected) as blocker:
        qtbot.mouseClick(panel.graphics.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert blocker.args == ["conv2", 11]
    assert panel.selected == (11, 4)
    np.testing.assert_array_equal(panel.detail_image.image, w2[11, 4])
    assert f"bias {b2[11]:+.4f}" in panel.detail_label.text()
    # The mouse over a tile reads out the weight there.
    value = f"{w2[12, 1, 2, 2]:+.4f}"
    expected = f"in-channel 1 \u00b7 row 2, col 2 \u00b7 weight {value}"

    def hover_reads_the_centre():
        # Map again each time: the enlarged filter appearing may still move the layout.
        over = panel.graphics.mapFromScene(vb.mapViewToScene(panel.tile_centre(12, 1)))
        qtbot.mouseMove(panel.graphics.viewport(), over)
        return "filter 12" in panel.readout.text() and expected in panel.readout.text()

    qtbot.waitUntil(hover_reads_the_centre, timeout=3000)


def test_filters_follow_training_live(shown, open_session, data):
    s = open_session("lenet", data)  # untrained preset
    panel = shown(FiltersPanel, s)
    before = panel._mosaic.image.copy()
    trainer = Trainer(
        s.train_model, data, TrainConfig(batch_size=32, epochs=1, snapshot_interval_s=0.0)
    )
    for report in trainer.steps():
        if report.step == 15:
            break
    s.publish(trainer.latest_snapshot(), trainer.poll())
    assert panel.stale
    assert panel.refresh()
    w1 = _weight(s, "conv1.weight")
    assert not np.array_equal(panel._mosaic.image, before, equal_nan=True)
    for o in range(6):
        np.testing.assert_array_equal(panel._mosaic.tile(*divmod(o, panel._mosaic.cols)), w1[o, 0])


def test_a_model_without_convolutions_says_so(shown, open_session, data):
    s = open_session("mlp-3b1b", data)
    filters = shown(FiltersPanel, s)
    assert filters.layer_names() == []
    assert filters.pages.currentWidget() is filters.message
    assert "No convolution layers in this model" in filters.message.text()
    maps = shown(FeatureMapsPanel, s)
    assert maps.layer_names() == []
    assert maps.pages.currentWidget() is maps.message
    assert "No feature maps" in maps.message.text()
    # A conv model loaded afterwards brings the pictures back.
    s.set_model(load_model(LENET))
    assert filters.refresh() and filters.pages.currentIndex() == 0
    assert maps.refresh() and maps.pages.currentIndex() == 0


# ----- feature maps ------------------------------------------------------------------------
def _assert_maps_match(panel, expected):
    for name in panel.shown_layers():
        maps, mosaic = expected[name][0], panel.layers[name].mosaic
        for ch in range(maps.shape[0]):
            np.testing.assert_allclose(
                mosaic.tile(*divmod(ch, mosaic.cols)), maps[ch], rtol=1e-5, atol=1e-6
            )


def test_feature_map_tiles_are_the_layer_outputs_for_the_input(shown, open_session, data):
    s = open_session(LENET, data)
    panel = shown(FeatureMapsPanel, s)
    assert panel.layer_names() == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]
    assert panel.shown_layers() == panel.layer_names()  # all layers, one under another
    expected = _outputs(s.view_model, s.input_tensor())
    _assert_maps_match(panel, expected)
    conv1, relu1 = panel.layers["conv1"], panel.layers["relu1"]
    assert (conv1.mosaic.rows, conv1.mosaic.cols) == (2, 3)
    # Signed maps: levels symmetric about zero in the signed colours; ReLU maps from zero.
    m = np.abs(expected["conv1"]).max()
    _assert_levels(conv1.image, -m, m)
    _assert_levels(relu1.image, 0.0, expected["relu1"].max())
    assert conv1.signed and conv1.image.getColorMap().name == colours.SIGNED
    assert relu1.image.getColorMap().name == "viridis"
    assert not relu1.signed
    assert panel.layers["conv2"].mosaic.image.shape == (4 * 11 - 1, 4 * 11 - 1)
    centre = panel.tile_centre("relu1", 4)
    text = panel.describe_at("relu1", centre.x(), centre.y())
    assert "relu1" in text and "channel 4" in text and "y 14, x 14" in text
    assert f"{expected['relu1'][0, 4, 14, 14]:.4f}" in text

    panel.set_layer("pool2")
    assert panel.shown_layers() == ["pool2"]
    assert panel.refresh()
    _assert_maps_match(panel, expected)


def test_feature_maps_follow_the_input(shown, open_session, data, show_digit):
    s = open_session(LENET, data, index=0)  # a 7
    panel = shown(FeatureMapsPanel, s)
    before = panel.layers["relu1"].mosaic.image.copy()
    show_digit(s, data, 1)  # a 2
    assert panel.stale and panel.refresh()
    after = panel.layers["relu1"].mosaic.image
    assert not np.allclose(np.nan_to_num(before), np.nan_to_num(after))
    _assert_maps_match(panel, _outputs(s.view_model, s.input_tensor()))


def test_exported_lenet_shows_the_same_pictures_as_the_module(
    shown, open_session, data, exported_lenet
):
    module_session = open_session(LENET, data)
    export_session = open_session(exported_lenet, data)
    assert export_session.loaded.kind == "export"
    ours, theirs = shown(FiltersPanel, module_session), shown(FiltersPanel, export_session)
    assert theirs.layer_names() == ["conv1", "conv2"]
    for layer in ("conv1", "conv2"):
        for panel in (ours, theirs):
            panel.set_layer(layer)
            panel.refresh()
        np.testing.assert_array_equal(theirs._mosaic.image, ours._mosaic.image)
        np.testing.assert_array_equal(theirs.mosaic_image.levels, ours.mosaic_image.levels)
    theirs.select_filter(4, 1)
    assert "bias" in theirs.detail_label.text()
    assert not theirs.grab().isNull()  # paints, NaN gaps and all, without a warning

    ours, theirs = shown(FeatureMapsPanel, module_session), shown(FeatureMapsPanel, export_session)
    assert theirs.layer_names() == ours.layer_names()
    for name in ours.layer_names():
        np.testing.assert_allclose(
            theirs.layers[name].mosaic.image, ours.layers[name].mosaic.image, atol=1e-5
        )
    assert not theirs.grab().isNull()


def test_hover_over_a_feature_map_with_the_mouse(shown, open_session, data, qtbot):
    s = open_session(LENET, data)
    panel = shown(FeatureMapsPanel, s)
    panel.set_layer("conv1")
    panel.refresh()
    qtbot.wait(20)  # the view lays the layer out
    maps = panel.layers["conv1"]
    vb = maps.plot.getViewBox()
    where = panel.graphics.mapFromScene(vb.mapViewToScene(panel.tile_centre("conv1", 2)))
    qtbot.mouseMove(panel.graphics.viewport(), QPoint(where.x(), where.y()))
    qtbot.waitUntil(lambda: "channel 2" in panel.readout.text(), timeout=2000)
    assert "conv1" in panel.readout.text()


def test_dark_palette_and_real_weight_values_on_the_colour_bar(shown, open_session, data):
    s = open_session(LENET, data)
    filters, maps = shown(FiltersPanel, s), shown(FeatureMapsPanel, s)
    dark = QPalette(filters.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor(30, 30, 34))
    dark.setColor(QPalette.ColorRole.WindowText, QColor(225, 225, 228))
    for panel in (filters, maps):
        panel.setPalette(dark)
        panel.mark_stale()
        panel.refresh()
        assert panel.graphics.backgroundBrush().color() == QColor(30, 30, 34)
    assert filters.colour_bar.axis.textPen().color() == QColor(225, 225, 228)
    # Weights below 1 are labelled as they are, not as thousandths.
    assert filters.colour_bar.axis.autoSIPrefixScale == 1.0
    assert maps.layers["conv1"].bar.axis.autoSIPrefixScale == 1.0


def _drawn_tile_px(panel) -> float:
    """How large one filter (kw weights wide) is drawn on screen, in pixels."""
    panel.graphics.grab()  # painted: the view has taken its range
    mosaic = panel._mosaic
    per_weight = panel.mosaic_image.sceneBoundingRect().width() / mosaic.image.shape[1]
    return per_weight * mosaic.tile_w


@pytest.mark.parametrize("size", [(600, 400), (420, 700)])
def test_the_filter_grid_has_the_panel_until_a_filter_is_picked(shown, open_session, data, size):
    panel = shown(FiltersPanel, open_session(LENET, data), size=size)
    panel.set_layer("conv2")  # 16 filters x 6 in-channels of 5x5
    assert panel.refresh()
    # No empty "click to enlarge" half: the grid has the panel, each filter a usable size
    # (they were 9 px at 600 x 400, over half the panel left empty).
    assert not panel.detail.isVisible()
    assert _drawn_tile_px(panel) >= 16
    grid = panel.mosaic_image.sceneBoundingRect()
    assert max(grid.width() / panel.width(), grid.height() / panel.height()) >= 0.6
    # Along the panel's longer side: filters across a wide panel, down a tall one.
    wide = size[0] > size[1]
    assert (panel._mosaic.cols, panel._mosaic.rows) == ((16, 6) if wide else (6, 16))
    panel.select_filter(3, 2)
    assert panel.detail.isVisible()
    assert panel.detail.height() <= 0.4 * panel.splitter.height()
    assert _drawn_tile_px(panel) >= 10  # still readable beside the enlarged one
    x, y = panel._mosaic.origin(*panel._tile_of(3, 2))
    np.testing.assert_array_equal(
        panel._mosaic.image[y : y + 5, x : x + 5], _weight(panel.session, "conv2.weight")[3, 2]
    )
    assert "filter 3" in panel.describe_at(x + 2.5, y + 2.5)
    assert "in-channel 2" in panel.describe_at(x + 2.5, y + 2.5)
    panel.hide_detail.click()
    assert not panel.detail.isVisible() and panel.selected is None
