"""Segment a file or a folder of images with a trained checkpoint and write masks, overlays and a summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint import checkpoint_names, load_ensemble
from ..devices import choose_device
from ..errors import InputError, NothingProcessedError, OutputError, UserError
from .options import InferenceOptions
from .predictor import Predictor


@dataclass
class InferenceReport:
    """What :func:`run_folder` did: one row per case (``status`` ok / error / skipped)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    summary_csv: Path | None = None
    summary_json: Path | None = None

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)

    def lines(self) -> list[str]:
        out = [f"{r['status']}: {r['message']}" for r in self.rows if r["status"] != "ok"]
        out.append(
            f"segmented {self.count('ok')} of {len(self.rows)} inputs ({self.count('error')} failed, "
            f"{self.count('skipped')} skipped); summary: {self.summary_csv}"
        )
        return out


def check_output_dir(input_path: Path, output_dir: Path) -> None:
    """Refuse an output folder that is the input folder (or the folder holding the input file)."""
    in_dir = input_path.resolve() if input_path.is_dir() else input_path.resolve().parent
    if output_dir.resolve() == in_dir:
        raise OutputError(
            f"output folder {output_dir} is the input folder; choose another --output_dir so inputs are never overwritten"
        )
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"output folder {output_dir} exists and is not a folder")


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def check_run(input: str | Path, output_dir: str | Path, ckpt: str | Path) -> tuple[Path, Path]:
    """``(input, output_dir)`` as paths, after refusing empty settings, a missing input and an output
    folder that is the input folder."""
    if not str(input or ""):
        raise UserError("no input given: pass --input <file or folder>")
    if not str(ckpt or ""):
        raise UserError("no checkpoint given: pass --ckpt <model.pt or training run folder>")
    if not str(output_dir or ""):
        raise UserError("no output folder given: pass --output_dir <folder>")
    input_path, out_root = Path(input), Path(output_dir)
    if not input_path.exists():
        raise InputError(f"input not found: {input_path}")
    check_output_dir(input_path, out_root)
    return input_path, out_root


def find_cases(input_path: str | Path, output_dir: str | Path) -> list:
    """The cases under ``input_path`` (a file or folder; ``output_dir`` excluded); none is an :class:`InputError`."""
    from ..io import discover_cases

    sources = discover_cases(Path(input_path), exclude=(Path(output_dir),))
    if not sources:
        raise InputError(f"{input_path}: no files found")
    return sources


