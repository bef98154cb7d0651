"""Switching units off from the panels: right-click menus, markers and the "Switched off"
panel, offscreen, on the sample models and real MNIST digits."""

from __future__ import annotations

import importlib.resources

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QPushButton

from nnviz.core.interventions import knockout_effects
from nnviz.core.modelfile import load_model
from nnviz.qt.panels.activations import ActivationsPanel
from nnviz.qt.panels.diagram import NetworkDiagramPanel
from nnviz.qt.panels.feature_maps import FeatureMapsPanel
from nnviz.qt.panels.filters import FiltersPanel
from nnviz.qt.panels.intervention_menu import MARKER_COLOUR
from nnviz.qt.panels.interventions import NOTHING_OFF, InterventionsPanel

pytestmark = [
    pytest.mark.usefixtures("row_major_images"),
    # A popup menu asks the window system to raise it and grab the keyboard, which the
    # offscreen platform cannot do; on a desktop these warnings do not occur.
    pytest.mark.qt_log_ignore("This plugin does not support (raise|grabbing the keyboard)"),
]

SAMPLES = importlib.resources.files("nnviz.sample_models")
MLP_3B1B, LENET = str(SAMPLES / "mlp-3b1b.nnviz"), str(SAMPLES / "lenet.nnviz")


@pytest.fixture
def shown(show_panel, qtbot):
    """Put a panel on screen, drawn once: ``shown(FeatureMapsPanel, session)``."""

    def show(panel_type, session):
        panel = show_panel(panel_type, session, size=(700, 600))
        qtbot.wait(20)  # the views lay themselves out
        return panel

    return show


def _right_click(qtbot, panel, graphics, view, point):
    """A real right-click at ``point`` of ``view``; returns the menu it opened (or None)."""
    where = graphics.mapFromScene(view.mapViewToScene(point))
    qtbot.mouseClick(
        graphics.viewport(), Qt.MouseButton.RightButton, pos=QPoint(where.x(), where.y())
    )
    menu = panel.interventions.menu
    if menu is not None:
        qtbot.waitUntil(menu.isVisible, timeout=2000)
    return menu


def _right_click_cell(qtbot, panel, point):
    """A real right-click at ``point`` (cell coordinates) of the activations' cells."""
    where = panel.cells.to_widget(point).toPoint()
    qtbot.mouseClick(panel.cells, Qt.MouseButton.RightButton, pos=where)
    menu = panel.interventions.menu
    if menu is not None:
        qtbot.waitUntil(menu.isVisible, timeout=2000)
    return menu


def _texts(menu):
    return [(a.text(), a.isEnabled()) for a in menu.actions() if a.text()]


def _by_hand(session, changes):
    """The prediction with ``changes`` made in plain torch, child by child."""
    out = session.input_tensor()
    with torch.inference_mode():
        for name, child in session.view_model.named_children():
            out = child(out)
            for unit, value in changes.get(name, {}).items():
                out = out.clone()
                out[:, unit] = value
    return torch.softmax(out, 1)[0].numpy()


def _most_hurtful(session, layer):
    target = int(np.argmax(session.probabilities()))
    return knockout_effects(session.view_model, session.input_tensor(), layer, target).ranked()[0]


