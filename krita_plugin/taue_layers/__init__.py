"""TAUE Layers for Krita: a docker that asks a TAUE server for a foreground, a matching background and the
harmonised composite, and adds them to the document as layers."""

from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

from .docker import DOCKER_ID, TAUEDocker
from .extension import TAUEExtension

Krita.instance().addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, TAUEDocker))
Krita.instance().addExtension(TAUEExtension(Krita.instance()))
