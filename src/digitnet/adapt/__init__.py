"""Teach a model one person's handwriting from a few labelled examples (``digitnet adapt``).

The base model (the bundled one unless another is given) is fine-tuned on the person's examples
with strong per-batch augmentation (small affine transforms, elastic warps, thicker and thinner
strokes), so a handful of digits stands for many ways of writing them. Two modes, chosen by what
is available:

``"replay"``
    MNIST training images (from ``data_dir`` / ``$DIGITNET_DATA`` / the user cache) are mixed
    into every batch (3 of every 4 images), so the network keeps what it knew (MNIST test
    accuracy within 0.3 points of the base in bench_adapt.py). The last convolution stage and
    the classifier are trained.
``"l2sp"``
    No MNIST data on this machine: only the classifier is trained, and its weights are pulled
    back toward the base's (L2-SP, Li et al. 2018): what keeps the model's knowledge when
    nothing else reminds it. MNIST accuracy drops more than with replay (docs/adapt.md).

Batch norm statistics and dropout stay as the base had them (the model runs in eval mode while
it learns): a few dozen examples cannot estimate batch statistics, and the base's calibration
(its stored temperature, where it has one) keeps describing a network whose internal scales did
not move. The loss uses the base recipe's label smoothing for the same reason.

Training is time-boxed (``seconds``, 60 by default, reading the examples included) and stops
early once the examples are fit: every example read right, un-augmented, and the augmented
copies read right too (see ``_fit``). Public API, kept stable for the GUI:

* ``read_examples(paths) -> ExampleSet``: files and folders labelled by name as
  ``predict --labels-from-names`` reads them; single-digit preprocessing, as predict does.
* ``ExampleSet.from_arrays(images, labels)``: examples already made into 28x28 inputs.
* ``adapt_model(examples, *, out, base=None, data_dir=None, seconds=60, seed=0, progress=None,
  should_stop=None) -> AdaptResult``; ``progress`` gets an ``AdaptProgress`` a few times a
  second, ``should_stop`` is polled every step (cancel: nothing is written).

Nothing here touches Qt; ``adapt_model`` may run on a worker thread.

Where things live: ``_examples`` (reading the labelled images), ``_results`` (the progress and
result records), ``_paths`` (where the adapted model goes, and what it may not overwrite) and
``_train`` (the settings chosen with bench_adapt.py, the training loop and the saved metadata).
"""

from __future__ import annotations

from ._examples import ExampleSet, NoExamplesError, read_examples
from ._paths import check_out, output_path
from ._results import AdaptMode, AdaptProgress, AdaptResult
from ._results import StopReason as StopReason
from ._train import adapt_model

__all__ = [
    "AdaptMode",
    "AdaptProgress",
    "AdaptResult",
    "ExampleSet",
    "NoExamplesError",
    "adapt_model",
    "check_out",
    "output_path",
    "read_examples",
]