# ----- right-click menus ---------------------------------------------------------------
def test_right_click_on_an_activation_cell_switches_the_unit_off_and_restores_it(
    shown, open_session, data, qtbot
):
    s = open_session(LENET, data)
    panel = shown(ActivationsPanel, s)
    before = s.probabilities().copy()
    unit = _most_hurtful(s, "relu3")
    strip = next(strip for strip in panel.strips if strip.layer.name == "relu3")
    row, col = divmod(unit, strip.cols)
    centre = QPointF(strip.rect.left() + col + 0.4, strip.rect.top() + row + 0.4)
    menu = _right_click_cell(qtbot, panel, centre)
    assert _texts(menu) == [
        (f"Switch off unit {unit} (relu3)", True),
        (f"Restore unit {unit}", False),
        ("Restore all switched-off units (0)", False),
    ]
    assert panel.interventions.clamp_box.value() == pytest.approx(
        s.activations()["relu3"][0, unit], abs=1e-3
    )  # the clamp box starts at what the unit outputs now
    with qtbot.waitSignal(s.interventions_changed):
        panel.interventions.action("Switch off").trigger()
    assert dict(s.interventions) == {"relu3": {unit: 0.0}}
    np.testing.assert_allclose(s.probabilities(), _by_hand(s, {"relu3": {unit: 0.0}}), rtol=1e-5)
    assert s.probabilities()[np.argmax(before)] < before[np.argmax(before)]
    assert panel.stale and panel.refresh()
    assert panel.shown_values()["relu3"][unit] == 0.0
    np.testing.assert_allclose(panel.probabilities, s.probabilities())
    assert panel.markers.marked == {("relu3", unit): 0.0}
    marker = panel.cells.to_widget(centre + QPointF(0.04, 0.04))  # the cell's coloured middle
    assert panel.cells.grab().toImage().pixelColor(marker.toPoint()) == MARKER_COLOUR
    assert "switched off" in panel.describe("relu3", unit)

    menu = _right_click_cell(qtbot, panel, centre)
    assert (f"Restore unit {unit}", True) in _texts(menu)
    assert ("Restore all switched-off units (1)", True) in _texts(menu)
    panel.interventions.action("Restore unit").trigger()
    assert not s.interventions
    assert panel.refresh() and panel.markers.marked == {}
    assert np.array_equal(s.probabilities(), before)


def test_right_click_on_a_feature_map_switches_its_channel_off(shown, open_session, data, qtbot):
    s = open_session(LENET, data, index=1)
    panel = shown(FeatureMapsPanel, s)
    panel.set_layer("conv1")
    panel.refresh()
    qtbot.wait(20)
    maps = panel.layers["conv1"]
    before = s.probabilities().copy()
    menu = _right_click(
        qtbot, panel, panel.graphics, maps.plot.getViewBox(), panel.tile_centre("conv1", 4)
    )
    assert _texts(menu)[0] == ("Switch off channel 4 (conv1)", True)
    panel.interventions.action("Switch off").trigger()
    assert dict(s.interventions) == {"conv1": {4: 0.0}}
    np.testing.assert_allclose(s.probabilities(), _by_hand(s, {"conv1": {4: 0.0}}), rtol=1e-5)
    assert not np.array_equal(s.probabilities(), before)
    assert panel.refresh()
    assert (maps.mosaic.tile(*divmod(4, maps.mosaic.cols)) == 0).all()  # its whole map
    assert maps.markers.marked == {4: 0.0}
    panel.set_layer(None)  # all layers: relu1 reads conv1, so its channel 4 is marked too
    assert panel.refresh()
    assert panel.layers["relu1"].markers.marked == {4: 0.0}
    assert panel.layers["conv2"].markers.marked == {}
    # Restore all from the menu of any map.
    menu = _right_click(
        qtbot,
        panel,
        panel.graphics,
        panel.layers["conv1"].plot.getViewBox(),
        panel.tile_centre("conv1", 0),
    )
    panel.interventions.action("Restore all").trigger()
    assert not s.interventions and np.array_equal(s.probabilities(), before)


def test_clamping_a_unit_from_the_menu(shown, open_session, data, qtbot):
    s = open_session(MLP_3B1B, data)
    panel = shown(ActivationsPanel, s)
    strip = next(strip for strip in panel.strips if strip.layer.name == "sigmoid2")
    centre = QPointF(strip.rect.left() + 4.4, strip.rect.top() + 0.4)  # unit 4
    _right_click_cell(qtbot, panel, centre)
    box = panel.interventions.clamp_box
    box.setValue(0.9)
    clamp = box.parent().findChild(QPushButton)  # the clamp row's only button
    assert clamp.text() == "Clamp"
    qtbot.mouseClick(clamp, Qt.MouseButton.LeftButton)
    assert dict(s.interventions) == {"sigmoid2": {4: 0.9}}
    np.testing.assert_allclose(s.probabilities(), _by_hand(s, {"sigmoid2": {4: 0.9}}), rtol=1e-5)
    assert panel.refresh()
    assert panel.shown_values()["sigmoid2"][4] == pytest.approx(0.9)
    assert panel.markers.marked == {("sigmoid2", 4): pytest.approx(0.9)}
    assert "clamped to 0.9" in panel.describe("sigmoid2", 4)


