"""The PySide6 desktop app (``digitnet gui``).

| file            | what                                                                  |
|-----------------|-----------------------------------------------------------------------|
| app.py          | QApplication set-up, ``run``, ``--screenshot``                        |
| main_window.py  | the window: Recognise tab (draw, load images/folders), Train tab      |
| canvas.py       | the drawing canvas (strokes into a device-pixel QPixmap, undo)        |
| widgets.py      | probability bars, the network's 28x28 view, image with boxes, charts  |
| workers.py      | training and folder reading in QObject workers on QThreads            |
| backend.py      | the GUI's only calls into preprocess / inference (no Qt)              |

Importing this package does not import Qt; the engine and the CLI never import it.
"""

__all__: list[str] = []
