"""The output folder of ``infer``: writable, and never holding another run's results next to this run's.

A folder with results of an earlier run (``summary.csv`` / ``summary.json`` or ``*_mask.*`` /
``*_overlay.png`` / ``*_prob.*`` files) is refused unless ``overwrite``; with ``overwrite`` those results are
removed before the new ones are written, so ``summary.csv`` describes exactly the masks in the folder.
Files inside the input are never touched.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..errors import OutputError

SUMMARY_FILES = ("summary.csv", "summary.json")
RESULT_PATTERNS = ("*_mask.*", "*_overlay.png", "*_prob.*")


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def earlier_results(output_dir: Path, input_path: Path) -> list[Path]:
    """Result files of earlier runs under ``output_dir`` (none of them inside ``input_path``)."""
    if not output_dir.is_dir():
        return []
    found = [output_dir / name for name in SUMMARY_FILES if (output_dir / name).is_file()]
    for pattern in RESULT_PATTERNS:
        found += [p for p in output_dir.rglob(pattern) if p.is_file()]
    return sorted({p for p in found if not _may_be_input(p, input_path, output_dir)})


def _may_be_input(path: Path, input_path: Path, output_dir: Path) -> bool:
    """Whether ``path`` could be one of the inputs (an output folder nested in the input folder is not read)."""
    if not input_path.is_dir():
        return path.resolve() == input_path.resolve()
    return _inside(path, input_path) and not (_inside(output_dir, input_path) and _inside(path, output_dir))


def check_writable(output_dir: Path) -> None:
    """Write (then remove) a probe file in ``output_dir``; a one-line :class:`OutputError` if that fails.
    Folders created for the probe are removed again, so a run that stops later leaves nothing behind."""
    missing = [p for p in (output_dir, *output_dir.parents) if not p.exists()]
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-probe-"):
            pass
    except OSError as err:
        raise OutputError(f"output folder {output_dir} is not writable ({err.strerror or type(err).__name__}); "
                          "choose another --output_dir") from None
    finally:
        for folder in missing:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()


def claim_output_dir(output_dir: Path, input_path: Path, overwrite: bool) -> list[Path]:
    """Before any work: refuse ``output_dir`` if it holds earlier results (unless ``overwrite``) or is not
    writable. Returns the earlier results that :func:`remove_earlier_results` is to delete."""
    earlier = earlier_results(output_dir, input_path)
    if earlier and not overwrite:
        shown = ", ".join(os.fspath(p.relative_to(output_dir)) for p in earlier[:3])
        more = f" and {len(earlier) - 3} more" if len(earlier) > 3 else ""
        raise OutputError(f"output folder {output_dir} holds results of an earlier run ({shown}{more}); "
                          "choose another --output_dir, or pass --overwrite to replace them")
    check_writable(output_dir)
    return earlier


def remove_earlier_results(files: list[Path]) -> None:
    """Delete the earlier results found by :func:`claim_output_dir` (``overwrite``)."""
    for path in files:
        path.unlink(missing_ok=True)
