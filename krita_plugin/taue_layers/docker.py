"""The "TAUE Layers" docker: widgets only. What the buttons do lives in panel.Panel.

Pictures: while a job runs the picture is the server's preview of the running phase; afterwards it is the
selected result's composite, with its layers in a strip below. The history shows each result's composite; a double
click inserts it, its context menu inserts it, gives it a new background or opens its PSD.
"""

from __future__ import annotations

from dataclasses import replace

from krita import DockWidget, Krita

from .krita_host import KritaHost
from .panel import Form, Panel, View
from .qt import QtCore, QtGui, QtWidgets
from .taue_client.choices import LORA_SCALE, model_label, style_label, style_tooltip
from .taue_client.layers import KEY_COLORS, SEED_MAX

QCheckBox = QtWidgets.QCheckBox
QComboBox = QtWidgets.QComboBox
QDoubleSpinBox = QtWidgets.QDoubleSpinBox
QFormLayout = QtWidgets.QFormLayout
QHBoxLayout = QtWidgets.QHBoxLayout
QLabel = QtWidgets.QLabel
QLineEdit = QtWidgets.QLineEdit
QListWidget = QtWidgets.QListWidget
QListWidgetItem = QtWidgets.QListWidgetItem
QMenu = QtWidgets.QMenu
QProgressBar = QtWidgets.QProgressBar
QPushButton = QtWidgets.QPushButton
QSpinBox = QtWidgets.QSpinBox
QVBoxLayout = QtWidgets.QVBoxLayout
QWidget = QtWidgets.QWidget
Qt, QSize, QTimer = QtCore.Qt, QtCore.QSize, QtCore.QTimer

DOCKER_ID = "taue_layers_docker"
POLL_MS = 100
LIGHTS = {True: "color: #2e9d44", False: "color: #c0392b", None: "color: #888888"}
PICTURE_SIDE = 256  # the preview / selected result, at most (pixels)
THUMBNAIL_SIDE = 64  # a result in the history
STRIP_SIDE = 48  # a layer in the selected result's strip


def pixmap_of(png: bytes | None, side: int):
    """A PNG scaled to fit side x side (aspect kept), or None when there is nothing to show."""
    if not png:
        return None
    image = QtGui.QImage.fromData(png)
    if image.isNull():
        return None
    return QtGui.QPixmap.fromImage(image).scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation)


def fill(box, items: list, chosen: str, tooltips: dict | None = None) -> None:
    """Set a combo box's items [(value, label)] and select `chosen`; a chosen value not among them is kept as an
    item marked 'not on this server'."""
    box.clear()
    if chosen and chosen not in [value for value, _ in items]:
        items = [*items, (chosen, f"{chosen} (not on this server)")]
    for value, label in items:
        box.addItem(label, value)
        if tooltips and value in tooltips:
            box.setItemData(box.count() - 1, tooltips[value], Qt.ItemDataRole.ToolTipRole)
    box.setCurrentIndex(max(0, [value for value, _ in items].index(chosen) if chosen else 0))


