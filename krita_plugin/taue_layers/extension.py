"""Tools > Scripts > TAUE Layers: shows the docker (Krita's Settings > Dockers lists it too)."""

from __future__ import annotations

from krita import Extension

from .docker import DOCKER_ID

ACTION_ID = "taue_layers_show_docker"


class TAUEExtension(Extension):
    def __init__(self, parent):
        super().__init__(parent)

    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:  # noqa: N802 (Krita's name)
        action = window.createAction(ACTION_ID, "TAUE Layers", "tools/scripts")
        action.triggered.connect(lambda: show_docker(window))


def show_docker(window) -> bool:
    for docker in window.dockers():
        if docker.objectName() == DOCKER_ID:
            docker.show()
            docker.raise_()
            return True
    return False