class FolderRun:
    """Segment ``cases`` with ``predictor`` and write masks, overlays and the summary under ``output_dir``.

    The inference bundle's ``evaluator``: ``inference.json`` declares the predictor (its ``inferer``)
    and the cases (its ``dataset``); :func:`run_folder` builds the same objects from Python.
    """

    def __init__(self, predictor: Predictor, cases: list, input: str | Path, output_dir: str | Path,
                 checkpoint: str | Path | list[str],
                 save_prob: bool = False, overlay: bool = True, verbose: bool = True, raise_if_none: bool = True,
                 overwrite: bool = False, earlier: list[Path] | None = None) -> None:
        self.predictor, self.cases = predictor, cases
        self.overwrite = bool(overwrite)
        self.earlier = earlier  # results found by an earlier claim_output_dir (run_folder claims before loading)
        self.input, self.output_dir = Path(input), Path(output_dir)
        self.checkpoint = checkpoint if isinstance(checkpoint, list) else str(checkpoint)
        self.save_prob, self.overlay, self.verbose, self.raise_if_none = bool(save_prob), bool(overlay), verbose, raise_if_none

    def run(self) -> InferenceReport:
        """Every case (a file that cannot be read is reported with its reason; the others are still written).

        An output folder holding an earlier run's results is refused unless ``overwrite`` (then they are
        removed first, so the summary describes exactly the masks in the folder); one that is not writable
        is refused before any case is read."""
        from tqdm.auto import tqdm

        from ..io import read_case
        from ..io.output_folder import claim_output_dir, remove_earlier_results
        from ..io.overlay import write_overlay
        from ..io.summary import mask_statistics, write_summary
        from ..io.write_mask import output_suffix, write_mask, write_probability

        predictor, options, out_root = self.predictor, self.predictor.options, self.output_dir
        earlier = self.earlier if self.earlier is not None else claim_output_dir(out_root, self.input, self.overwrite)
        inputs = {f.resolve() for s in self.cases for f in [s.path, *s.files] if f.is_file()}
        remove_earlier_results([p for p in earlier if p.resolve() not in inputs])
        out_root.mkdir(parents=True, exist_ok=True)

        def target(path: Path) -> Path:
            if path.resolve() in inputs:
                raise OutputError(f"{path}: output would overwrite an input file; choose another --output_dir")
            return path

        report = InferenceReport()
        for source in tqdm(self.cases, desc="infer", unit="case", disable=not options.progress):
            row: dict[str, Any] = {"case": str(source.rel_dir / source.stem), "source": str(source.path), "status": "ok", "message": ""}
            started = time.perf_counter()
            if source.kind is None:
                row.update(status="skipped", message=f"{source.path}: not a supported image format")
                report.rows.append(row)
                continue
            try:
                case = read_case(source.path, source.kind, source.files)
                mask, prob, mapped_from = predictor.segment(case.image)
                base = out_root / source.rel_dir / source.stem
                suffix = output_suffix(case)
                row["mask"] = _relative(write_mask(case, mask, target(base.with_name(base.name + "_mask" + suffix))), out_root)
                if self.overlay:
                    row["overlay"] = _relative(write_overlay(case, mask, target(base.with_name(base.name + "_overlay.png"))), out_root)
                if self.save_prob:
                    row["probability"] = _relative(
                        write_probability(case, prob, target(base.with_name(base.name + "_prob" + suffix))), out_root)
                row.update(shape=list(case.spatial_shape), spacing_mm=list(case.spacing) if case.spacing else None,
                           intensity_mapped_from=mapped_from, **mask_statistics(mask, case.spacing))
            except UserError as err:
                row.update(status="error", message=str(err))
            except Exception as err:  # noqa: BLE001 - one bad case must not stop the others; reported with its path
                row.update(status="error", message=f"{source.path}: {type(err).__name__}: {err}")
            row["seconds"] = round(time.perf_counter() - started, 3)
            report.rows.append(row)
        run_info = {
            "checkpoint": self.checkpoint,
            "input": str(self.input),
            "options": {**options.summary(predictor.threshold), "save_prob": self.save_prob, "overlay": self.overlay},
            "training_record": predictor.record.state_dict(),
        }
        report.summary_csv, report.summary_json = write_summary(report.rows, out_root, run_info)
        if self.verbose:
            for line in report.lines():
                print(line, flush=True)
        if self.raise_if_none and report.count("ok") == 0:
            failures = [r["message"] for r in report.rows if r["status"] != "ok"]
            raise NothingProcessedError(f"nothing could be segmented in {self.input} ({len(failures)} inputs: {failures[0]})")
        return report


def run_folder(
    input: str | Path,
    output_dir: str | Path,
    ckpt: str | Path,
    options: InferenceOptions | None = None,
    save_prob: bool = False,
    overlay: bool = True,
    verbose: bool = True,
    raise_if_none: bool = True,
    overwrite: bool = False,
    **option_overrides: Any,
) -> InferenceReport:
    """Segment every readable image under ``input`` (file or folder) and write the results.

    Per case, under ``output_dir`` (mirroring sub-folders): ``<name>_mask.<png|nii.gz|nrrd|mha>``,
    ``<name>_overlay.png``, optionally ``<name>_prob.*``; for the run ``summary.csv`` / ``summary.json``.
    A file that cannot be read is reported (path and reason) and the others are still written.
    An ``output_dir`` holding results of an earlier run is refused unless ``overwrite`` (then they are
    removed first); one that is not writable is refused before any work.
    Raises :class:`UserError` for unusable settings, and — with ``raise_if_none`` — when no case
    could be segmented. ``option_overrides`` (``tta=True``, ``device="cpu"`` …) replace fields of ``options``.
    """
    options = InferenceOptions.build(options, **option_overrides)
    input_path, out_root = check_run(input, output_dir, ckpt)
    from ..io.output_folder import claim_output_dir

    earlier = claim_output_dir(out_root, input_path, bool(overwrite))  # refuse before loading anything
    device = choose_device(options.device)
    networks, record = load_ensemble(ckpt, device)
    predictor = Predictor(networks, record, options, device)
    cases = find_cases(input_path, out_root)
    return FolderRun(predictor, cases, input_path, out_root, checkpoint_names(ckpt), save_prob=save_prob, overlay=overlay,
                     verbose=verbose, raise_if_none=raise_if_none, overwrite=overwrite, earlier=earlier).run()
