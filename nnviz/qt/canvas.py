"""The drawing canvas: a square to draw a digit on with the mouse or a tablet pen.

The drawing lives in a fixed 280 x 280 greyscale image (white ink on black, as MNIST
stores its digits), painted scaled to whatever square the widget has. Strokes are
anti-aliased with a round pen; the current stroke is redrawn whole from the image it
started on at every move, so its overlapping segments never darken their own edges.
The canvas knows nothing of models or sessions: it emits ``drawing_changed`` at every
change and whoever listens decides how often to look (the Draw panel: once a frame).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QImage,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPalette,
    QPen,
    QPointingDevice,
    QTabletEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

CANVAS_SIDE = 280  # the backing image's side in pixels, 10x MNIST's 28
# A digit drawn across most of the canvas is scaled ~200 px -> 20 px, so a 22 px pen
# ends up ~2.2 px wide: MNIST's own stroke width.
DEFAULT_BRUSH = 22
MIN_BRUSH, MAX_BRUSH = 4, 60
UNDO_LIMIT = 50  # 50 x 78 KB: memory is no concern, and nobody undoes further
# Suffixes of the image files the canvas accepts by drag and drop (what PIL reads).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
)
_INK, _PAPER = QColor(255, 255, 255), QColor(0, 0, 0)


def image_files(mime: QMimeData) -> list[str]:
    """The local image files among dragged or pasted URLs."""
    if not mime.hasUrls():
        return []
    return [
        url.toLocalFile()
        for url in mime.urls()
        if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in IMAGE_SUFFIXES
    ]


def grey_to_qimage(pixels: np.ndarray) -> QImage:
    """A uint8 (H, W) array as an owned greyscale QImage."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape
    return QImage(pixels.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def qimage_to_grey(image: QImage) -> np.ndarray:
    """A greyscale QImage as a uint8 (H, W) array (a copy)."""
    if image.format() != QImage.Format.Format_Grayscale8:
        image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    h, w, stride = image.height(), image.width(), image.bytesPerLine()
    return np.frombuffer(image.constBits(), np.uint8).reshape(h, stride)[:, :w].copy()


class DrawingCanvas(QWidget):
    """A square to draw a digit on: round anti-aliased brush, eraser, undo/redo, drops."""

    drawing_changed = Signal()  # at every change, many times a second during a stroke
    stroke_finished = Signal()
    history_changed = Signal()  # undo or redo became (un)available
    file_dropped = Signal(str)  # an image file was dropped on the canvas
    image_dropped = Signal(QImage)  # image data (not a file) was dropped

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image = QImage(CANVAS_SIDE, CANVAS_SIDE, QImage.Format.Format_Grayscale8)
        self._empty: tuple[int, bool] = (-1, True)  # (image cacheKey, is it empty)
        self._image.fill(_PAPER)
        self._undo: list[QImage] = []
        self._redo: list[QImage] = []
        self.brush_width = float(DEFAULT_BRUSH)
        self.erasing = False  # the left button erases too (the erase toggle)
        self._is_current = False
        self._hover: QPointF | None = None  # the mouse, in widget coordinates
        # The stroke in progress: the image it started on, its points, whether it erases.
        self._base: QImage | None = None
        self._points: list[tuple[QPointF, float]] = []
        self._stroke_erases = False
        self._stroke_button = Qt.MouseButton.NoButton

        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(140, 140)
        self.setMouseTracking(True)  # for the brush outline under the pointer
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAcceptDrops(True)
        self.setAttribute(Qt.WidgetAttribute.WA_TabletTracking, True)
        self.setToolTip(
            "Draw a digit. Right button or Erase: rub out. Esc clears, "
            "Ctrl+Z undoes, Ctrl+Shift+Z redoes. Drop an image file here to load it."
        )

        # Shortcuts live on the canvas (and on the panel that adds these actions), so
        # they work while the focus is here and never clash with another panel's keys.
        self.undo_action = self._shortcut("Undo", self.undo, [QKeySequence.StandardKey.Undo])
        self.redo_action = self._shortcut(
            "Redo", self.redo, [QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")]
        )
        self.clear_action = self._shortcut("Clear", self.clear, [QKeySequence("Escape")])
        self.history_changed.connect(self._update_actions)
        self._update_actions()

    def _shortcut(self, text: str, slot: object, keys: list) -> QAction:
        action = QAction(text, self)
        action.setShortcuts(keys)
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _update_actions(self) -> None:
        self.undo_action.setEnabled(self.can_undo)
        self.redo_action.setEnabled(self.can_redo)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return QSize(CANVAS_SIDE, CANVAS_SIDE)

    # ----- the drawing as data -----------------------------------------------------------
    def image_array(self) -> np.ndarray:
        """The drawing as float32 (280, 280) in [0, 1], ink high."""
        return self.pixels() / np.float32(255.0)  # one float32 array, not two

    def pixels(self) -> np.ndarray:
        """The drawing as uint8 (280, 280), ink high (a copy): preprocessing takes it in
        one pass, where floats are checked and clipped first."""
        return qimage_to_grey(self._image)

    def image(self) -> QImage:
        """The backing image (greyscale, white ink on black), implicitly shared: a
        drawing on either copy detaches it, as with any QImage copy."""
        return QImage(self._image)

    def is_empty(self) -> bool:
        # Asked on every paint: remembered per image (cacheKey changes when it is drawn on).
        key = self._image.cacheKey()
        if self._empty[0] != key:
            self._empty = (key, not qimage_to_grey(self._image).any())
        return self._empty[1]

    def set_ink(self, ink: np.ndarray) -> None:
        """Replace the drawing with a (280, 280) ink array in [0, 1] (undoable)."""
        ink = np.asarray(ink, dtype=np.float32)
        if ink.shape != (CANVAS_SIDE, CANVAS_SIDE):
            raise ValueError(f"the canvas holds {CANVAS_SIDE}x{CANVAS_SIDE}, not {ink.shape}")
        self._remember()
        self._image = grey_to_qimage(np.clip(ink * 255.0 + 0.5, 0, 255))
        self._changed()

    def set_current(self, current: bool) -> None:
        """Whether the drawing is what the views show now (the frame lights up)."""
        if current != self._is_current:
            self._is_current = current
            self.update()

    # ----- undo, redo, clear -------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def _remember(self) -> None:
        """Keep the drawing as it is now, before a change, for undo."""
        self._undo.append(self._image.copy())
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()
        self.history_changed.emit()

    def undo(self) -> None:
        """Back to the drawing before the last stroke, clear or load."""
        if self._undo and self._base is None:
            self._redo.append(self._image)
            self._image = self._undo.pop()
            self.history_changed.emit()
            self._changed()

    def redo(self) -> None:
        if self._redo and self._base is None:
            self._undo.append(self._image)
            self._image = self._redo.pop()
            self.history_changed.emit()
            self._changed()

    def clear(self) -> None:
        """Wipe the canvas (undoable); nothing happens on an empty one."""
        if self._base is None and not self.is_empty():
            self._remember()
            self._image = self._image.copy()
            self._image.fill(_PAPER)
            self._changed()

    def _changed(self, dirty: QRectF | None = None) -> None:
        """Repaint (only ``dirty``, in canvas pixels, if given) and tell the panel."""
        if dirty is None:
            self.update()
        else:
            # A stroke's new segment: repainting only its neighbourhood spares the scaled
            # drawing of the whole canvas on every mouse move.
            square = self.square()
            scale = square.width() / CANVAS_SIDE
            rect = QRectF(
                square.left() + dirty.left() * scale,
                square.top() + dirty.top() * scale,
                dirty.width() * scale,
                dirty.height() * scale,
            )
            self.update(rect.adjusted(-3, -3, 3, 3).toAlignedRect())
        self.drawing_changed.emit()

    # ----- strokes -----------------------------------------------------------------------
    def square(self) -> QRectF:
        """Where the drawing sits in the widget: the largest centred square."""
        side = float(min(self.width(), self.height()))
        return QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)

    def to_canvas(self, pos: QPointF) -> QPointF:
        """A widget position in canvas pixels."""
        square = self.square()
        scale = CANVAS_SIDE / max(square.width(), 1.0)
        return QPointF((pos.x() - square.left()) * scale, (pos.y() - square.top()) * scale)

    def begin_stroke(self, pos: QPointF, erase: bool, width: float | None = None) -> None:
        """Start a stroke at ``pos`` (widget coordinates)."""
        self._remember()
        self._base = self._image.copy()
        self._stroke_erases = erase
        self._points = [(self.to_canvas(pos), width or self.brush_width)]
        self._paint_stroke()

    def extend_stroke(self, pos: QPointF, width: float | None = None) -> None:
        if self._base is None:
            return
        point = self.to_canvas(pos)
        if point == self._points[-1][0]:
            return
        self._points.append((point, width or self.brush_width))
        self._paint_stroke()

    def end_stroke(self) -> None:
        if self._base is None:
            return
        self._base = None
        self._points = []
        self._stroke_button = Qt.MouseButton.NoButton
        self.stroke_finished.emit()

    def _paint_stroke(self) -> None:
        image = self._base.copy()
        with QPainter(image) as painter:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            colour = _PAPER if self._stroke_erases else _INK
            widths = {w for _, w in self._points}
            if len(self._points) == 1:
                ((centre, width),) = self._points
                painter.setPen(Qt.PenStyle.NoPen)
                painter.setBrush(colour)
                painter.drawEllipse(centre, width / 2, width / 2)
            elif len(widths) == 1:
                # One path, one pen: the joins are round and no pixel is inked twice.
                path = QPainterPath(self._points[0][0])
                for point, _ in self._points[1:]:
                    path.lineTo(point)
                painter.setPen(_pen(colour, widths.pop()))
                painter.drawPath(path)
            else:
                # A pen whose width follows the pressure: one segment at a time.
                for (a, wa), (b, wb) in zip(self._points, self._points[1:], strict=False):
                    painter.setPen(_pen(colour, (wa + wb) / 2))
                    painter.drawLine(a, b)
        self._image = image
        if len(self._points) == 1:  # a new stroke: the "Draw a digit here" hint goes
            self._changed()
            return
        # What changed: the last segment, and the brush outline, which follows the pointer.
        last = self._points[-2:]
        reach = max(w for _, w in last) / 2 + 2
        xs, ys = [p.x() for p, _ in last], [p.y() for p, _ in last]
        dirty = QRectF(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
        self._changed(dirty.adjusted(-reach, -reach, reach, reach))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        button = event.button()
        if self._base is not None or button not in (
            Qt.MouseButton.LeftButton,
            Qt.MouseButton.RightButton,
        ):
            return super().mousePressEvent(event)
        self._stroke_button = button
        self.begin_stroke(event.position(), self.erasing or button == Qt.MouseButton.RightButton)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        self._hover = event.position()
        if self._base is not None and event.buttons() & self._stroke_button:
            self.extend_stroke(event.position())
        else:
            self.update()  # the brush outline follows the pointer

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt)
        if self._base is not None and event.button() == self._stroke_button:
            self.extend_stroke(event.position())
            self.end_stroke()
        else:
            super().mouseReleaseEvent(event)

    def tabletEvent(self, event: QTabletEvent) -> None:  # noqa: N802 (Qt)
        # Pressure scales the pen: a light touch draws at 40% of the brush, a firm one
        # (0.75, where most pens sit when writing) at the full width.
        width = self.brush_width * (0.4 + 0.8 * max(0.0, min(1.0, event.pressure())))
        kind = event.type()
        if kind == QTabletEvent.Type.TabletPress and self._base is None:
            eraser = event.pointerType() == QPointingDevice.PointerType.Eraser
            self._stroke_button = event.button()
            erase = self.erasing or eraser or event.button() == Qt.MouseButton.RightButton
            self.begin_stroke(event.position(), erase, width)
        elif kind == QTabletEvent.Type.TabletMove:
            self._hover = event.position()
            self.extend_stroke(event.position(), width)
        elif kind == QTabletEvent.Type.TabletRelease:
            self.extend_stroke(event.position(), width)
            self.end_stroke()
        event.accept()  # no synthesised mouse events: the pen already drew

    def leaveEvent(self, event: object) -> None:  # noqa: N802 (Qt)
        self._hover = None
        self.update()
        super().leaveEvent(event)

    # ----- drag and drop -----------------------------------------------------------------
    # Only images are taken; anything else (a model file) is left to the main window.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt)
        if image_files(event.mimeData()) or event.mimeData().hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt)
        mime = event.mimeData()
        files = image_files(mime)
        if files:
            event.acceptProposedAction()
            self.file_dropped.emit(files[0])
        elif mime.hasImage():
            event.acceptProposedAction()
            self.image_dropped.emit(QImage(mime.imageData()))
        else:
            event.ignore()

    # ----- painting ----------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt)
        with QPainter(self) as painter:
            square = self.square()
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(square, self._image)
            pal = self.palette()
            frame = (
                pal.color(QPalette.ColorRole.Highlight)
                if self._is_current
                else pal.color(QPalette.ColorRole.Mid)
            )
            painter.setPen(QPen(frame, 3 if self._is_current else 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(square.adjusted(0.5, 0.5, -0.5, -0.5))
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            if self.is_empty() and self._base is None:
                painter.setPen(QColor(150, 150, 150))
                painter.drawText(square, Qt.AlignmentFlag.AlignCenter, "Draw a digit here")
            if self._hover is not None and square.contains(self._hover):
                radius = self.brush_width / 2 * square.width() / CANVAS_SIDE
                painter.setPen(QPen(QColor(128, 128, 128), 1))
                painter.drawEllipse(self._hover, radius, radius)


def _pen(colour: QColor, width: float) -> QPen:
    return QPen(
        colour, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin
    )
