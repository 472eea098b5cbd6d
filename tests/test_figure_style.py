"""One figure style (medseg_masksup/io/figure_style.py): colours that read on H&E, dermoscopy and colonoscopy
pictures and stay apart for colour-blind readers, a colour key on every overlay, and no figure module with a
colour of its own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from medseg_masksup.io import figure_style as style

PACKAGE = Path(__file__).resolve().parents[1] / "medseg_masksup"
#: every module that draws a figure or an overlay; each takes its colours from the style home
FIGURE_MODULES = ("io/overlay.py", "training/figures.py", "inference/robustness.py", "inference/worst_cases.py",
                  "quality/figure.py", "quality/least_trusted.py", "quality/maps.py", "study/report.py")

#: tissue colours measured on real pictures (10th / 50th / 90th luminance percentile inside and outside the mask):
#: H&E = GlaS train_1 (glands and stroma), dermoscopy = PH2 IMD002 (lesion and skin),
#: colonoscopy = Kvasir-SEG cju0qoxqj9q6s0835b43399p4 and two more (polyp and mucosa)
BACKGROUNDS = {
    "H&E": ("#6E228D", "#A840AC", "#EDAEE2", "#8E2D9C", "#D255BF"),
    "dermoscopy": ("#6A3B28", "#8D4F32", "#C77C51", "#A47C69", "#D7A688", "#E8C0A7"),
    "colonoscopy": ("#8F463E", "#C35F53", "#E08B76", "#DE7B62", "#F7A788", "#874E44", "#6B3226", "#994A3D"),
}


def _linear(rgb) -> np.ndarray:
    c = np.asarray(rgb, dtype=float)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _gamma(c: np.ndarray) -> np.ndarray:
    c = np.clip(c, 0, 1)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


def _contrast(a, b) -> float:
    """WCAG 2 contrast ratio (1 = none, 21 = black on white)."""
    la, lb = sorted(float(_linear(c) @ [0.2126, 0.7152, 0.0722]) for c in (a, b))
    return (lb + 0.05) / (la + 0.05)


def _lab(rgb) -> np.ndarray:
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ _linear(rgb)
    f = xyz / np.array([0.9505, 1.0, 1.089])
    f = np.where(f > 0.008856, np.cbrt(f), 7.787 * f + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _delta_e(a, b) -> float:
    """CIE76 colour difference (about 2.3 = just noticeable; 40+ = plainly different colours)."""
    return float(np.linalg.norm(_lab(a) - _lab(b)))


#: Machado et al. 2009, severity 1: how people with each colour-vision deficiency see a linear RGB colour
DEFICIENCIES = {
    "normal": np.eye(3),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413], [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216], [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602], [0.004733, 0.691367, 0.303900]]),
}


def _seen(rgb, deficiency: str) -> np.ndarray:
    return _gamma(DEFICIENCIES[deficiency] @ _linear(rgb))


def test_the_colour_measures_tell_colours_apart():
    """The yardsticks below: red and green, far apart for most readers, nearly merge for deuteranopes."""
    red, green = style.hex_colour("#D62728"), style.hex_colour("#2CA02C")  # the old prediction / truth pair
    assert _delta_e(red, green) > 70 and _delta_e(*(_seen(c, "deuteranopia") for c in (red, green))) < 25
    assert _contrast((0, 0, 0), (1, 1, 1)) == pytest.approx(21)


@pytest.mark.parametrize("deficiency", list(DEFICIENCIES))
def test_truth_prediction_and_agreement_stay_apart_for_colour_blind_readers(deficiency):
    truth, pred, agree = (_seen(c, deficiency) for c in (style.TRUTH, style.PREDICTION, style.AGREEMENT))
    assert _delta_e(truth, pred) >= 50, f"{deficiency}: truth and prediction look alike"
    assert _delta_e(truth, agree) >= 25 and _delta_e(pred, agree) >= 25, f"{deficiency}: agreement looks like a mask"


@pytest.mark.parametrize("kind", list(BACKGROUNDS))
@pytest.mark.parametrize("name", ["TRUTH", "PREDICTION"])
def test_contours_read_on_h_and_e_dermoscopy_and_colonoscopy(kind, name):
    """Each contour colour differs plainly from the tissue, and its line or its dark edge has at least the
    3:1 contrast of large text (WCAG) against it; line and edge contrast strongly with each other."""
    colour = getattr(style, name)
    assert _contrast(colour, style.OUTLINE) >= 7
    for code in BACKGROUNDS[kind]:
        tissue = style.hex_colour(code)
        assert _delta_e(colour, tissue) >= 40, f"{name} is close to {kind} tissue {code}"
        assert max(_contrast(colour, tissue), _contrast(style.OUTLINE, tissue)) >= 3, f"{name} fades on {kind} {code}"


def test_series_colours_are_distinct_and_keep_each_arm_its_colour():
    colours = style.series_colours(["baseline", "masksup", "masksup-light", "context", "baseline-2x", "x", "y"])
    assert len(set(colours.values())) == 7
    assert {k: colours[k] for k in style.ARM_COLOURS} == style.ARM_COLOURS
    assert style.series_colours(["masksup/unet · freeform", "masksup/unet · block"]) == {
        "masksup/unet · freeform": style.ARM_COLOURS["masksup"], "masksup/unet · block": style.PALETTE[0]}
    # a name that is no arm takes no arm's colour while that arm is drawn
    assert style.series_colours(["entropy", "context"])["entropy"] not in (style.ARM_COLOURS["context"],)


def _png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def _overlay(tmp_path: Path, mask_rows: slice, mask_cols: slice) -> tuple[np.ndarray, np.ndarray]:
    from medseg_masksup.io.case import Case
    from medseg_masksup.io.overlay import write_overlay

    height, width = 160, 240
    image = np.zeros((3, width, height), np.float32)  # (C, x, y) as read
    image[:, :, :] = np.array([200.0, 120.0, 180.0])[:, None, None]  # an H&E pink (contrast stretched on display)
    mask = np.zeros((width, height), bool)
    mask[mask_cols, mask_rows] = True
    path = write_overlay(Case(source=tmp_path / "a.png", kind="image2d", image=image), mask, tmp_path / "a_overlay.png")
    return _png(path), mask.T


def _key_box(out: np.ndarray, plain: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of the key box: where the plain picture is shaded dark."""
    dark = (out == (plain * (1 - style.KEY_SHADE)).astype(np.uint8)).all(-1)
    assert dark.any(), "no colour key: no shaded box in the overlay"
    rows, cols = np.flatnonzero(dark.any(1)), np.flatnonzero(dark.any(0))
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


