"""One choice of colours for signed values, drawn alike in every panel and named in every
legend; switching it (View menu, remembered in the settings) redraws them all."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QSettings

from nnviz.qt import colours
from nnviz.qt.panels.convolution import ConvolutionPanel
from nnviz.qt.panels.diagram import NetworkDiagramPanel
from nnviz.qt.panels.feature_maps import FeatureMapsPanel
from nnviz.qt.panels.filters import FiltersPanel
from nnviz.qt.panels.overlay import signed_colours
from nnviz.qt.panels.receptive_fields import ReceptiveFieldsPanel
from nnviz.qt.panels.weights import WeightsPanel

pytestmark = pytest.mark.usefixtures("row_major_images")
SAMPLES = importlib.resources.files("nnviz.sample_models")
LENET, MLP = str(SAMPLES / "lenet.nnviz"), str(SAMPLES / "mlp-3b1b.nnviz")
TOLERANCE = 4  # a 256-entry colour table puts a value at most one entry off


def rgb(colour) -> np.ndarray:  # noqa: ANN001 - a QColor or a colour name
    from PySide6.QtGui import QColor

    c = QColor(colour)
    return np.array([c.red(), c.green(), c.blue()])


def drawn(widget, item, x: float, y: float) -> np.ndarray:  # noqa: ANN001
    """The colour on screen at the centre of ``item``'s pixel (x, y)."""
    picture = widget.grab().toImage()  # first: painting puts a new view range in place
    point = widget.mapFromScene(item.mapToScene(QPointF(x + 0.5, y + 0.5)))
    return rgb(picture.pixelColor(point))


def expected(panel, value: float, levels) -> np.ndarray:  # noqa: ANN001
    """What ``value`` should look like between ``levels`` in the signed colours now."""
    lo, hi = (float(v) for v in levels)
    t = (value - lo) / (hi - lo)
    return colours.colormap(panel.palette()).map(t, mode="byte")[:3].astype(int)


def strongest(weights: np.ndarray, positive: bool) -> tuple[int, int]:
    """(row, col) of the largest (or most negative) weight."""
    flat = np.argmax(weights) if positive else np.argmin(weights)
    return tuple(int(i) for i in np.unravel_index(flat, weights.shape))


def weights_colour(panel: WeightsPanel, row: int, col: int) -> np.ndarray:
    """The Weights panel's colour of fc1's weight (row, col), zoomed in to it so the
    picture is not downsampled."""
    panel.plot.vb.setRange(xRange=(col - 4, col + 4), yRange=(row - 2, row + 2), padding=0)
    return drawn(panel.graphics, panel.image, col, row)


