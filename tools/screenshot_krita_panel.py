"""Render the Krita docker (the real widget, Qt offscreen, with tests/fake_krita standing in for Krita) after one
job on the embedded toy model, for the README: docs/krita-panel.png.

    python tools/screenshot_krita_panel.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tools")]


def main() -> None:
    from package_plugins import build_krita

    from server.live import live_server

    folder, _ = build_krita(Path(tempfile.mkdtemp()))
    sys.path[:0] = [str(REPO / "tests" / "fake_krita"), str(folder)]
    from PyQt5.QtWidgets import QApplication

    app = QApplication([])
    import krita
    from taue_layers.docker import TAUEDocker

    with live_server(Path(tempfile.mkdtemp()), None, model="toy") as server:  # loads the toy as taue-server does
        while server.app.extensions["taue"]["engine"].state == "loading":
            time.sleep(0.1)
        fake = krita.Krita.instance()
        fake.writeSetting("taue_layers", "url", server.url)
        fake.active = fake.createDocument(64, 64, "art", "RGBA", "U8", "", 72.0)
        docker = TAUEDocker()
        docker.resize(340, 640)
        docker.foreground.setText("a red star")
        docker.background.setText("a blue striped background")
        docker.random_seed.setChecked(False)
        docker.seed.setValue(2)
        docker.generate_button.click()
        while docker.panel.running or not docker.panel.events.empty():
            app.processEvents()
            time.sleep(0.02)
        for _ in range(20):
            app.processEvents()
            time.sleep(0.02)
        out = REPO / "docs" / "krita-panel.png"
        docker.grab().save(str(out))
        print(out, docker.message.text())


if __name__ == "__main__":
    main()