def test_a_png_overlay_carries_its_colour_key(tmp_path):
    """infer's ``*_overlay.png``: the mask in the prediction colour with a dark-edged contour, and a key (a
    darkened box with a prediction-coloured swatch and light text) in the corner the mask leaves free."""
    out, fg = _overlay(tmp_path, slice(10, 60), slice(20, 90))  # the mask in the top-left corner
    plain = out[120, 200]  # far from mask and key
    assert plain.astype(int).sum() > 300 and (out[100:, 120:] == plain).all()  # the picture, untouched
    rows, cols = _key_box(out, plain)
    box = out[rows, cols]
    assert rows.stop == out.shape[0] and cols.start == 0, "the key sits bottom-left, away from the mask"
    assert 5 < box.shape[0] < out.shape[0] // 2 and 20 < box.shape[1] < out.shape[1]
    assert (box == style.rgb8(style.PREDICTION)).all(-1).sum() >= 25, "no prediction swatch in the key"
    assert (box.min(-1) > 200).sum() >= 20, "no light text in the key"
    # the contour: the prediction colour inside the edge, the dark outline just outside it
    assert (out[10:60, 20] == style.rgb8(style.PREDICTION)).all()
    assert (out[10:60, 19] == style.rgb8(style.OUTLINE)).all()
    assert not (out[~fg] == style.rgb8(style.PREDICTION)).all(-1)[:rows.start].any()  # no colour outside the mask


def test_the_key_moves_to_the_corner_the_mask_leaves_free(tmp_path):
    out, _ = _overlay(tmp_path, slice(100, 160), slice(0, 120))  # the mask covers the bottom-left corner
    rows, cols = _key_box(out, out[40, 120])
    assert rows.stop == out.shape[0] and cols.stop == out.shape[1], "the key should move bottom-right"


def test_the_worst_case_figure_carries_the_three_colour_key(tmp_path):
    """evaluate's worst-case figure: truth, prediction and agreement swatches in the key under the panels."""
    from medseg_masksup.training.figures import case_overlay

    rgb = np.full((60, 80, 3), 0.6, np.float32)
    truth, pred = np.zeros((60, 80), bool), np.zeros((60, 80), bool)
    truth[10:40, 10:50], pred[20:50, 20:60] = True, True
    out = _png(case_overlay(rgb, truth, pred, tmp_path / "worst.png", title="worst #1"))
    key = out[int(out.shape[0] * 0.8):]  # the key lies under the panels
    for name, colour in (style.TRUTH_KEY, style.PREDICTION_KEY, style.AGREEMENT_KEY):
        assert (np.abs(key.astype(int) - style.rgb8(colour)).max(-1) <= 2).sum() >= 30, f"no {name} swatch in the key"