def test_right_click_on_a_filter_switches_off_its_output_channel(shown, open_session, data, qtbot):
    s = open_session(LENET, data)
    panel = shown(FiltersPanel, s)
    panel.set_layer("conv2")
    panel.refresh()
    qtbot.wait(50)
    vb = panel.mosaic_plot.getViewBox()
    menu = _right_click(qtbot, panel, panel.graphics, vb, panel.tile_centre(11, 2))
    assert _texts(menu)[0] == ("Switch off filter 11 (conv2)", True)
    panel.interventions.action("Switch off").trigger()
    assert dict(s.interventions) == {"conv2": {11: 0.0}}
    np.testing.assert_allclose(s.probabilities(), _by_hand(s, {"conv2": {11: 0.0}}), rtol=1e-5)
    assert panel.refresh()
    assert set(panel.markers.marked) == {(11, i) for i in range(6)}  # its row of tiles
    assert panel.selected is None  # a right-click does not enlarge


def test_right_click_on_a_hidden_neuron_of_the_diagram(shown, open_session, data, qtbot):
    s = open_session(MLP_3B1B, data)
    panel = shown(NetworkDiagramPanel, s)
    before = s.probabilities().copy()
    menu = _right_click(qtbot, panel, panel.graphics, panel.view, panel.neuron_position("fc2", 5))
    # The neuron's output is its sigmoid's: that is what the next layer reads.
    assert _texts(menu)[0] == ("Switch off neuron 5 (sigmoid2)", True)
    panel.interventions.action("Switch off").trigger()
    np.testing.assert_allclose(s.probabilities(), _by_hand(s, {"sigmoid2": {5: 0.0}}), rtol=1e-5)
    assert not np.array_equal(s.probabilities(), before)
    assert panel.refresh()
    assert panel.values_shown()["fc2"][5] == 0.0
    assert panel.markers.marked == {("fc2", 5): 0.0}
    # Output neurons are the prediction itself: no menu.
    menu.close()
    output = panel.view.mapViewToScene(panel.neuron_position("output", 3))
    where = panel.graphics.mapFromScene(output)
    qtbot.mouseClick(panel.graphics.viewport(), Qt.MouseButton.RightButton, pos=where)
    qtbot.wait(50)
    assert panel.interventions.menu is menu and not menu.isVisible()


def test_a_menu_acted_on_after_the_model_changed_reports_an_error(shown, open_session, data, qtbot):
    s = open_session(LENET, data)
    panel = shown(ActivationsPanel, s)
    strip = next(strip for strip in panel.strips if strip.layer.name == "relu3")
    _right_click_cell(qtbot, panel, QPointF(strip.rect.left() + 0.4, strip.rect.top() + 0.4))
    s.set_model(load_model(MLP_3B1B))  # the menu is still open on lenet's relu3
    with qtbot.waitSignal(s.error) as error:
        panel.interventions.action("Switch off").trigger()
    assert "no layer named 'relu3'" in error.args[0]
    assert not s.interventions and panel.refresh()  # and the panel carries on


# ----- the "Switched off" panel ----------------------------------------------------------
def test_the_panel_lists_what_is_switched_off_and_restores_it(shown, open_session, data, qtbot):
    s = open_session(LENET, data)
    panel = shown(InterventionsPanel, s)
    assert panel.table.topLevelItemCount() == 0 and panel.summary.text() == NOTHING_OFF
    assert not panel.restore_all_button.isEnabled()
    s.switch_off("conv1", 2)
    s.clamp("relu3", 7, 2.5)
    assert panel.stale and panel.refresh()
    rows = [
        [panel.table.topLevelItem(i).text(c) for c in range(3)]
        for i in range(panel.table.topLevelItemCount())
    ]
    assert rows == [["conv1", "channel 2", "switched off"], ["relu3", "unit 7", "clamped to 2.5"]]
    top = int(np.argmax(s.probabilities()))
    assert f"2 units switched off or clamped; the model now predicts {top}" in panel.summary.text()
    restore = panel.table.itemWidget(panel.table.topLevelItem(0), 3)
    qtbot.mouseClick(restore, Qt.MouseButton.LeftButton)
    assert dict(s.interventions) == {"relu3": {7: 2.5}}
    assert panel.refresh() and panel.table.topLevelItemCount() == 1
    qtbot.mouseClick(panel.restore_all_button, Qt.MouseButton.LeftButton)
    assert not s.interventions
    assert panel.refresh() and panel.table.topLevelItemCount() == 0
    assert panel.summary.text() == NOTHING_OFF


