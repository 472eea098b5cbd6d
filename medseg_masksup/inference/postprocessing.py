"""A study's post-processing choice, ``report/postprocessing.json``: written by the study report, read by
``infer`` / ``evaluate --postprocessing``, as nnU-Net keeps its cross-validation's choice for inference.

Per arm and evaluation (``final``, and ``final-tta`` where the study has TTA): whether to keep only the
largest connected component, with the evidence (paired Dice difference, CI, Wilcoxon p). ``chosen_on``
says whether the choice came from CV folds (``"CV"``) or from the split that the runs were scored on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from ..errors import UserError

RULE = "keep only the largest connected component where it raises the mean Dice of the held-out cases"


def postprocessing_record(rows: Sequence[dict]) -> dict:
    """The JSON record of the report's post-processing rows (each with arm, reference, chosen, chosen_on and
    the paired difference's statistics)."""
    record: dict = {"rule": RULE, "chosen_on": rows[0].get("chosen_on", "CV") if rows else "CV"}
    for r in rows:
        record.setdefault(r["arm"], {})[r["reference"]] = {
            "keep_largest": bool(r["chosen"]), "cases": r["cases"], "seeds": r["seeds"], "dice_diff": _or_none(r["dice_diff"]),
            "dice_ci": [_or_none(r["dice_ci_low"]), _or_none(r["dice_ci_high"])], "dice_p_wilcoxon": _or_none(r["dice_p_wilcoxon"])}
    return record


def chosen_keep_largest(path: str | Path, arm: str, tta: bool = False) -> bool:
    """Whether the study whose ``postprocessing.json`` is at ``path`` chose to keep only the largest component
    for ``arm`` (with ``tta``: for its predictions with flip TTA)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable postprocessing.json ({err})") from None
    if not isinstance(record, dict) or record.get("rule") != RULE:
        raise UserError(f"{path}: not a postprocessing.json written by 'medseg-masksup compare --keep_largest'")
    arms = sorted(name for name, value in record.items() if isinstance(value, dict))
    if arm not in arms:
        raise UserError(f"{path}: no choice for arm {arm!r}; it has {', '.join(arms) or 'none'}")
    evaluation = "final-tta" if tta else "final"
    if evaluation not in record[arm]:
        raise UserError(f"{path}: arm {arm} has no choice for predictions with TTA (its study ran without --tta); "
                        "drop --tta or run the study with it")
    return bool(record[arm][evaluation]["keep_largest"])


def _or_none(value: float) -> float | None:
    """``value``, or ``None`` for NaN (JSON has no NaN)."""
    return None if value is None or math.isnan(float(value)) else float(value)
