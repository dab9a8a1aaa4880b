"""House style for figures and numbers: CJK font, consulting palette, banker-friendly number formats."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

Language = Literal["zh", "en"]

# Restrained consulting palette: one dark primary carries the message, teal and gold
# are used sparingly for contrast and highlights, greys for context and gridlines.
PALETTE: dict[str, str] = {
    "navy": "#0B2545",
    "navy_light": "#3E5C8A",
    "teal": "#13807A",
    "teal_light": "#7FBFBA",
    "gold": "#C8963E",
    "grey_dark": "#4A4F55",
    "grey": "#8A9099",
    "grey_light": "#C9CDD2",
    "grey_faint": "#EEF0F2",
    "white": "#FFFFFF",
}

# Order in which series take colours: primary first, accent late so it stays an accent.
SERIES_COLORS: list[str] = [
    PALETTE["navy"], PALETTE["teal"], PALETTE["grey"], PALETTE["gold"],
    PALETTE["navy_light"], PALETTE["teal_light"], PALETTE["grey_light"],
]

# Value tiers from most to least valuable; keys cover the A/B/C/D scheme and ordinal ranks
# (1 = top tier) so a stage can colour tiers whichever naming its catalogue uses.
TIER_COLORS: dict[str | int, str] = {
    "A": PALETTE["navy"], "B": PALETTE["teal"], "C": PALETTE["gold"], "D": PALETTE["grey"],
    1: PALETTE["navy"], 2: PALETTE["teal"], 3: PALETTE["gold"], 4: PALETTE["grey"],
    5: PALETTE["grey_light"],
}

# The family name matplotlib and Typst both read from the font file mplfonts ships.
CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"
CJK_SERIF_FONT_FILE = "NotoSerifCJKsc-Regular.otf"
NOTEBOOK_DPI = 110
MISSING = "—"


@lru_cache(maxsize=1)
def cjk_font_dir() -> Path:
    """Folder of the fonts shipped by mplfonts (pass it to Typst as a font path)."""
    import mplfonts

    folder = Path(mplfonts.__file__).resolve().parent / "fonts"
    if not (folder / CJK_FONT_FILE).is_file():
        raise RuntimeError(
            f"mplfonts is installed but {CJK_FONT_FILE} is missing from {folder}; "
            "reinstall mplfonts (pip install --force-reinstall mplfonts)"
        )
    return folder


def cjk_font_path() -> Path:
    """Path of Noto Sans CJK SC as shipped by mplfonts."""
    return cjk_font_dir() / CJK_FONT_FILE


@lru_cache(maxsize=1)
def cjk_font_family() -> str:
    """Family name of the CJK font as read from the file (\"Noto Sans CJK SC\")."""
    from matplotlib.font_manager import FontProperties

    return FontProperties(fname=str(cjk_font_path())).get_name()


@lru_cache(maxsize=1)
def _register_cjk_font() -> str:
    from matplotlib import font_manager

    # mplfonts.use_font alone left tofu on these machines; registering the file does not.
    font_manager.fontManager.addfont(str(cjk_font_path()))
    return cjk_font_family()


def setup_matplotlib(dpi: int = NOTEBOOK_DPI) -> None:
    """Apply the house style to matplotlib: CJK font, palette, clean axes; safe to call repeatedly."""
    import matplotlib as mpl
    from cycler import cycler

    family = _register_cjk_font()
    mpl.rcParams.update({
        "font.family": family,
        "font.sans-serif": [family, "DejaVu Sans"],
        "axes.unicode_minus": False,
        "figure.dpi": dpi,
        "savefig.dpi": 150,
        "figure.figsize": (7.5, 4.0),
        "figure.facecolor": PALETTE["white"],
        "axes.facecolor": PALETTE["white"],
        "axes.edgecolor": PALETTE["grey_light"],
        "axes.linewidth": 0.8,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "axes.grid.axis": "y",
        "axes.axisbelow": True,
        "grid.color": PALETTE["grey_faint"],
        "grid.linewidth": 0.8,
        "axes.prop_cycle": cycler(color=SERIES_COLORS),
        "axes.titlesize": 12,
        "axes.titlelocation": "left",
        "axes.titlecolor": PALETTE["navy"],
        "axes.titlepad": 12,
        "axes.labelsize": 9.5,
        "axes.labelcolor": PALETTE["grey_dark"],
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "xtick.color": PALETTE["grey_dark"],
        "ytick.color": PALETTE["grey_dark"],
        "legend.frameon": False,
        "legend.fontsize": 9,
        "text.color": PALETTE["grey_dark"],
    })


def chart_title(ax, message: str, source: str, as_of: str, lang: Language = "zh") -> None:
    """Title a chart with its conclusion and put the source and as-of month in a note below it."""
    _check_lang(lang)
    ax.set_title(message, loc="left", color=PALETTE["navy"], fontsize=12)
    note = (f"来源：{source}　数据截至 {as_of}" if lang == "zh"
            else f"Source: {source}, as of {as_of}")

    def below_axes(renderer):
        # Only the axes and their tick labels: the note itself must not move its own anchor.
        return ax.get_tightbbox(renderer, bbox_extra_artists=[])

    ax.annotate(note, xy=(0, 0), xycoords=below_axes, xytext=(0, -6),
                textcoords="offset points", ha="left", va="top",
                fontsize=8, color=PALETTE["grey"], annotation_clip=False)


# ---------------------------------------------------------------- numbers

def _check_lang(lang: str) -> None:
    if lang not in ("zh", "en"):
        from analysis.errors import InputError

        raise InputError(f"Unknown report language {lang!r}", fix="use 'zh' or 'en'")


def _is_missing(x) -> bool:
    """None, NaN, NaT or pd.NA (which cannot even be compared)."""
    import pandas as pd

    try:
        return bool(pd.isna(x))
    except (TypeError, ValueError):
        return False


def _round(value: float, digits: int, shift: int = 0) -> Decimal:
    """Round value × 10**shift half-up on its decimal text (as a banker would), never "-0"."""
    # Scaling the decimal text, not the float, keeps 0.0345 at 3.45% instead of 3.4499…%.
    exact = Decimal(repr(float(value))).scaleb(shift)
    rounded = exact.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return abs(rounded) if rounded == 0 else rounded


def _scaled(x: float, units: list[tuple[int, int, str]]) -> tuple[Decimal, str] | None:
    """Pick the largest unit in which |x| rounds to at least 1; units are (power of ten, digits, suffix)."""
    for power, digits, suffix in units:
        shown = _round(abs(x), digits, -power)
        if shown >= 1:
            return shown, suffix
    return None


def _grouped(value: Decimal) -> str:
    return f"{value:,}"


def fmt_money(x: float | None, lang: Language = "zh") -> str:
    """Yuan amount for a banker: zh 1.23亿元 / 456.7万元 / 890元; en CNY 1.23bn / 4.57M / 8.9K."""
    _check_lang(lang)
    if _is_missing(x):
        return MISSING
    sign = "-" if x < 0 and _round(abs(x), 0) != 0 else ""
    if lang == "zh":
        hit = _scaled(x, [(8, 2, "亿元"), (4, 1, "万元")])
        if hit:
            return f"{sign}{_grouped(hit[0])}{hit[1]}"
        return f"{sign}{_grouped(_round(abs(x), 0))}元"
    hit = _scaled(x, [(9, 2, "bn"), (6, 2, "M"), (3, 1, "K")])
    if hit:
        return f"CNY {sign}{_grouped(hit[0])}{hit[1]}"
    return f"CNY {sign}{_grouped(_round(abs(x), 0))}"


def fmt_count(n: float | None, lang: Language = "zh") -> str:
    """Head count with thousands separators; zh switches to 万 from 100,000 and 亿 from 1e8."""
    _check_lang(lang)
    if _is_missing(n):
        return MISSING
    sign = "-" if n < 0 and _round(abs(n), 0) != 0 else ""
    if lang == "zh":
        hit = _scaled(n, [(8, 2, "亿")]) or (
            (_round(abs(n), 1, -4), "万") if abs(n) >= 1e5 else None)
        if hit:
            return f"{sign}{_grouped(hit[0])}{hit[1]}"
    return f"{sign}{_grouped(_round(abs(n), 0))}"


def fmt_pct(x: float | None, digits: int = 1) -> str:
    """Share or rate as a percentage: 0.1234 → 12.3%."""
    if _is_missing(x):
        return MISSING
    return f"{_round(x, digits, 2)}%"


def fmt_rate(x: float | None) -> str:
    """Interest rate with two decimals: 0.0385 → 3.85%."""
    return fmt_pct(x, digits=2)


def fmt_bp(x: float | None, digits: int = 0) -> str:
    """Rate difference in basis points: 0.0012 → 12 bp."""
    if _is_missing(x):
        return MISSING
    return f"{_round(x, digits, 4)} bp"


def figure_png(fig, dpi: int = 150, pad_inches: float = 0.12) -> bytes:
    """PNG bytes of a matplotlib figure on white; closes the figure (every chart is drawn once)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", pad_inches=pad_inches, facecolor="white")
    finally:
        plt.close(fig)
    return buf.getvalue()


def figure_data_uri(fig, dpi: int = 150, pad_inches: float = 0.12) -> str:
    """The figure as a data: URI, for self-contained html pages."""
    import base64

    return "data:image/png;base64," + base64.b64encode(figure_png(fig, dpi, pad_inches)).decode("ascii")
