"""One look for every lab figure: white cards with dark text, which read the same on the site's light and
dark themes, at a size that keeps notebook pages within their byte budget."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

# Colour-blind-safe (Okabe-Ito), in the order lines are drawn.
COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")

STYLE: dict[str, Any] = {
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "axes.facecolor": "white",
    "figure.figsize": (8, 3.5),
    "figure.dpi": 80,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.markersize": 4,
}


def lab_style() -> AbstractContextManager[None]:
    """A matplotlib style context for lab figures: ``with lab_style(): fig, ax = plt.subplots() ...``.

    Starts from matplotlib's defaults (so a reader's own rcParams do not leak into the figures CI renders)
    and sets a white background, light grid, a colour-blind-safe cycle and a small default size.
    """
    import matplotlib.pyplot as plt  # imported here: rtclab itself does not need matplotlib
    from cycler import cycler

    return plt.style.context(["default", {**STYLE, "axes.prop_cycle": cycler(color=COLORS)}])
