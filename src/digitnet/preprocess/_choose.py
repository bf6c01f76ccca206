"""The reading's choice: which pieces are one digit, which piece is two (dynamic programming).

Given the network's probabilities for every candidate of one image (``Prepared``: crops,
joins, splits), ``choose`` picks the digits to report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._candidates import Prepared

__all__ = ["PAIR_AT", "PATH_BELOW", "SPLIT_EACH", "PairFindings", "best_reading", "choose"]


# Each digit of a reading earns this bonus (in log-probability): a join must make the network
# at least exp(0.1) = 1.1 times surer than the product of the pieces' confidences, so two
# clearly read digits are not fused into one merely because the fused image also looks like a
# digit; a fragment read with low confidence (a 5's bar, a broken stroke) is still absorbed.
_DIGIT_BONUS = 0.1


# Pieces that each have a whole digit's height (_WIDE_JOIN_TALL of the image's median piece
# height), joined into a shape at least _WIDE_JOIN_ASPECT times as wide as tall, are most often
# two digits written touching or close: the network reads "44" as one 4 at 0.99, surer than it
# reads either 4 alone (0.8-0.9 at its own temperature), so the bonus alone lets the join win.
# Such a join must beat its pieces by _WIDE_JOIN_MARGIN more (log): a digit broken into tall
# parts (a 0 drawn as two arcs) reads its parts poorly and still wins by far more. Measured on
# 800 numbers of benchmarks/populations.py (seed 999, not the benchmark's): touching numbers
# 65.6% -> 68.5% read right, numbers with gaps 93.4% either way; the benchmark's 200 numbers:
# touching 77.3% -> 80.7%; no reading of collections A, B and N (2,500 MNIST images, 500
# numbers) changed. A margin of 0.4 mended more (70.7% held out) but split a wide MNIST 0 and
# 2 in two numbers of those collections.
_WIDE_JOIN_TALL = 0.75
_WIDE_JOIN_ASPECT = 1.0
_WIDE_JOIN_MARGIN = 0.25


def _join_penalties(crops, joins) -> np.ndarray:
    """``_WIDE_JOIN_MARGIN`` for each join of whole-height pieces that is at least as wide as
    tall (see above), 0 for the others."""
    out = np.zeros(len(joins))
    if crops is None or not len(joins):
        return out
    typical = float(np.median([c.box[3] for c in crops]))
    for k, (i, j, crop) in enumerate(joins):
        # Only in a number: the join leaves other pieces beside it. An image that is all one
        # join is one digit or a lone pair, and a wide single digit (a 0 or 2 written wide)
        # is the likelier of the two there.
        if j - i == len(crops):
            continue
        _, _, w, h = crop.box
        tall = all(c.box[3] >= _WIDE_JOIN_TALL * typical for c in crops[i:j])
        if tall and w >= _WIDE_JOIN_ASPECT * h:
            out[k] = _WIDE_JOIN_MARGIN
    return out


def best_reading(
    n: int,
    rows: np.ndarray,
    joins,
    join_rows: np.ndarray,
    crops=None,
    join_paired=None,
    override: dict[int, float] | None = None,
):
    """Which pieces to read as one digit: the split of 0..n-1 into runs with the highest sum of
    log(confidence) + _DIGIT_BONUS (dynamic programming over the offered joins; a join of
    whole-height pieces as wide as tall pays _WIDE_JOIN_MARGIN when ``crops`` are given, one
    the pair detector found to be two digits (``join_paired``) _PAIR_JOIN; ``override``: join
    index -> the score to use instead, for a join read as two digits at another cut).

    Returns the chosen runs as ``(start, stop, source)``; source is -1 for a single piece and
    the index into ``joins`` otherwise.
    """
    conf = np.log(np.maximum(rows.max(axis=1), 1e-9)) + _DIGIT_BONUS
    jconf = (
        np.log(np.maximum(join_rows.max(axis=1), 1e-9))
        + _DIGIT_BONUS
        - _join_penalties(crops, joins)
        - (_PAIR_JOIN * np.asarray(join_paired, bool) if join_paired is not None else 0.0)
        if len(joins)
        else np.zeros(0)
    )
    for k, v in (override or {}).items():
        jconf[k] = v
    ending: dict[int, list[tuple[int, int]]] = {}
    for k, (i, j, _) in enumerate(joins):
        ending.setdefault(j, []).append((i, k))
    best = np.full(n + 1, -np.inf)
    best[0] = 0.0
    back: list[tuple[int, int]] = [(0, -1)] * (n + 1)
    for j in range(1, n + 1):
        best[j], back[j] = best[j - 1] + conf[j - 1], (j - 1, -1)
        for i, k in ending.get(j, []):
            if best[i] + jconf[k] > best[j]:
                best[j], back[j] = best[i] + jconf[k], (i, k)
    runs, j = [], n
    while j > 0:
        i, k = back[j]
        runs.append((i, j, k))
        j = i
    return runs[::-1]


# A split of one piece into two touching digits is taken only when the network is clearly
# surer of it: the product of the halves' confidences beats the whole by _SPLIT_MARGIN (log),
# each half is read at least SPLIT_EACH surer than the whole and at least _SPLIT_MIN. An
# MNIST network has no "not a digit" answer, so the halves of a single 0, 4 or 8 cut down the
# middle are often read with fair confidence; on our synthetic single digits this rule splits
# about 1 in 900, and it recovers about a quarter of the touching pairs the width rule missed.
_SPLIT_MARGIN = 0.2
SPLIT_EACH = 0.15
_SPLIT_MIN = 0.8
PATH_BELOW = 0.6
# In a number, a piece much wider than its neighbours is likely two touching digits, and its
# halves need only _SPLIT_MIN_WIDE: at least _WIDE_FACTOR times the median width of the
# number's other pieces and at least _WIDE_HEIGHT times their median height (so the neighbours of
# a slim 1 do not all count as wide). Two digits that touch are read as one hesitant digit
# (confidence 0.2-0.6) whose halves are read at 0.3-0.8 each; the rule above kept most of
# them merged. Measured on 800 numbers of benchmarks/populations.py (seed 999, not the
# numbers the rule was chosen on): touching numbers 57.1% -> 61.2% read right, numbers with
# gaps 87.6% either way, no single digit split.
_SPLIT_MIN_WIDE = 0.5
_WIDE_FACTOR = 1.3
_WIDE_HEIGHT = 0.6
# A piece with no other beside it (a two-digit number whose digits touch) has no neighbours to
# compare with: it counts as wide when it is at least as wide as tall, which few single digits
# are. 300 touching pairs of MNIST test digits (bench_touching.py's kind): 54.3% -> 57.3% read
# right; 4,680 single digits read in number mode (load_digits, allographs, MNIST drawn plain
# and 1.4x wide): 20 -> 21 split; the 800 numbers above: touching 61.2% -> 61.5%.
_LONE_ASPECT = 1.0


def _others_median(crops, i: int, side: int) -> float:
    """The median width (``side`` 2) or height (3) of the pieces other than ``i``."""
    return float(np.median([c.box[side] for j, c in enumerate(crops) if j != i]))


def _wide_in_number(crops, i: int) -> bool:
    """Is piece ``i`` much wider than the other pieces of its number (``_WIDE_FACTOR``), or,
    alone, at least as wide as tall (``_LONE_ASPECT``)?"""
    if len(crops) < 2:
        _, _, w, h = crops[i].box
        return w >= _LONE_ASPECT * h
    typical = max(_others_median(crops, i, 2), _WIDE_HEIGHT * _others_median(crops, i, 3))
    return crops[i].box[2] >= _WIDE_FACTOR * typical


# The pair detector (``_pairs``): a piece it gives at least PAIR_AT is two touching digits and
# is split at its best cut whatever the network thinks of the whole (two digits squeezed into
# its box often read as one confident digit), as long as each half is read at least
# _PAIR_HALF_MIN (a cut in the wrong place leaves a half that reads as nothing) and, in a
# number, the piece is at least _PAIR_WIDER times as wide as the median of the others (the
# digits beside a merged pair are narrower than it). A join it finds to be two digits pays
# _PAIR_JOIN (log) and may instead be read as two digits at one of its own cuts. At 0.9 the
# detector took a round 0 and a 6 with a long stem for two digits in two numbers of the
# synthetic collections; at 0.95 no reading of a single digit or of a number whose digits stand
# apart changed on any benchmark (docs/reading.md, "The pair detector").
PAIR_AT = 0.95
_PAIR_HALF_MIN = 0.3
_PAIR_WIDER = 1.1
_PAIR_JOIN = 2.0
# A piece (or join) found to be two digits is also cut on a finer grid of columns; such a cut
# must beat the usual ones by _FINER_MARGIN (log): the network reads some slices of two
# overlapping digits confidently as other digits ("19" cut into "43").
_FINER_MARGIN = 0.5


def _pair_wide(crops, i: int) -> bool:
    """Is piece ``i`` alone, or _PAIR_WIDER times as wide as the others' median?"""
    return len(crops) < 2 or crops[i].box[2] >= _PAIR_WIDER * _others_median(crops, i, 2)


