"""What the packaged app carries: icons, the .desktop entry, the About text and dialog, build.spec.

Fast checks for the normal suite; building the app itself is tests/test_dist.py (`make dist-test`).
"""

from __future__ import annotations

import configparser
import os
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RES = ROOT / "resources"


def test_ico_holds_every_windows_size():
    data = (RES / "hearth.ico").read_bytes()
    reserved, kind, count = struct.unpack_from("<HHH", data)
    assert (reserved, kind) == (0, 1)
    sizes = []
    for i in range(count):
        width, _h, _c, _r, _planes, _bits, length, offset = struct.unpack_from("<BBBBHHII", data, 6 + 16 * i)
        assert data[offset:offset + 8] == b"\x89PNG\r\n\x1a\n" and offset + length <= len(data)
        sizes.append(width or 256)
    assert {16, 32, 48, 256} <= set(sizes)


def test_icns_is_a_complete_macos_icon():
    data = (RES / "hearth.icns").read_bytes()
    assert data[:4] == b"icns" and struct.unpack(">I", data[4:8])[0] == len(data)
    kinds, pos = set(), 8
    while pos < len(data):
        kind, length = data[pos:pos + 4], struct.unpack(">I", data[pos + 4:pos + 8])[0]
        assert length > 8
        kinds.add(kind)
        pos += length
    assert pos == len(data)
    assert {b"icp4", b"ic07", b"ic08", b"ic10"} <= kinds  # 16, 128, 256 and 1024 px


def test_png_icon_loads_in_qt(qapp):
    from PySide6.QtGui import QImage

    image = QImage(str(RES / "hearth.png"))
    assert (image.width(), image.height()) == (256, 256)
    assert image.pixelColor(128, 128).alpha() == 255  # drawn, not an empty canvas
    assert image.pixelColor(0, 0).alpha() == 0  # rounded corners are transparent


def test_desktop_entry_is_valid():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(RES / "hearth.desktop", encoding="utf-8")
    section = entry["Desktop Entry"]
    assert section["Type"] == "Application" and section["Name"] == "Hearth"
    assert section["Exec"] and section["Icon"] == "hearth"
    assert section["Categories"].endswith(";") and section["Terminal"] == "false"


def test_install_desktop_script_points_the_menu_at_the_app(tmp_path):
    app = tmp_path / "Hearth" / "Hearth"
    app.parent.mkdir()
    app.write_text("#!/bin/sh\n")
    app.chmod(0o755)
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "share"), "HOME": str(tmp_path)}
    subprocess.run(["sh", str(RES / "install-desktop.sh"), str(app)], check=True, env=env,
                   capture_output=True, timeout=60)
    written = (tmp_path / "share" / "applications" / "hearth.desktop").read_text()
    assert f'Exec="{app}"' in written
    assert (tmp_path / "share" / "icons" / "hicolor" / "256x256" / "apps" / "hearth.png").is_file()


def test_install_desktop_script_says_when_the_app_is_missing(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "share"), "HOME": str(tmp_path)}
    result = subprocess.run(["sh", str(RES / "install-desktop.sh"), str(tmp_path / "nope")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "cannot find the Hearth program" in result.stderr


@pytest.mark.parametrize("needle", ["SmolLM2-135M-Instruct", "Apache", "BSD-3-Clause", "LGPL-3.0", "PEFT",
                                    "pyqtgraph", "Transformers"])
def test_about_text_names_the_model_and_licences(needle):
    assert needle in (RES / "about.md").read_text(encoding="utf-8")


def test_about_dialog_shows_the_text_and_version(qtbot):
    from gui.about import AboutDialog

    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert "SmolLM2-135M-Instruct" in text and "LGPL" in text
    assert not text.startswith("Hearth")  # the title is shown once, above the text
    assert dialog.versions.text().startswith("Version ")
    assert not dialog.windowIcon().isNull()


def test_about_dialog_without_resources_still_opens(qtbot, monkeypatch, tmp_path):
    import gui.about

    monkeypatch.setattr(gui.about, "resource_path", lambda name: tmp_path / name)
    dialog = gui.about.AboutDialog()
    qtbot.addWidget(dialog)
    assert "missing" in dialog.text.toPlainText()


def test_build_spec_is_valid_python_and_its_resources_exist():
    source = (ROOT / "build.spec").read_text(encoding="utf-8")
    compile(source, "build.spec", "exec")
    for name in ("hearth.png", "hearth-512.png", "hearth.ico", "hearth.icns", "about.md", "hearth.desktop",
                 "install-desktop.sh"):
        assert f'"{name}"' in source and (RES / name).is_file(), name
