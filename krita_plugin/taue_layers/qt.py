"""The Qt binding Krita runs on: PyQt5 in Krita 5, PyQt6 in Krita 6. The docker imports Qt only from here.

The binding is the one Krita's own `DockWidget` is built on (a second Qt in Krita's process would crash it), so a
PyQt6 installed next to Krita 5 is never loaded. The docker writes enums scoped (`QLineEdit.EchoMode.Password`),
which both bindings accept; PyQt6 has no unscoped ones.
"""

from __future__ import annotations

from krita import DockWidget


def binding_of(widget_class) -> str:
    """'PyQt5' or 'PyQt6': the package of the first Qt class `widget_class` derives from."""
    for cls in widget_class.__mro__:
        package = cls.__module__.split(".")[0]
        if package in ("PyQt5", "PyQt6"):
            return package
    raise ImportError(f"{widget_class.__name__} is not a PyQt5 or PyQt6 widget: TAUE Layers needs Krita 5 or 6")


BINDING = binding_of(DockWidget)

if BINDING == "PyQt6":
    from PyQt6 import QtCore, QtGui, QtWidgets
else:
    from PyQt5 import QtCore, QtGui, QtWidgets

QT_VERSION = QtCore.QT_VERSION_STR
__all__ = ["BINDING", "QT_VERSION", "QtCore", "QtGui", "QtWidgets", "binding_of"]
