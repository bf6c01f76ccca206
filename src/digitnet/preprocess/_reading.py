"""Reading: prepared images -> the network -> one ``Reading`` per image (text, digits, error).

``classify`` runs the network over already prepared images (batched across images and their
candidates) and lets ``_choose`` pick the digits; ``read_digits`` prepares and classifies in
one call; ``read_bytes`` reads one image held in memory (an upload, same decoding limits as a
file); ``reading_to_json`` is the per-image object ``digitnet predict --json`` prints (and the
web service answers).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..errors import DigitnetError, ImageError
from ._analyse import prepare
from ._candidates import Prepared
from ._choose import PAIR_AT, PATH_BELOW, SPLIT_EACH, PairFindings, choose
from ._load import ImageSource
from ._pairs import pair_probability

__all__ = [
    "REJECTED",
    "DigitResult",
    "ProbaPredictor",
    "Reading",
    "classify",
    "read_bytes",
    "read_digits",
    "reading_to_json",
]

# The character a digit read below ``classify(..., reject_below=P)`` shows in ``Reading.text``.
REJECTED = "?"


class ProbaPredictor(Protocol):
    """What reading needs of a model (``digitnet.inference.Predictor`` has more)."""

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class DigitResult:
    digit: int
    confidence: float
    box: tuple[int, int, int, int]  # x, y, w, h in the caller's image pixels
    top: list[tuple[int, float]]  # the k most likely digits with their probabilities
    low_confidence: bool  # confidence under the caller's threshold
    image: np.ndarray = field(repr=False)  # the 28x28 input the network saw
    # All ten probabilities (float32, calibrated by the predictor), for callers that chart them.
    probs: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(10, np.float32))
    rejected: bool = False  # shown as REJECTED in the text (``reject_below``)

    def to_json(self) -> dict[str, Any]:
        return {
            "digit": self.digit,
            "confidence": round(self.confidence, 4),
            "box": list(self.box),
            "top": [[d, round(p, 4)] for d, p in self.top],
            "low_confidence": self.low_confidence,
        }


@dataclass(frozen=True)
class Reading:
    """What was read from one input: the text, each digit, or the error."""

    source: str
    text: str = ""  # the digits, a rejected one as REJECTED
    digits: tuple[DigitResult, ...] = ()
    message: str | None = None  # why no digit was found
    error: str | None = None  # why the input could not be read at all

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return reading_to_json(self)


def reading_to_json(
    reading: Reading, *, label: str | None = None, with_label: bool = False
) -> dict[str, Any]:
    """The per-image JSON object of ``digitnet predict --json`` (one line per image there):
    ``{"path", "text", "digits": [{"digit", "confidence", "box", "top", "low_confidence"}],
    "message", "error"}``, plus ``"label"`` and ``"correct"`` when ``with_label``
    (``--labels-from-names``). Every number is finite (the predictors refuse models that are
    not), so ``json.dumps(..., allow_nan=False)`` holds."""
    obj: dict[str, Any] = {
        "path": reading.source,
        "text": reading.text,
        "digits": [d.to_json() for d in reading.digits],
        "message": reading.message,
        "error": reading.error,
    }
    if with_label:
        obj["label"] = label
        obj["correct"] = None if label is None or not reading.ok else reading.text == label
    return obj


def _label(src: Any, i: int) -> str:
    if isinstance(src, (str, os.PathLike)):
        return os.fspath(src)
    return f"<image {i}>"


def read_digits(
    sources: Iterable[ImageSource],
    predictor: ProbaPredictor,
    *,
    single: bool = False,
    top_k: int = 3,
    min_confidence: float = 0.0,
    reject_below: float | None = None,
    deskew_digits: bool = False,
    batch_size: int = 512,
    names: Sequence[str] | None = None,
) -> list[Reading]:
    """Read the digits in each source; one ``Reading`` per source, in order.

    Inputs that cannot be read give a ``Reading`` with ``error`` set (the others are still
    read). Network calls are batched across images and digits, ``batch_size`` digits at a time.
    """
    srcs = list(sources)
    labels = list(names) if names is not None else [_label(s, i) for i, s in enumerate(srcs)]
    prepared: list[Prepared | str] = []
    for src, label in zip(srcs, labels, strict=True):
        try:
            prepared.append(prepare(src, single=single, name=label, deskew_digits=deskew_digits))
        except ImageError as exc:
            prepared.append(str(exc))
    return classify(
        prepared,
        labels,
        predictor,
        top_k=top_k,
        min_confidence=min_confidence,
        reject_below=reject_below,
        batch_size=batch_size,
    )


def read_bytes(
    data: bytes | bytearray | memoryview,
    predictor: ProbaPredictor,
    *,
    name: str = "<upload>",
    single: bool = False,
    top_k: int = 3,
    min_confidence: float = 0.0,
    reject_below: float | None = None,
) -> Reading:
    """Read one image held in memory (PNG, JPEG, ... bytes): the same decoding and limits as
    a file (pixel budget, one frame, EXIF orientation). A bad image gives a ``Reading`` whose
    ``error`` is the one-line message naming ``name``; nothing is raised for it."""
    return read_digits(
        [bytes(data)],
        predictor,
        single=single,
        top_k=top_k,
        min_confidence=min_confidence,
        reject_below=reject_below,
        names=[name],
    )[0]


def classify(
    prepared: Sequence[Prepared | str],
    labels: Sequence[str],
    predictor: ProbaPredictor,
    *,
    top_k: int = 3,
    min_confidence: float = 0.0,
    reject_below: float | None = None,
    batch_size: int = 512,
) -> list[Reading]:
    """Run the network over already prepared images (a string entry is that input's error).

    ``min_confidence``: digits read below it are marked ``low_confidence``. ``reject_below``
    (the reject option): digits read below it show as ``REJECTED`` ("?") in ``text``; their
    best guess and alternatives stay in ``digits``. Each ``DigitResult`` carries all ten
    probabilities (``probs``).
    """
    ok = [p for p in prepared if isinstance(p, Prepared) and p.crops]
    inputs = []
    for p in ok:
        inputs.append(p.inputs)
        inputs.extend(c.image[None] for _, _, c in p.joins)
    probs = _predict(predictor, inputs, batch_size)
    # The join/split rules were measured on uncalibrated probabilities: they decide at
    # temperature 1, and each chosen digit's confidence is reported calibrated again below.
    temp = float(getattr(predictor, "temperature", 1.0) or 1.0)
    probs = _reheat(probs, temp)
    # Splits second, and only where one can win: ``choose`` takes a split only when each half
    # is read at least SPLIT_EACH surer than the whole, impossible once the whole is read
    # above 1 - SPLIT_EACH (most digits). Those splits are left out (their crops are not even
    # made, for ``split_sources``): they could never be chosen.
    # Pieces that could be two digits (those with a split on offer), and joins, are also asked
    # of the pair detector (``_pair_findings``).
    splittable = [sorted({sp[0] for sp in p.splits} | {i for i, _ in p.split_sources}) for p in ok]
    pair_inputs = [p.crops[i].image for p, idx in zip(ok, splittable, strict=True) for i in idx]
    pair_inputs += [c.image for p in ok for _, _, c in p.joins]
    pair_all = pair_probability(np.stack(pair_inputs)) if pair_inputs else np.zeros(0)
    n_piece = sum(len(idx) for idx in splittable)
    at, at_pair, at_join = 0, 0, n_piece
    offered: list[tuple[list[Any], PairFindings]] = []
    split_inputs: list[np.ndarray] = []
    for p, idx in zip(ok, splittable, strict=True):
        rows = probs[at : at + len(p.crops)]
        at += len(p.crops) + len(p.joins)
        pieces_p = pair_all[at_pair : at_pair + len(idx)]
        at_pair += len(idx)
        joins_p = pair_all[at_join : at_join + len(p.joins)]
        at_join += len(p.joins)
        found = _pair_findings(p, dict(zip(idx, pieces_p, strict=True)), joins_p)
        unsure = {i for i in range(len(p.crops)) if float(rows[i].max()) <= 1.0 - SPLIT_EACH}
        unsure |= found.pieces
        cands = [sp for sp in p.splits if sp[0] in unsure]
        for i, source in p.split_sources:
            # Path cuts (narrow pieces, most single digits) only for pieces read at
            # PATH_BELOW or less or found to be two digits: touching 1s are read as a
            # hesitant 4 or 1, and the search is the costliest candidate.
            wanted = i in unsure and (
                source.whole is None or float(rows[i].max()) <= PATH_BELOW or i in found.pieces
            )
            pair = source.crops() if wanted else None
            if pair is not None:
                cands.append((i, *pair))
        # A piece found to be two digits is also cut on a finer grid of columns (once).
        first_finer = len(cands)
        for i in sorted(found.pieces):
            cands.extend((i, *pair) for pair in _finer(p.split_sources, i))
        found = dataclasses.replace(found, finer=frozenset(range(first_finer, len(cands))))
        offered.append((cands, found))
        split_inputs.extend(np.stack([a.image, b.image]) for _, a, b in cands + found.join_cuts)
    split_probs = _predict(predictor, split_inputs, batch_size)
    split_probs = _reheat(split_probs, temp)
    k = max(1, min(10, top_k))
    out: list[Reading] = []
    at, n_ok, at_split = 0, 0, 0
    for entry, label in zip(prepared, labels, strict=True):
        if isinstance(entry, str):
            out.append(Reading(label, error=entry))
            continue
        p = entry
        crops = p.crops
        if not crops:
            out.append(Reading(label, "", (), p.message))
            continue
        rows = probs[at : at + len(crops)]
        at += len(crops)
        join_rows = probs[at : at + len(p.joins)]
        at += len(p.joins)
        cands, found = offered[n_ok]
        n_ok += 1
        split_rows = split_probs[at_split : at_split + 2 * len(cands)]
        at_split += 2 * len(cands)
        cut_rows = split_probs[at_split : at_split + 2 * len(found.join_cuts)]
        at_split += 2 * len(found.join_cuts)
        crops, rows = choose(p, rows, join_rows, cands, split_rows, found, cut_rows)
        digits = []
        for crop, row in zip(crops, rows, strict=True):
            row = _reheat(row[None], 1.0 / temp)[0]
            order = np.argsort(-row, kind="stable")[:k]
            conf = float(row[order[0]])
            rejected = reject_below is not None and conf < reject_below
            digits.append(
                DigitResult(
                    int(order[0]),
                    conf,
                    crop.box,
                    [(int(d), float(row[d])) for d in order],
                    conf < min_confidence,
                    crop.image,
                    np.array(row, np.float32),
                    rejected,
                )
            )
        text = "".join(REJECTED if d.rejected else str(d.digit) for d in digits)
        out.append(Reading(label, text, tuple(digits), p.message))
    return out


def _finer(sources, i: int) -> list[tuple[Any, Any]]:
    """The finer grid of cuts of piece (or join) ``i``, made from its first split source."""
    first = next((src for j, src in sources if j == i), None)
    pairs = (extra.crops() for extra in (first.more_cuts() if first is not None else []))
    return [pair for pair in pairs if pair is not None]


def _pair_findings(p: Prepared, pieces_p: dict[int, float], joins_p: np.ndarray) -> PairFindings:
    """What the pair detector's probabilities mean for ``p``: the pieces to split (not the
    parts the width rule cut from one piece: a part with a neighbour's stroke looks like two
    digits; their join is asked instead), the joins found to be two digits, and those joins'
    cuts (their own usual cuts, then a finer grid)."""
    two = frozenset(i for i, q in pieces_p.items() if q >= PAIR_AT and i not in p.cut_parts)
    joins = joins_p >= PAIR_AT
    cuts = [(k, *pair) for k, src in p.join_splits if joins[k] and (pair := src.crops())]
    first_finer = len(cuts)
    for k in map(int, np.flatnonzero(joins)):
        cuts.extend((k, *pair) for pair in _finer(p.join_splits, k))
    return PairFindings(two, joins, cuts, finer_joins=frozenset(range(first_finer, len(cuts))))


def _reheat(probs: np.ndarray, temp: float) -> np.ndarray:
    """softmax(z / T) -> softmax(z): each row raised to the power T and renormalised."""
    if temp == 1.0 or not len(probs):
        return probs
    q = np.power(np.clip(probs.astype(np.float64), 1e-300, None), temp)
    return (q / q.sum(axis=1, keepdims=True)).astype(np.float32)


def _predict(predictor: ProbaPredictor, inputs: list[np.ndarray], batch_size: int) -> np.ndarray:
    """Probabilities for the concatenated ``inputs``, ``batch_size`` images per network call."""
    stack = np.concatenate(inputs) if inputs else np.zeros((0, 28, 28), np.float32)
    if not len(stack):
        return np.zeros((0, 10), np.float32)
    parts = [
        np.asarray(predictor.predict_proba(stack[i : i + batch_size]), dtype=np.float32)
        for i in range(0, len(stack), batch_size)
    ]
    probs = np.concatenate(parts)
    if probs.shape != (len(stack), 10):
        raise DigitnetError(f"predictor returned shape {probs.shape}, expected ({len(stack)}, 10)")
    if not np.isfinite(probs).all():
        # Never NaN into a reading (or JSON): a model broken for some inputs only.
        where = getattr(predictor, "path", "the model")
        raise DigitnetError(f"{where}: the model gave non-finite probabilities (NaN or inf)")
    return probs
