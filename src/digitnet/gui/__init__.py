"""The PySide6 desktop app (``digitnet gui``).

| file                 | what                                                               |
|----------------------|--------------------------------------------------------------------|
| app.py               | QApplication set-up, ``run``, ``--screenshot``                     |
| main_window.py       | the window: composes the two pages, menus, settings, drops         |
| recognise_page.py    | Recognise: draw, the reading, corrections; composes the three below |
| model_bar.py         | the model picker (bundled, recent checkpoints, any file)           |
| images_panel.py      | one image with its boxes, or a folder's results table              |
| corrections_panel.py | "My handwriting": corrections kept, removed, "Adapt" to them       |
| corrections.py       | the corrections folder (``<digits>_<timestamp>.png``; no Qt)       |
| train_page.py        | Train: progress, charts, result, resume                            |
| train_form.py        | the settings form, built from ``TrainConfig``                      |
| canvas.py            | the drawing canvas (strokes into a device-pixel QPixmap, undo)     |
| widgets.py           | probability bars, the network's 28x28 view, image with boxes, charts |
| workers.py           | training, folder reading, adapting: QObject workers on QThreads    |
| common.py            | the error guard, number formats, the per-user data folder          |
| results.py           | the typed results the doorway hands out (no Qt)                    |
| backend.py           | the doorway: the GUI's only calls into the library (no Qt)         |

Only ``backend.py`` imports the library (tests/test_architecture.py checks it). Importing this
package does not import Qt; the engine and the CLI never import it.
"""

__all__: list[str] = []
