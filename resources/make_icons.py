"""Draw Hearth's icon with QPainter and write it as PNG, ICO (Windows) and ICNS (macOS).

Run from the repository root (no display needed):

    QT_QPA_PLATFORM=offscreen .venv/bin/python resources/make_icons.py

The generated files are committed, so building the app never needs this script.
ICO and ICNS are written here as containers of PNG images (both formats allow
that), so no imaging library beyond Qt is needed.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QPointF, QRectF, Qt
from PySide6.QtGui import (QBrush, QColor, QGuiApplication, QImage, QLinearGradient, QPainter,
                           QPainterPath, QPen, QRadialGradient)

HERE = Path(__file__).resolve().parent
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# ICNS entry types holding PNG data, by pixel size (the @2x types repeat a size).
ICNS_TYPES = ((b"icp4", 16), (b"icp5", 32), (b"icp6", 64), (b"ic07", 128), (b"ic08", 256),
              (b"ic09", 512), (b"ic10", 1024), (b"ic11", 32), (b"ic12", 64), (b"ic13", 256),
              (b"ic14", 512))


def _gradient(x1, y1, x2, y2, *stops) -> QLinearGradient:
    grad = QLinearGradient(x1, y1, x2, y2)
    for pos, color in stops:
        grad.setColorAt(pos, QColor(color))
    return grad


def _background(p: QPainter) -> None:
    """A warm dark tile with rounded corners; coordinates are on a 100×100 canvas."""
    p.setPen(Qt.NoPen)
    p.setBrush(QBrush(_gradient(0, 0, 0, 100, (0, "#4a3129"), (1, "#1c1210"))))
    p.drawRoundedRect(QRectF(4, 4, 92, 92), 21, 21)


def _arch_path(left: float, right: float, bottom: float, spring: float) -> QPainterPath:
    """A round-topped fireplace opening: straight sides up to ``spring``, then a half circle."""
    radius = (right - left) / 2
    path = QPainterPath(QPointF(left, bottom))
    path.lineTo(left, spring)
    path.arcTo(QRectF(left, spring - radius, 2 * radius, 2 * radius), 180, -180)
    path.lineTo(right, bottom)
    path.closeSubpath()
    return path


def _hearth(p: QPainter) -> None:
    """Stone surround, dark opening with a glow, and a hearth stone underneath."""
    p.setBrush(QBrush(_gradient(0, 20, 0, 86, (0, "#c99a78"), (1, "#7d5642"))))
    p.drawPath(_arch_path(17, 83, 84, 44))
    # Mortar lines give the surround its stones.
    p.setPen(QPen(QColor(60, 36, 28, 110), 1.2))
    for y in (52, 64, 76):
        p.drawLine(QPointF(17, y), QPointF(25, y))
        p.drawLine(QPointF(75, y), QPointF(83, y))
    p.setPen(Qt.NoPen)
    glow = QRadialGradient(50, 74, 34)
    glow.setColorAt(0, QColor("#ff9a3c"))
    glow.setColorAt(0.45, QColor("#8a2f10"))
    glow.setColorAt(1, QColor("#1a0c08"))
    p.setBrush(QBrush(glow))
    p.drawPath(_arch_path(26, 74, 84, 48))
    p.setBrush(QBrush(_gradient(0, 82, 0, 90, (0, "#d8b090"), (1, "#8d6650"))))
    p.drawRoundedRect(QRectF(12, 82, 76, 8), 2.5, 2.5)


def _logs(p: QPainter) -> None:
    """Two crossed logs, bark dark, cut ends pale so they read as wood."""
    for angle in (-13, 13):
        p.save()
        p.translate(50, 79)
        p.rotate(angle)
        p.setBrush(QBrush(_gradient(0, -3, 0, 3, (0, "#7a4424"), (1, "#3b1f0f"))))
        p.drawRect(QRectF(-16, -3, 32, 6))
        end = -16 if angle > 0 else 16
        p.setBrush(QColor("#d9a36b"))
        p.drawEllipse(QPointF(end, 0), 1.8, 3)
        p.restore()


def _flame_path(cx: float, base: float, width: float, height: float) -> QPainterPath:
    """A flame: round bottom, flickering sides, a tip leaning slightly right."""
    w, h = width / 2, height
    path = QPainterPath(QPointF(cx, base))
    path.cubicTo(cx - w * 1.05, base, cx - w * 1.1, base - h * 0.45, cx - w * 0.45, base - h * 0.7)
    path.cubicTo(cx - w * 0.55, base - h * 0.45, cx - w * 0.1, base - h * 0.5, cx - w * 0.05, base - h * 0.62)
    path.cubicTo(cx - w * 0.1, base - h * 0.85, cx + w * 0.2, base - h * 0.95, cx + w * 0.25, base - h)
    path.cubicTo(cx + w * 0.55, base - h * 0.8, cx + w * 1.15, base - h * 0.5, cx + w * 0.95, base - h * 0.25)
    path.cubicTo(cx + w * 0.85, base - h * 0.05, cx + w * 0.5, base, cx, base)
    return path


def _flames(p: QPainter, cx: float, base: float, scale: float) -> None:
    layers = ((1.0, "#ff4d0d", "#ff9a1f"), (0.68, "#ff9a1f", "#ffd447"), (0.38, "#ffe27a", "#fff8dc"))
    for size, outer, inner in layers:
        height = 46 * scale * size
        grad = _gradient(0, base, 0, base - height, (0, inner), (1, outer))
        p.setBrush(QBrush(grad))
        p.drawPath(_flame_path(cx, base, 30 * scale * size, height))


def draw(size: int) -> QImage:
    image = QImage(size, size, QImage.Format_ARGB32_Premultiplied)
    image.fill(Qt.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.Antialiasing)
    p.scale(size / 100, size / 100)
    _background(p)
    if size <= 32:
        _flames(p, 50, 86, 1.55)  # at tiny sizes only a big flame stays legible
    else:
        _hearth(p)
        _flames(p, 50, 79, 1.05)
        _logs(p)
    p.end()
    return image


def png_bytes(image: QImage) -> bytes:
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.WriteOnly)
    image.save(buffer, "PNG")
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """ICONDIR + one ICONDIRENTRY per size + the PNG images (256 is stored as 0)."""
    sizes = sorted(pngs)
    out = struct.pack("<HHH", 0, 1, len(sizes))
    offset = 6 + 16 * len(sizes)
    for s in sizes:
        out += struct.pack("<BBBBHHII", s % 256, s % 256, 0, 0, 1, 32, len(pngs[s]), offset)
        offset += len(pngs[s])
    return out + b"".join(pngs[s] for s in sizes)


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[s])) + pngs[s] for kind, s in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (fonts, image IO)
    sizes = sorted(set(ICO_SIZES) | {s for _, s in ICNS_TYPES})
    pngs = {s: png_bytes(draw(s)) for s in sizes}
    (HERE / "hearth.png").write_bytes(pngs[256])
    (HERE / "hearth-512.png").write_bytes(pngs[512])
    (HERE / "hearth.ico").write_bytes(ico_bytes({s: pngs[s] for s in ICO_SIZES}))
    (HERE / "hearth.icns").write_bytes(icns_bytes(pngs))
    print("wrote", ", ".join(f.name for f in sorted(HERE.glob("hearth*.*")) if f.suffix != ".desktop"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
