"""Which panels the main window has, where each goes, and which share a dock as tabs.

Adding a panel is a new module with a ``Panel`` subclass and one line here. This module
imports every panel (and through them torch and pyqtgraph), so the main window reads it
only once the window is on screen.
"""

from __future__ import annotations

from PySide6.QtCore import Qt

from nnviz.qt.panels.activations import ActivationsPanel
from nnviz.qt.panels.base import Panel
from nnviz.qt.panels.canvas import CanvasPanel
from nnviz.qt.panels.compare import ComparePanel
from nnviz.qt.panels.convolution import ConvolutionPanel
from nnviz.qt.panels.diagram import NetworkDiagramPanel
from nnviz.qt.panels.distributions import DistributionsPanel
from nnviz.qt.panels.feature_maps import FeatureMapsPanel
from nnviz.qt.panels.filters import FiltersPanel
from nnviz.qt.panels.fool import FoolPanel
from nnviz.qt.panels.history import HistoryPanel
from nnviz.qt.panels.input import InputPanel
from nnviz.qt.panels.interventions import InterventionsPanel
from nnviz.qt.panels.layer_health import LayerHealthPanel
from nnviz.qt.panels.loss import LossPanel
from nnviz.qt.panels.receptive_fields import ReceptiveFieldsPanel
from nnviz.qt.panels.summary import SummaryPanel
from nnviz.qt.panels.teach import TeachPanel
from nnviz.qt.panels.training import TrainingPanel
from nnviz.qt.panels.weights import WeightsPanel
from nnviz.qt.panels.why import WhyPanel

LEFT = Qt.DockWidgetArea.LeftDockWidgetArea
RIGHT = Qt.DockWidgetArea.RightDockWidgetArea
TOP = Qt.DockWidgetArea.TopDockWidgetArea
BOTTOM = Qt.DockWidgetArea.BottomDockWidgetArea
# (panel, dock area, tab group): panels of one group share a dock as tabs, the first
# one in front. The left column holds the controls; the top row follows training and
# the weights; the bottom row is about one input: the Draw panel beside the views of
# what the network does with it. Compare and Convolution sit in the top row so they
# show beside the canvas while a person draws.
PANELS: list[tuple[type[Panel], Qt.DockWidgetArea, str | None]] = [
    (TrainingPanel, LEFT, None),
    (InputPanel, LEFT, None),
    (HistoryPanel, LEFT, None),
    (LossPanel, TOP, "progress"),
    (SummaryPanel, TOP, "progress"),
    (DistributionsPanel, TOP, "progress"),
    (LayerHealthPanel, TOP, "progress"),
    (ComparePanel, TOP, "progress"),
    (WeightsPanel, TOP, "weights"),
    (ReceptiveFieldsPanel, TOP, "weights"),
    (FiltersPanel, TOP, "weights"),
    (ConvolutionPanel, TOP, "weights"),
    (CanvasPanel, BOTTOM, None),
    (ActivationsPanel, BOTTOM, "insides"),
    (FeatureMapsPanel, BOTTOM, "insides"),
    (NetworkDiagramPanel, BOTTOM, "insides"),
    (InterventionsPanel, BOTTOM, "insides"),
    (WhyPanel, BOTTOM, "insides"),
    (FoolPanel, BOTTOM, "insides"),
    (TeachPanel, BOTTOM, "insides"),
]
LAYOUT_VERSION = 12  # bump when PANELS change so an old saved layout is not restored
