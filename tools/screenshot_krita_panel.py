"""Render the Krita docker (the real widget, Qt offscreen, with tests/fake_krita standing in for Krita) on the
embedded toy model, for the README: docs/krita-preview.png while a job runs (the composite phase's preview),
docs/krita-panel.png after two jobs (the selected result's picture, its layers, the history). The server has two
copies of the toy in a models folder and the toy's pink LoRA (tests.helpers.live.choices_server); the second job
runs on the second copy.

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

    from tests.helpers.live import choices_server

    folder, _ = build_krita(Path(tempfile.mkdtemp()))
    sys.path[:0] = [str(REPO / "tests" / "fake_krita"), str(folder)]
    from PyQt5.QtWidgets import QApplication

    app = QApplication([])
    import krita

    from taue_layers.docker import TAUEDocker

    with choices_server(Path(tempfile.mkdtemp()), preview_seconds=0) as server:  # as taue-server
        fake = krita.Krita.instance()
        fake.writeSetting("taue_layers", "url", server.url)
        fake.active = fake.createDocument(128, 128, "art", "RGBA", "U8", "", 72.0)
        docker = TAUEDocker()
        docker.resize(360, 1180)
        docker.random_seed.setChecked(False)
        docker.steps.setValue(30)
        while docker.lora_box.count() < 2:  # the server's lists
            app.processEvents()
            time.sleep(0.01)
        for foreground, background, seed, shot in (("a yellow circle", "a green background", 3, None),
                                                    ("a red star", "a blue striped background", 2, "krita-preview")):
            if shot:  # the second job on the folder's second model (the server switches to it)
                docker.model_box.setCurrentIndex(2)
            docker.foreground.setText(foreground)
            docker.background.setText(background)
            docker.seed.setValue(seed)
            docker.generate_button.click()
            while docker.panel.running or not docker.panel.events.empty():
                app.processEvents()
                caption = docker.caption.text()
                if shot and caption.startswith("Preview: Composite, step ") and \
                        int(caption.split("step ")[1].split("/")[0]) >= 10:  # the composite half-way or later
                    docker.grab().save(str(REPO / "docs" / f"{shot}.png"))
                    print(REPO / "docs" / f"{shot}.png", docker.caption.text())
                    shot = None
                time.sleep(0.005)
            for _ in range(20):
                app.processEvents()
                time.sleep(0.02)
        out = REPO / "docs" / "krita-panel.png"
        docker.grab().save(str(out))
        print(out, docker.message.text())


if __name__ == "__main__":
    main()