class TAUEDocker(DockWidget, View):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("TAUE Layers")
        self.panel = Panel(KritaHost(Krita.instance()), self)
        self._build()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.panel.poll)
        self.timer.start(POLL_MS)
        self.panel.check_connection()

    # ------------------------------------------------------------------ widgets
    def _build(self) -> None:
        root = QWidget(self)
        layout = QVBoxLayout(root)

        connection = QFormLayout()
        self.url = QLineEdit(self.panel.url)
        self.token = QLineEdit(self.panel.token)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("only for a server started with --token")
        connect = QPushButton("Connect")
        connect.clicked.connect(lambda: self.panel.save_connection(self.url.text(), self.token.text()))
        self.light = QLabel("\u25cf Not checked yet")
        self.light.setWordWrap(True)
        self.light.setStyleSheet(LIGHTS[None])
        connection.addRow("Server", self.url)
        connection.addRow("Token", self.token)
        connection.addRow(connect, self.light)
        layout.addLayout(connection)

        form = QFormLayout()
        self.foreground = QLineEdit()
        self.foreground.setPlaceholderText("a red vintage bicycle")
        self.background = QLineEdit()
        self.background.setPlaceholderText("a cobblestone street at dusk")
        self.composite = QLineEdit()
        self.composite.setPlaceholderText("optional: the whole scene")
        self.negative = QLineEdit()
        self.negative.setPlaceholderText("optional")
        form.addRow("Foreground", self.foreground)
        form.addRow("Background", self.background)
        form.addRow("Composite", self.composite)
        form.addRow("Negative", self.negative)

        seed_row = QHBoxLayout()
        self.random_seed = QCheckBox("Random")
        self.random_seed.setChecked(True)
        self.seed = QSpinBox()
        self.seed.setRange(0, SEED_MAX)
        self.seed.setEnabled(False)
        self.random_seed.toggled.connect(lambda on: self.seed.setEnabled(not on))
        self.last_seed = QLabel("")
        seed_row.addWidget(self.random_seed)
        seed_row.addWidget(self.seed)
        seed_row.addWidget(self.last_seed)
        form.addRow("Seed", seed_row)

        self.model_box = QComboBox()
        self.model_box.setToolTip("The server's model for this job (its --models-dir, or its workers' models)")
        form.addRow("Model", self.model_box)
        self.style_box = QComboBox()
        self.style_box.setToolTip("A preset of model, LoRAs, sampler, steps and guidance (GET /styles); the "
                                  "fields below that are not Default win over it")
        form.addRow("Style", self.style_box)

        lora_row = QHBoxLayout()
        self.lora_box = QComboBox()
        self.lora_box.setToolTip("A LoRA of the server's --lora-dir")
        self.lora_scale = QDoubleSpinBox()
        self.lora_scale.setRange(*LORA_SCALE)
        self.lora_scale.setSingleStep(0.05)
        self.lora_scale.setValue(1.0)
        self.lora_scale.setToolTip("Its strength: 1 as trained, 0 no effect")
        add_lora = QPushButton("Add")
        add_lora.clicked.connect(lambda: self.panel.add_lora(self.lora_box.currentData() or "",
                                                             self.lora_scale.value()))
        lora_row.addWidget(self.lora_box, 1)
        lora_row.addWidget(self.lora_scale)
        lora_row.addWidget(add_lora)
        form.addRow("LoRA", lora_row)
        loras_row = QHBoxLayout()
        self.loras_label = QLabel("none")
        self.loras_label.setWordWrap(True)
        clear_loras = QPushButton("Clear")
        clear_loras.clicked.connect(self.panel.clear_loras)
        loras_row.addWidget(self.loras_label, 1)
        loras_row.addWidget(clear_loras)
        form.addRow("", loras_row)

        self.sampler_box = QComboBox()
        self.sampler_box.setToolTip("The sampler of all three phases")
        form.addRow("Sampler", self.sampler_box)
        self.steps = QSpinBox()
        self.steps.setRange(0, 200)
        self.steps.setSpecialValueText("Default")  # 0: the style's, else the model's
        self.steps.setValue(self.panel.remembered_steps())
        self.steps.setToolTip("Denoising steps per phase; Default: the style's, else the model's")
        form.addRow("Steps", self.steps)
        self._offered = False
        self.show_offer(self.panel.offer, self.panel.remembered_choice())
        self.panel.show_loras()  # what will be sent, remembered or not

        size_row = QHBoxLayout()
        self.document_size = QCheckBox("Document's")
        self.document_size.setChecked(True)
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box in (self.width_box, self.height_box):
            box.setRange(64, 2048)
            box.setSingleStep(8)
            box.setValue(1024)
            box.setEnabled(False)
        self.document_size.toggled.connect(
            lambda on: [box.setEnabled(not on) for box in (self.width_box, self.height_box)])
        size_row.addWidget(self.document_size)
        size_row.addWidget(self.width_box)
        size_row.addWidget(QLabel("x"))
        size_row.addWidget(self.height_box)
        form.addRow("Size", size_row)

        self.use_selection = QCheckBox("Place the object in the selection")
        self.use_selection.setChecked(True)
        form.addRow("", self.use_selection)

        objects_row = QHBoxLayout()
        self.objects = QLabel("none yet")
        self.objects.setWordWrap(True)
        self.add_object_button = QPushButton("Add object")
        self.add_object_button.setToolTip("Keep this foreground (in the selection) as one object and describe the "
                                          "next; each object gets its own layer")
        self.add_object_button.clicked.connect(self._add_object)
        clear_objects = QPushButton("Clear")
        clear_objects.clicked.connect(self.panel.clear_objects)
        objects_row.addWidget(self.objects, 1)
        objects_row.addWidget(self.add_object_button)
        objects_row.addWidget(clear_objects)
        form.addRow("Objects", objects_row)

        self.key_color = QComboBox()
        self.key_color.addItems(KEY_COLORS)
        self.key_color.setToolTip("The backdrop the objects are made on: blue or magenta for green objects")
        form.addRow("Key colour", self.key_color)
        layout.addLayout(form)

        self.generate_button = QPushButton("Generate")
        self.generate_button.clicked.connect(self._generate_or_cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("Ready")
        self.progress.setTextVisible(True)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.generate_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)

        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setMinimumHeight(PICTURE_SIDE // 2)
        self.picture.setToolTip("The running job's preview; afterwards the selected result")
        self.caption = QLabel("")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setWordWrap(True)
        layout.addWidget(self.picture)
        layout.addWidget(self.caption)
        self.strip = QHBoxLayout()  # the selected result's layers, bottom to top
        layout.addLayout(self.strip)

        layout.addWidget(QLabel("This session's results"))
        self.history = QListWidget()
        self.history.setIconSize(QSize(THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        self.history.setWordWrap(True)
        self.history.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.history.setMinimumHeight(2 * THUMBNAIL_SIDE + 16)
        self.history.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.history.customContextMenuRequested.connect(self._history_menu)
        self.history.itemDoubleClicked.connect(lambda item: self.insert_selected())
        self.history.currentRowChanged.connect(lambda row: self._show_selected())
        layout.addWidget(self.history)
        buttons = QHBoxLayout()
        insert = QPushButton("Insert")
        insert.clicked.connect(self.insert_selected)
        open_psd = QPushButton("Open PSD")
        open_psd.clicked.connect(self.open_selected)
        self.new_background_button = QPushButton("New background")
        self.new_background_button.setToolTip("The selected result's objects, unchanged, in a new scene: the "
                                              "Background field (and Seed) describe it")
        self.new_background_button.clicked.connect(self.new_background_for_selected)
        buttons.addWidget(insert)
        buttons.addWidget(open_psd)
        buttons.addWidget(self.new_background_button)
        layout.addLayout(buttons)
        layout.addStretch(1)
        self.entries = []
        self.setWidget(root)

    # ------------------------------------------------------------------ the history's actions
    def insert_selected(self) -> None:
        self.panel.insert_again(self.history.currentRow())

    def open_selected(self) -> None:
        self.panel.open_psd(self.history.currentRow())

    def new_background_for_selected(self) -> None:
        self.panel.new_background(self.form(), self.history.currentRow())

    def history_actions(self) -> list:
        """The context menu of a result: (text, action)."""
        return [("Insert", self.insert_selected), ("New background", self.new_background_for_selected),
                ("Open PSD", self.open_selected)]

    def _history_menu(self, position) -> None:
        item = self.history.itemAt(position)
        if item is None:
            return
        self.history.setCurrentItem(item)
        menu = QMenu(self.history)
        for text, action in self.history_actions():
            menu.addAction(text).triggered.connect(lambda checked=False, act=action: act())
        menu.popup(self.history.viewport().mapToGlobal(position))

    def _show_selected(self) -> None:
        """The selected result's composite in the picture, its layers in the strip (not while a job runs)."""
        row = self.history.currentRow()
        entry = self.entries[row] if 0 <= row < len(self.entries) else None
        while self.strip.count():
            widget = self.strip.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        if entry is None:
            return
        for name, png in entry.pictures:
            cell = QLabel()
            pixmap = pixmap_of(png, STRIP_SIDE)
            if pixmap is not None:
                cell.setPixmap(pixmap)
            cell.setToolTip(name)
            cell.setObjectName(f"layer: {name}")
            self.strip.addWidget(cell)
        self.strip.addStretch(1)
        if not self.panel.running:
            self._show_picture(entry.composite, entry.label)

    def _show_picture(self, png: bytes | None, caption: str) -> None:
        pixmap = pixmap_of(png, PICTURE_SIDE)
        if pixmap is None:
            self.picture.clear()
        else:
            self.picture.setMinimumHeight(pixmap.height())  # the whole picture, never cropped by the layout
            self.picture.setPixmap(pixmap)
        self.caption.setText(caption)

    def form(self) -> Form:
        return Form(foreground=self.foreground.text(), background=self.background.text(),
                    composite=self.composite.text(), negative=self.negative.text(),
                    random_seed=self.random_seed.isChecked(), seed=self.seed.value(), steps=self.steps.value(),
                    use_document_size=self.document_size.isChecked(), width=self.width_box.value(),
                    height=self.height_box.value(), use_selection=self.use_selection.isChecked(),
                    key_color=self.key_color.currentText(), model=self.model_box.currentData() or "",
                    style=self.style_box.currentData() or "", scheduler=self.sampler_box.currentData() or "")

    def _add_object(self) -> None:
        if self.panel.add_object(self.form()):
            self.foreground.clear()
            self.foreground.setFocus()

    def _generate_or_cancel(self) -> None:
        if self.panel.running:
            self.panel.cancel()
        else:
            self.panel.generate(self.form())

    # ------------------------------------------------------------------ View
    def show_connection(self, ok: bool, text: str) -> None:
        self.light.setText("\u25cf " + text)
        self.light.setStyleSheet(LIGHTS[ok])

    def show_progress(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(round(fraction * 1000)))
        self.progress.setFormat(text)

    def set_running(self, running: bool) -> None:
        self.generate_button.setText("Cancel" if running else "Generate")

    def show_message(self, kind: str, text: str) -> None:
        self.message.setStyleSheet({"error": "color: #c0392b", "warning": "color: #b9770e"}.get(kind, ""))
        self.message.setText(text)

    def show_seed(self, seed: int) -> None:
        self.last_seed.setText(f"last: {seed}")
        if self.random_seed.isChecked():
            self.seed.setValue(seed)  # untick Random to generate with it again

    def show_objects(self, labels: list) -> None:
        self.objects.setText(", ".join(labels) + " + Foreground" if labels else "none yet")

    def show_history(self, entries: list) -> None:
        self.entries = list(entries)
        self.history.clear()
        for entry in self.entries:
            item = QListWidgetItem(entry.label)
            pixmap = pixmap_of(entry.composite, THUMBNAIL_SIDE)
            if pixmap is not None:
                item.setIcon(QtGui.QIcon(pixmap))
            item.setToolTip(f"{entry.label}\nDouble-click: insert. Right-click: new background, open PSD.")
            self.history.addItem(item)
        self.history.setCurrentRow(0)
        self._show_selected()

    def show_preview(self, png: bytes | None, caption: str) -> None:
        if png is None:  # the job ended: back to the selected result
            self._show_picture(None, "")
            self._show_selected()
        else:
            self._show_picture(png, caption)

    def show_offer(self, offer, choice) -> None:
        """Fill the model, style, LoRA and sampler lists from the server's offer, keeping what is chosen (at first,
        what was chosen last time); a choice the server does not offer stays, marked, rather than being lost."""
        if self._offered:
            form = self.form()
            choice = replace(choice, model=form.model, style=form.style, scheduler=form.scheduler)
        self._offered = bool(offer.models or offer.schedulers)
        default = offer.default_model
        fill(self.model_box, [("", f"Server default ({default})" if default else "Server default")]
             + [(m["name"], model_label(m)) for m in offer.models], choice.model)
        fill(self.style_box, [("", "None")] + [(s["name"], style_label(s)) for s in offer.styles], choice.style,
             {s["name"]: style_tooltip(s) for s in offer.styles})
        fill(self.lora_box, [(name, name) for name in offer.loras] or [("", "none on this server")], "")
        fill(self.sampler_box, [("", f"Default ({offer.scheduler})" if offer.scheduler else "Default")]
             + [(name, name) for name in offer.schedulers], choice.scheduler)

    def show_loras(self, labels: list) -> None:
        self.loras_label.setText(", ".join(labels) if labels else "none")

    def canvasChanged(self, canvas) -> None:  # noqa: N802 (Krita's name)
        pass
