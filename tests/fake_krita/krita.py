"""A stand-in for Krita's `krita` module, for unit tests of the TAUE Layers docker outside Krita.

Only the calls the plug-in makes, with Krita's semantics as the real end-to-end test sees them: child nodes listed
bottom to top, addChildNode(child, above), masks as child nodes, a PSD opened with its layer masks as transparency
masks (read with psd-tools), settings kept per group. tests/test_krita_e2e.py checks the same code in real Krita.
FAKE_KRITA_QT (PyQt5 or PyQt6) names the Qt binding it is built on, as Krita 5 and Krita 6 are.
"""

from __future__ import annotations

import copy
import importlib
import os

# the Qt this stand-in is built on, as Krita 5 (PyQt5) or Krita 6 (PyQt6) is: the tests choose it
QT_BINDING = os.environ.get("FAKE_KRITA_QT", "PyQt5")
QDockWidget = importlib.import_module(f"{QT_BINDING}.QtWidgets").QDockWidget


class DockWidget(QDockWidget):
    def canvasChanged(self, canvas):  # noqa: N802 (Krita's name)
        raise NotImplementedError


class DockWidgetFactoryBase:
    DockRight = 1


class DockWidgetFactory:
    def __init__(self, identifier, area, widget_class):
        self.identifier, self.area, self.widget_class = identifier, area, widget_class


class InfoObject:
    pass


class Extension:
    def __init__(self, parent):
        self.parent = parent


class Action:
    def __init__(self, identifier, text, menu):
        self.identifier, self.text, self.menu = identifier, text, menu
        self._slots = []
        self.triggered = self

    def connect(self, slot):
        self._slots.append(slot)

    def trigger(self):
        for slot in self._slots:
            slot()


class Selection:
    def __init__(self):
        self.rect = (0, 0, 0, 0)

    def select(self, x, y, w, h, value):
        self.rect = (x, y, w, h)

    def x(self):
        return self.rect[0]

    def y(self):
        return self.rect[1]

    def width(self):
        return self.rect[2]

    def height(self):
        return self.rect[3]


class Node:
    def __init__(self, name, node_type, visible=True):
        self._name, self._type, self._visible = name, node_type, visible
        self._children = []
        self.parent = None

    def name(self):
        return self._name

    def setName(self, name):  # noqa: N802
        self._name = name

    def type(self):
        return self._type

    def visible(self):
        return self._visible

    def setVisible(self, visible):  # noqa: N802
        self._visible = visible

    def childNodes(self):  # noqa: N802
        return list(self._children)

    def addChildNode(self, child, above):  # noqa: N802
        index = self._children.index(above) + 1 if above is not None else 0
        self._children.insert(index, child)
        child.parent = self
        return True

    def remove(self):
        self.parent._children.remove(self)
        self.parent = None
        return True

    def duplicate(self):
        twin = copy.deepcopy(self)
        twin.parent = None
        return twin


class Document:
    def __init__(self, width, height, name="", color_model="RGBA", depth="U8"):
        self._width, self._height, self._name = width, height, name
        self._model, self._depth = color_model, depth
        self.root = Node("root", "grouplayer")
        self.root.addChildNode(Node("Background", "paintlayer"), None)
        self._selection = None
        self.closed = False
        self.scaled_to = None

    def width(self):
        return self._width

    def height(self):
        return self._height

    def xRes(self):  # noqa: N802
        return 72.0

    def yRes(self):  # noqa: N802
        return 72.0

    def colorModel(self):  # noqa: N802
        return self._model

    def colorDepth(self):  # noqa: N802
        return self._depth

    def rootNode(self):  # noqa: N802
        return self.root

    def selection(self):
        return self._selection

    def setSelection(self, selection):  # noqa: N802
        self._selection = selection

    def createGroupLayer(self, name):  # noqa: N802
        return Node(name, "grouplayer")

    def createNode(self, name, node_type):  # noqa: N802
        return Node(name, node_type)

    def setBatchmode(self, on):  # noqa: N802
        pass

    def waitForDone(self):  # noqa: N802
        pass

    def refreshProjection(self):  # noqa: N802
        pass

    def scaleImage(self, width, height, xres, yres, strategy):  # noqa: N802
        self._width, self._height, self.scaled_to = width, height, (width, height, strategy)

    def close(self):
        self.closed = True
        Krita.instance().open_documents.remove(self)
        return True


class Window:
    def __init__(self, dockers=()):
        self.views = []
        self.actions = []
        self._dockers = list(dockers)

    def addView(self, document):  # noqa: N802
        self.views.append(document)

    def createAction(self, identifier, text, menu):  # noqa: N802
        self.actions.append(Action(identifier, text, menu))
        return self.actions[-1]

    def dockers(self):
        return list(self._dockers)


class Krita:
    _instance = None

    def __init__(self):
        self.settings = {}
        self.open_documents = []
        self.active = None
        self.window = None
        self.dock_widget_factories = []
        self.extensions = []
        self.opened = []  # documents opened from files, closed or not

    @classmethod
    def instance(cls):
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    @classmethod
    def reset(cls):
        cls._instance = cls()
        return cls._instance

    def readSetting(self, group, key, default):  # noqa: N802
        return self.settings.get((group, key), default)

    def writeSetting(self, group, key, value):  # noqa: N802
        self.settings[(group, key)] = value

    def addDockWidgetFactory(self, factory):  # noqa: N802
        self.dock_widget_factories.append(factory)

    def addExtension(self, extension):  # noqa: N802
        self.extensions.append(extension)

    def activeDocument(self):  # noqa: N802
        return self.active

    def activeWindow(self):  # noqa: N802
        return self.window

    def documents(self):
        return list(self.open_documents)

    def createDocument(self, width, height, name, model, depth, profile, resolution):  # noqa: N802
        document = Document(width, height, name, model, depth)
        self.open_documents.append(document)
        return document

    def openDocument(self, path):  # noqa: N802
        """A PSD read the way Krita's importer reads it: groups, pixel layers, layer masks as transparency
        masks, visibility."""
        from psd_tools import PSDImage

        psd = PSDImage.open(path)
        document = Document(psd.width, psd.height, path)
        document.root._children.clear()

        def build(layer):
            node = Node(layer.name, "grouplayer" if layer.is_group() else "paintlayer", layer.visible)
            for child in (layer if layer.is_group() else []):
                node.addChildNode(build(child), node.childNodes()[-1] if node.childNodes() else None)
            if layer.has_mask():
                node.addChildNode(Node("Transparency Mask", "transparencymask"), None)
            return node

        for layer in psd:
            document.root.addChildNode(build(layer), document.root.childNodes()[-1] if document.root.childNodes()
                                       else None)
        self.open_documents.append(document)
        self.opened.append(document)
        return document