def _two_digits(pa: float, pb: float, finer: bool) -> float:
    """The score of reading two halves read at ``pa`` and ``pb`` (a cut on the finer grid
    pays _FINER_MARGIN)."""
    score = np.log(max(pa, 1e-9)) + np.log(max(pb, 1e-9)) + 2 * _DIGIT_BONUS
    return float(score - _FINER_MARGIN if finer else score)


@dataclass(frozen=True)
class PairFindings:
    """What the pair detector found in one image (``classify`` fills it; ``choose`` reads it)."""

    pieces: frozenset[int] = frozenset()  # pieces found to be two digits
    joins: np.ndarray | None = None  # per join of ``Prepared.joins``: found to be two digits
    # Cuts of such joins, ``(k, left, right)`` with k indexing ``Prepared.joins``.
    join_cuts: list = field(default_factory=list)
    finer: frozenset[int] = frozenset()  # indices of the split candidates on the finer grid
    finer_joins: frozenset[int] = frozenset()  # indices of ``join_cuts`` on the finer grid


def choose(
    p: Prepared,
    rows: np.ndarray,
    join_rows: np.ndarray,
    splits,
    split_rows: np.ndarray,
    found: PairFindings | None = None,
    join_cut_rows: np.ndarray | None = None,
):
    """The digits to report: joins chosen by ``best_reading``, then each piece still read on
    its own replaced by its best two-digit split (of ``splits``, ``(i, left, right)``) where
    the network is clearly surer of that (a little less sure for a piece much wider than the
    rest of its number), or where the pair detector found two digits (``found``; its join cuts
    read as ``join_cut_rows``, two rows a cut). Returns ``(crops, rows)``."""
    found = found or PairFindings()
    crops = list(p.crops)
    split_best: dict[int, tuple[float, int, float]] = {}
    for k, (i, _, _) in enumerate(splits):
        pa, pb = float(split_rows[2 * k].max()), float(split_rows[2 * k + 1].max())
        score = _two_digits(pa, pb, k in found.finer)
        if i not in split_best or score > split_best[i][0]:
            split_best[i] = (score, k, min(pa, pb))
    out_c: list = []
    out_r: list[np.ndarray] = []
    # A join the pair detector finds to be two digits may be read as two at another cut.
    cut_rows = join_cut_rows if join_cut_rows is not None else np.zeros((0, 10), np.float32)
    two_of: dict[int, tuple[float, int]] = {}
    for n, (k, _, _) in enumerate(found.join_cuts):
        pa, pb = float(cut_rows[2 * n].max()), float(cut_rows[2 * n + 1].max())
        if min(pa, pb) < _PAIR_HALF_MIN:
            continue
        score = _two_digits(pa, pb, n in found.finer_joins)
        if k not in two_of or score > two_of[k][0]:
            two_of[k] = (score, n)
    override = {k: v[0] for k, v in two_of.items()}
    runs = best_reading(len(crops), rows, p.joins, join_rows, crops, found.joins, override)
    for i, _j, src in runs:
        if src in two_of:
            n = two_of[src][1]
            out_c.extend(found.join_cuts[n][1:])
            out_r.extend(cut_rows[2 * n : 2 * n + 2])
            continue
        if src >= 0:
            out_c.append(p.joins[src][2])
            out_r.append(join_rows[src])
            continue
        pw = float(rows[i].max())
        whole = np.log(max(pw, 1e-9)) + _DIGIT_BONUS
        score, k, weakest = split_best.get(i, (-np.inf, -1, 0.0))
        least = _SPLIT_MIN_WIDE if k >= 0 and _wide_in_number(crops, i) else _SPLIT_MIN
        if k >= 0 and i in found.pieces and _pair_wide(crops, i):
            take = weakest >= _PAIR_HALF_MIN
        else:
            take = score > whole + _SPLIT_MARGIN and weakest >= max(least, pw + SPLIT_EACH)
        if take:
            out_c.extend(splits[k][1:])
            out_r.extend(split_rows[2 * k : 2 * k + 2])
        else:
            out_c.append(crops[i])
            out_r.append(rows[i])
    return tuple(out_c), np.stack(out_r)