def test_ranking_a_layer_lists_the_most_hurtful_units_and_a_click_switches_one_off(
    shown, open_session, data, qtbot
):
    s = open_session(LENET, data, index=8)
    panel = shown(InterventionsPanel, s)
    assert [panel.layer_combo.itemData(i) for i in range(panel.layer_combo.count())] == [
        "conv1",
        "relu1",
        "pool1",
        "conv2",
        "relu2",
        "pool2",
        "fc1",
        "relu3",
    ]
    panel.set_layer("relu2")
    qtbot.mouseClick(panel.rank_button, Qt.MouseButton.LeftButton)
    target = int(np.argmax(s.probabilities()))
    expected = knockout_effects(s.view_model, s.input_tensor(), "relu2", target)
    assert panel.ranked_units() == expected.ranked()
    first = panel.ranking.topLevelItem(0)
    unit = expected.ranked()[0]
    assert first.text(1) == f"{expected.probabilities[unit, target]:.1%}"
    assert first.text(2) == f"{expected.loss_rises[unit]:+.3f}"
    assert float(first.text(2)) > 0  # its loss hurts: the target's probability falls
    rect = panel.ranking.visualItemRect(first)
    qtbot.mouseClick(panel.ranking.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert dict(s.interventions) == {"relu2": {unit: 0.0}}
    assert s.probabilities()[target] == pytest.approx(
        expected.probabilities[unit, target], rel=1e-4
    )
    assert panel.refresh()
    assert panel.ranking.topLevelItem(0).text(3) == "switched off"
    assert panel.ranked_units() == expected.ranked()  # the list holds still
    rect = panel.ranking.visualItemRect(panel.ranking.topLevelItem(0))
    qtbot.mouseClick(panel.ranking.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert not s.interventions  # clicked again: restored
    # A new digit: the ranking says it is out of date until ranked again.
    s.set_input(data.test.images[3] / 255.0, int(data.test.labels[3]), "#3")
    assert panel.refresh() and "Rank units again" in panel.rank_note.text()
    qtbot.mouseClick(panel.rank_button, Qt.MouseButton.LeftButton)
    assert "again" not in panel.rank_note.text()


def test_a_new_model_empties_the_panel_and_its_layers(shown, open_session, data):
    s = open_session(LENET, data)
    panel = shown(InterventionsPanel, s)
    panel.set_layer("relu1")
    panel.rank()
    s.switch_off("relu1", 0)
    s.set_model(load_model(MLP_3B1B))
    assert panel.refresh()
    assert panel.table.topLevelItemCount() == 0 and panel.ranking.topLevelItemCount() == 0
    assert [panel.layer_combo.itemData(i) for i in range(panel.layer_combo.count())] == [
        "fc1",
        "sigmoid1",
        "fc2",
        "sigmoid2",
    ]


def test_the_input_panels_prediction_follows_a_switch_off(shown, open_session, data):
    from nnviz.qt.panels.input import InputPanel

    s = open_session(MLP_3B1B, data, index=8)
    panel = shown(InputPanel, s)
    before = panel.predicted()
    # Switch off the hidden neurons whose loss hurts the prediction most until it flips.
    for unit in knockout_effects(s.view_model, s.input_tensor(), "sigmoid2", before[0]).ranked():
        s.switch_off("sigmoid2", unit)
        if int(np.argmax(s.probabilities())) != before[0]:
            break
    assert panel.stale and panel.refresh()
    top = int(np.argmax(s.probabilities()))
    assert panel.predicted() == (top, pytest.approx(float(s.probabilities()[top])))
    assert top != before[0] and f"{top}" in panel.prediction.text()
    s.restore_all()
    assert panel.stale and panel.refresh()
    assert panel.predicted() == before