# --- no colour outside the style home --------------------------------------------------------------------------
COLOUR_KEYWORDS = {"color", "colors", "c", "facecolor", "edgecolor", "fc", "ec", "cmap", "colormap", "fill",
                   "outline", "foreground", "markerfacecolor", "markeredgecolor", "mfc", "mec"}
HEX = re.compile(r"#[0-9a-fA-F]{6}\b|#[0-9a-fA-F]{3}\b")
FORMAT_WITH_COLOUR = re.compile(r"^[-.:o^vs*+xd]*[bgrcmykw][-.:o^vs*+xd]*$")


def _named_colours() -> set[str]:
    import matplotlib
    from matplotlib import colors

    names = set(colors.CSS4_COLORS) | set(colors.TABLEAU_COLORS) | {n.split(":")[1] for n in colors.XKCD_COLORS}
    return {n for n in names | set(matplotlib.colormaps) if len(n) > 1} | set(colors.TABLEAU_COLORS)


def colour_literals(source: str, named: set[str]) -> list[str]:
    """``line: literal`` for each colour written into ``source``: a hex code, a colour or colour-map name, a
    plot format with a colour letter (``"k--"``), or an RGB tuple given to a colour keyword or name."""
    tree = ast.parse(source)
    docstrings = {id(n.body[0].value) for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))
                  and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    found = []

    def is_rgb(node: ast.AST) -> bool:
        if isinstance(node, ast.Call) and node.args:  # np.array([...])
            node = node.args[0]
        return (isinstance(node, (ast.Tuple, ast.List)) and len(node.elts) in (3, 4)
                and all(isinstance(e, ast.Constant) and isinstance(e.value, (int, float)) for e in node.elts))

    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if HEX.search(node.value) or node.value.lower() in named:
                found.append(f"{node.lineno}: {node.value!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "plot":
            found += [f"{a.lineno}: {a.value!r}" for a in node.args
                      if isinstance(a, ast.Constant) and isinstance(a.value, str) and FORMAT_WITH_COLOUR.match(a.value)]
        if isinstance(node, ast.keyword) and node.arg in COLOUR_KEYWORDS and is_rgb(node.value):
            found.append(f"{node.value.lineno}: {node.arg}={ast.unparse(node.value)}")
        if isinstance(node, ast.Assign) and is_rgb(node.value) and any(
                isinstance(t, ast.Name) and re.search(r"COLOU?R|FILL|EDGE|OUTLINE", t.id, re.I) for t in node.targets):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_colour_finder_finds_the_old_literals():
    """What the figure modules held before the style home: each is found (else the test below proves nothing)."""
    named = _named_colours()
    old = '''
ARM_COLOURS = {"baseline": "#7f7f7f"}
FILL = np.array([255, 40, 40], dtype=np.float32)
TRUTH_COLOUR = (0.0, 1.0, 0.0)
ax.imshow(m, cmap=ListedColormap(["red"]), alpha=0.45)
ax.plot(x, y, "k--", linewidth=1.2)
ax.axhline(0.5, color="grey", linestyle=":")
rgba = colormaps["inferno"](values)
ax.bar(x, y, color=(0.2, 0.4, 0.6))
'''
    assert len(colour_literals(old, named)) == 8, colour_literals(old, named)
    assert colour_literals('"""A docstring may say red, #d62728 or inferno."""\nax.plot(x, y, "o-", label="k")\n', named) == []


@pytest.mark.parametrize("module", FIGURE_MODULES)
def test_no_figure_module_defines_its_own_colour(module):
    found = colour_literals((PACKAGE / module).read_text(), _named_colours())
    assert not found, f"{module} writes colours of its own (take them from io/figure_style.py):\n" + "\n".join(found)


def test_every_module_that_draws_is_checked():
    """A module that draws (matplotlib, PIL drawing or the style's pyplot) is in FIGURE_MODULES."""
    drawing = re.compile(r"matplotlib|ImageDraw|\.pyplot\(\)|figure_style")
    drawers = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
               if p.name != "figure_style.py" and drawing.search(p.read_text())}
    assert drawers <= set(FIGURE_MODULES), f"figure modules the colour check does not read: {sorted(drawers - set(FIGURE_MODULES))}"


def test_matplotlib_loads_only_when_a_figure_is_drawn():
    """No module imports matplotlib at module level (start-up time, docs/architecture.md)."""
    eager = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            eager += [f"{path.relative_to(PACKAGE)}:{node.lineno}" for n in names if n.split(".")[0] == "matplotlib"]
    assert not eager, f"matplotlib imported at module level: {eager}"