def fields_colour(panel: ReceptiveFieldsPanel, unit: int, pixel: int) -> np.ndarray:
    r, c = panel.tile_origin(unit)
    return drawn(panel.graphics, panel.mosaic, c + pixel % 28, r + pixel // 28)


def edge_colours(panel: NetworkDiagramPanel) -> set[tuple[int, int, int]]:
    """The colours (without their alpha) of every drawn edge."""
    found = set()
    for items in panel.edge_items.values():
        for item in items:
            if len(item.lines()):
                found.add(tuple(rgb(item.pen.color())))
    return found


@pytest.fixture
def four_panels(show_panel, open_session, data):
    """Weights, Receptive fields and Network on mlp-3b1b (one scale for the whole layer in
    Receptive fields), Filters on lenet; all drawn."""
    mlp, lenet = open_session(MLP, data), open_session(LENET, data)
    weights = show_panel(WeightsPanel, mlp, size=(740, 400))
    fields = show_panel(ReceptiveFieldsPanel, mlp, size=(740, 400))
    fields.per_layer.setChecked(True)
    fields.refresh()
    network = show_panel(NetworkDiagramPanel, mlp, size=(740, 400))
    filters = show_panel(FiltersPanel, lenet, size=(740, 400))
    return weights, fields, network, filters


def test_a_weight_has_the_same_colour_in_every_panel(four_panels):
    weights, fields, network, filters = four_panels
    scheme = colours.current()
    assert scheme == colours.BLUE_ORANGE  # the default: safe for colour-blind eyes
    w = weights.session.view_model.state_dict()["fc1.weight"].numpy()
    for positive in (True, False):
        unit, pixel = strongest(w, positive)
        # The same weight of fc1, in Weights and in Receptive fields: one colour, the
        # signed map's end on a scale both panels share.
        in_weights = weights_colour(weights, unit, pixel)
        in_fields = fields_colour(fields, unit, pixel)
        assert np.abs(in_weights - in_fields).max() <= TOLERANCE
        assert np.abs(in_weights - expected(weights, w[unit, pixel], weights.levels())).max() <= (
            TOLERANCE
        )
        r, _, b = in_weights
        assert r > b + 40 if positive else b > r + 40  # orange / blue
    # Network: positive edges in the positive colour, negative ones in the negative.
    assert edge_colours(network) == {tuple(rgb(scheme.positive)), tuple(rgb(scheme.negative))}
    # Filters (lenet's conv1): each filter's strongest weights in the same colours.
    c1 = filters.session.view_model.state_dict()["conv1.weight"].numpy()[:, 0]
    for positive in (True, False):
        o, y, x = np.unravel_index(np.argmax(c1) if positive else np.argmin(c1), c1.shape)
        tile_x, tile_y = filters._mosaic.origin(*divmod(int(o), filters._mosaic.cols))
        got = drawn(filters.graphics, filters.mosaic_image, tile_x + x, tile_y + y)
        want = expected(filters, c1[o, y, x], filters.mosaic_image.levels)
        assert np.abs(got - want).max() <= TOLERANCE
        assert got[0] > got[2] + 40 if positive else got[2] > got[0] + 40  # orange / blue


def legend_texts(weights, fields, network, filters) -> list[str]:  # noqa: ANN001
    return [
        weights.colour_bar.axis.labelText,
        fields.colour_bar.axis.labelText,
        fields.hint.text(),
        network.legend.text(),
        filters.colour_bar.axis.labelText,
    ]


def test_every_legend_names_which_side_is_which(four_panels, show_panel, open_session, data):
    for text in legend_texts(*four_panels):
        assert "orange" in text and "blue" in text, text
    bars = [panel.colour_bar.axis.labelText for panel in four_panels if panel.title != "Network"]
    assert all("orange +, blue \u2212" in text for text in bars)
    lenet = open_session(LENET, data)
    maps = show_panel(FeatureMapsPanel, lenet)
    assert maps.layers["conv1"].bar.axis.labelText == "orange +, blue \u2212"  # signed
    assert maps.layers["relu1"].bar.axis.labelText == ""  # never negative: one side only
    playground = show_panel(ConvolutionPanel, lenet)
    assert "orange +, blue \u2212" in playground.conv_picture.explanation.text()
    assert "(blue)" in playground.relu_picture.explanation.text()


def test_switching_to_3blue1brown_colours_redraws_every_panel(
    four_panels, show_panel, open_session, data, qtbot
):
    weights, fields, network, filters = four_panels
    w = weights.session.view_model.state_dict()["fc1.weight"].numpy()
    unit, pixel = strongest(w, True)
    before = weights_colour(weights, unit, pixel)
    maps = show_panel(FeatureMapsPanel, open_session(LENET, data))

    colours.choose("green-red")
    assert colours.current() == colours.GREEN_RED
    # Remembered in the app's settings, for the next start.
    settings = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "nnviz", "nnviz")
    assert settings.value(colours.SETTING) == "green-red"
    for panel in (*four_panels, maps):
        panel.refresh()
    green, red = rgb(colours.GREEN_RED.positive), rgb(colours.GREEN_RED.negative)
    after = weights_colour(weights, unit, pixel)
    assert np.abs(after - before).max() > 100
    assert after[1] > after[0] and after[1] > after[2]  # green
    assert np.abs(fields_colour(fields, unit, pixel) - after).max() <= TOLERANCE
    unit, pixel = strongest(w, False)
    most_negative = fields_colour(fields, unit, pixel)
    assert most_negative[0] > most_negative[1] and most_negative[0] > most_negative[2]  # red
    assert edge_colours(network) == {tuple(green), tuple(red)}
    assert {tuple(rgb(item.pen.color())) for item in network.highlight} == {
        tuple(green),
        tuple(red),
    }
    c1 = filters.session.view_model.state_dict()["conv1.weight"].numpy()[:, 0]
    o, y, x = np.unravel_index(np.argmax(c1), c1.shape)
    tile_x, tile_y = filters._mosaic.origin(*divmod(int(o), filters._mosaic.cols))
    got = drawn(filters.graphics, filters.mosaic_image, tile_x + x, tile_y + y)
    assert np.abs(got - expected(filters, c1[o, y, x], filters.mosaic_image.levels)).max() <= (
        TOLERANCE
    )
    assert got[1] > got[0]  # green, not orange
    for text in legend_texts(*four_panels):
        assert "green" in text and "red" in text and "orange" not in text, text
    assert maps.layers["conv1"].bar.axis.labelText == "green +, red \u2212"
    # The signed overlays (Why it, Fool it) take them too.
    overlay = signed_colours(np.array([[1.0, -1.0]], np.float32), 1.0)
    np.testing.assert_array_equal(overlay[0, :, :3], [green, red])


def test_the_menu_lists_both_choices_and_ticks_the_current_one(qtbot):
    menu = colours.signed_colours_menu()
    qtbot.addWidget(menu)
    actions = menu.actions()
    assert [a.data() for a in actions] == ["blue-orange", "green-red"]
    assert [a.isChecked() for a in actions] == [True, False]
    assert "colour-blind" in actions[0].text() and "3Blue1Brown" in actions[1].text()
    seen = []
    colours.changed.connect(seen.append)
    try:
        actions[1].trigger()
        assert seen == [colours.GREEN_RED] and colours.current() == colours.GREEN_RED
        assert [a.isChecked() for a in actions] == [False, True]
        colours.choose("blue-orange")  # chosen elsewhere: the menu follows
        assert [a.isChecked() for a in actions] == [True, False]
    finally:
        colours.changed.disconnect(seen.append)
    with pytest.raises(ValueError, match="unknown colours"):
        colours.choose("rainbow")


def test_an_unknown_stored_choice_falls_back_to_the_default():
    settings = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "nnviz", "nnviz")
    settings.setValue(colours.SETTING, "purple-teal")  # e.g. a hand-edited settings file
    assert colours.current() == colours.DEFAULT
