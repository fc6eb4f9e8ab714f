"""rtclab.plotting: figures drawn inside lab_style() are white cards with the lab's colours, and the style
does not leak out of the block."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rtclab.plotting import COLORS, lab_style  # noqa: E402


def test_figures_inside_the_block_use_the_lab_style_and_outside_do_not():
    plt.rcParams["figure.facecolor"] = "black"
    with lab_style():
        fig, ax = plt.subplots()
        (line,) = ax.plot([0, 1], [0, 1])
        assert matplotlib.colors.to_hex(fig.get_facecolor()) == "#ffffff"
        assert matplotlib.colors.to_hex(line.get_color()) == COLORS[0].lower()
        assert tuple(fig.get_size_inches()) == (8, 3.5)
        plt.close(fig)
    assert plt.rcParams["figure.facecolor"] == "black"
    plt.rcdefaults()
