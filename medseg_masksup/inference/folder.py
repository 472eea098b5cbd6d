"""Segment a file or a folder of images with a trained checkpoint and write masks, overlays and a summary."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..checkpoint import checkpoint_names
from ..errors import InputError, NothingProcessedError, OutputError, UserError
from ..io.output_folder import SUMMARY_FILES, VANISHED, EarlierResults
from .options import InferenceOptions
from .predictor import Predictor


#: the status of a case whose outputs could not (all) be written (a full disk, a vanished output folder)
NOT_WRITTEN = "not written"


@dataclass
class InferenceReport:
    """What :func:`run_folder` did: one row per case (``status`` ok / error / skipped / not written).

    ``stopped`` is ``(path, reason)`` when writing into the output folder became impossible (a full disk, a
    folder that vanished): the rows from ``stop_row`` on were not written. ``summary_error`` says why the
    summary could not be written."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    summary_csv: Path | None = None
    summary_json: Path | None = None
    manifest: Path | None = None
    stopped: tuple[Path, str] | None = None
    stop_row: int | None = None
    vanished: Path | None = None
    summary_error: str | None = None
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r["status"] == status)

    def lines(self) -> list[str]:
        """One line per case that failed before any stop or was read with a warning, then the totals."""
        shown = self.rows if self.stop_row is None else self.rows[: self.stop_row]
        out = [f"{'warning' if r['status'] == 'ok' else r['status']}: {r['message']}" for r in shown
               if r["status"] != "ok" or r["message"]]
        out += [f"note: {note}" for note in self.notes]
        not_written = f", {self.count(NOT_WRITTEN)} not written" if self.count(NOT_WRITTEN) else ""
        out.append(
            f"segmented {self.count('ok')} of {len(self.rows)} inputs ({self.count('error')} failed, "
            f"{self.count('skipped')} skipped{not_written}); summary: {self.summary_csv or 'not written'}"
        )
        return out

    def failure(self) -> str | None:
        """One line when the output folder failed (full, vanished) or the summary could not be written."""
        n = len(self.rows)
        if self.vanished is not None:
            return (f"output folder {self.vanished} {VANISHED} after {self.count('ok')} of {n} inputs were written; "
                    "the summary was not written")
        listed = f"{self.manifest} lists every file written"
        if self.stopped is not None:
            path, reason = self.stopped
            line = f"{path}: {reason}; the run stopped there: {self.count(NOT_WRITTEN)} of {n} inputs not written"
            if self.summary_error is None:
                return f"{line} (status '{NOT_WRITTEN}' in {self.summary_csv})"
            return f"{line}, and the summary was not written either ({self.summary_error}); {listed}"
        if self.summary_error is not None:
            return (f"{self.summary_error}; the summary was not written, but the masks of {self.count('ok')} of {n} "
                    f"inputs were: {listed}")
        return None


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
                 overwrite: bool = False, earlier: EarlierResults | None = None,
                 uncertainty: bool = False, uncertainty_settings: dict[str, Any] | None = None) -> None:
        self.predictor, self.cases = predictor, cases
        self.overwrite = bool(overwrite)
        self.earlier = earlier  # found by run_folder's claim_output_dir, which holds the folder while this runs
        self.input, self.output_dir = Path(input), Path(output_dir)
        self.checkpoint = checkpoint if isinstance(checkpoint, list) else str(checkpoint)
        self.save_prob, self.overlay, self.verbose, self.raise_if_none = bool(save_prob), bool(overlay), verbose, raise_if_none
        self.quality = None  # with ``uncertainty``: the passes and the review flag (quality.json beside the checkpoint)
        if uncertainty:
            from ..quality.flagging import QualityRun

            self.quality = QualityRun.prepare(predictor, self.checkpoint, uncertainty_settings)
        elif uncertainty_settings and any(v is not None for v in uncertainty_settings.values()):
            raise UserError(f"uncertainty settings ({', '.join(k for k, v in uncertainty_settings.items() if v is not None)}) "
                            "are only used with --uncertainty; add it")

    def run(self) -> InferenceReport:
        """Every case (a file that cannot be read is reported with its reason; the others are still written).

        The output folder is locked for the run and refused if it holds an earlier run's results (unless
        ``overwrite``: exactly the files that run wrote are removed first) or results this program did not
        write; one that is not writable is refused before any case is read. A full disk or a vanished folder
        stops the run: what was written stays, and the summary says per case what was not written."""
        from ..io.output_folder import claim_output_dir

        if self.earlier is not None:
            report = self._run(self.earlier)
        else:
            with claim_output_dir(self.output_dir, self.input, self.overwrite) as earlier:
                report = self._run(earlier)
        if self.verbose:
            for line in report.lines():
                print(line, flush=True)
        if self.raise_if_none and report.failure() is not None:
            raise OutputError(report.failure())
        if self.raise_if_none and report.count("ok") == 0:
            failures = [r["message"] for r in report.rows if r["status"] != "ok"]
            raise NothingProcessedError(f"nothing could be segmented in {self.input} ({len(failures)} inputs: {failures[0]})")
        return report

    def _run(self, earlier: EarlierResults) -> InferenceReport:
        """:meth:`run` in the claimed output folder: remove the earlier results, then write, watched."""
        from tqdm.auto import tqdm

        from ..io.atomic import watched_writes
        from ..io.output_folder import RunOutputs, not_writable, remove_earlier_results

        options, out_root = self.predictor.options, self.output_dir
        inputs = {f.resolve() for s in self.cases for f in [s.path, *s.files] if f.is_file()}
        remove_earlier_results(earlier, keep=inputs)
        try:
            outputs = RunOutputs(out_root, {"command": "infer", "input": str(self.input), "pid": os.getpid(),
                                            "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        except OSError as err:
            raise not_writable(out_root, err) from None
        report = InferenceReport(manifest=outputs.manifest.path)
        try:
            with watched_writes(outputs):
                for source in tqdm(self.cases, desc="infer", unit="case", disable=not options.progress):
                    report.rows.append(self._case(source, inputs, outputs, report))
                if self.quality is not None:
                    report.notes += self.quality.lines(report.rows)
                self._write_summary(report, outputs)
        finally:
            outputs.close()
        return report

    def _case(self, source, inputs: set[Path], outputs, report: InferenceReport) -> dict[str, Any]:
        """Read, segment and write one case; its summary row."""
        from ..io import read_case
        from ..io.summary import mask_statistics

        row: dict[str, Any] = {"case": str(source.rel_dir / source.stem), "source": str(source.path), "status": "ok", "message": ""}
        if report.stopped is not None:
            path, reason = report.stopped
            return {**row, "status": NOT_WRITTEN, "message": f"{source.path}: not segmented: the run stopped at {path} ({reason})"}
        if source.kind is None:
            return {**row, "status": "skipped", "message": f"{source.path}: not a supported image format"}
        started = time.perf_counter()
        try:
            case = read_case(source.path, source.kind, source.files)
            mask, prob, mapped_from, uncertainty = self._segment(case, row)
            row.update(shape=list(case.spatial_shape), spacing_mm=list(case.spacing) if case.spacing else None,
                       intensity_mapped_from=mapped_from, nonfinite_values=case.nonfinite, message="; ".join(case.notes),
                       **mask_statistics(mask, case.spacing))
        except UserError as err:
            row.update(status="error", message=str(err))
        except Exception as err:  # noqa: BLE001 - one bad case must not stop the others; reported with its path
            row.update(status="error", message=f"{source.path}: {type(err).__name__}: {err}")
        else:
            self._write_case(source, case, mask, prob, inputs, outputs, row, report, uncertainty)
        row["seconds"] = round(time.perf_counter() - started, 3)
        return row

    def _segment(self, case, row: dict[str, Any]):
        """Mask, probabilities, intensity mapping and (with ``uncertainty``) the uncertainty map of one case; its
        quality score and review flag go into ``row``. The mask is the same either way (the same ``segment`` call)."""
        if self.quality is None:
            return (*self.predictor.segment(case.image, case.stored_bits), None)
        from ..quality.passes import assess

        result = assess(self.predictor, case.image, self.quality.settings, case.stored_bits)
        row.update(self.quality.row(result.scores))
        return result.mask, result.prob, result.mapped_from, result.uncertainty

    def _write_case(self, source, case, mask, prob, inputs: set[Path], outputs, row: dict[str, Any],
                    report: InferenceReport, uncertainty=None) -> None:
        """Write the mask (overlay, probability) of one case; a write that fails is recorded in ``row``, and one
        that leaves the folder unusable (full, gone) stops the run."""
        from ..io.output_folder import folder_failure
        from ..io.overlay import write_overlay
        from ..io.write_mask import output_suffix, write_mask, write_probability

        out_root = self.output_dir
        writing = [out_root]  # the output being written, named when it fails

        def target(path: Path) -> Path:
            if path.resolve() in inputs:
                raise OutputError(f"{path}: output would overwrite an input file; choose another --output_dir")
            writing[0] = path
            return path

        base = out_root / source.rel_dir / source.stem
        suffix = output_suffix(case)
        try:
            row["mask"] = _relative(write_mask(case, mask, target(base.with_name(base.name + "_mask" + suffix))), out_root)
            if self.overlay:
                row["overlay"] = _relative(write_overlay(case, mask, target(base.with_name(base.name + "_overlay.png"))), out_root)
            if self.save_prob:
                row["probability"] = _relative(
                    write_probability(case, prob, target(base.with_name(base.name + "_prob" + suffix))), out_root)
            if uncertainty is not None:
                from ..quality.maps import SUFFIX, write_uncertainty

                row["uncertainty"] = _relative(
                    write_uncertainty(case, uncertainty, target(base.with_name(base.name + SUFFIX + suffix))), out_root)
        except UserError as err:
            row.update(status="error", message=str(err))
        except OSError as err:
            if outputs.vanished():
                report.vanished = out_root
                report.stopped, report.stop_row = (out_root, f"output folder {VANISHED}"), len(report.rows)
                row.update(status=NOT_WRITTEN, message=f"{out_root}: not written: output folder {VANISHED}")
                return
            reason = err.strerror or str(err)
            row.update(status=NOT_WRITTEN, message=f"{writing[0]}: not written: {reason}")
            if folder_failure(err, out_root):
                report.stopped, report.stop_row = (writing[0], reason), len(report.rows)
        except Exception as err:  # noqa: BLE001 - a writer failing on one case must not stop the others
            row.update(status=NOT_WRITTEN, message=f"{writing[0]}: not written: {type(err).__name__}: {err}")

    def _write_summary(self, report: InferenceReport, outputs) -> None:
        """``summary.csv`` / ``summary.json``, unless the folder vanished; a failure is recorded in ``report``."""
        from ..io.summary import write_summary

        if report.vanished is None and outputs.vanished():
            report.vanished = self.output_dir
        if report.vanished is not None:
            return
        run_info = {
            "checkpoint": self.checkpoint,
            "input": str(self.input),
            "options": {**self.predictor.options.summary(self.predictor.threshold, self.predictor.mode), "save_prob": self.save_prob,
                        "overlay": self.overlay},
            "training_record": self.predictor.record.state_dict(),
        }
        if self.quality is not None:
            run_info["uncertainty"] = self.quality.summary()
        try:
            report.summary_csv, report.summary_json = write_summary(report.rows, self.output_dir, run_info)
        except (OSError, OutputError) as err:
            if outputs.vanished():
                report.vanished = self.output_dir
                return
            failed = self.output_dir / next((n for n in SUMMARY_FILES if outputs.root / n not in outputs.written),
                                            SUMMARY_FILES[-1])
            report.summary_error = str(err) if isinstance(err, OutputError) else f"{failed}: {err.strerror or err}"


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
    uncertainty: bool = False,
    uncertainty_settings: dict[str, Any] | None = None,
    **option_overrides: Any,
) -> InferenceReport:
    """Segment every readable image under ``input`` (file or folder) and write the results.

    Per case, under ``output_dir`` (mirroring sub-folders): ``<name>_mask.<png|nii.gz|nrrd|mha>``,
    ``<name>_overlay.png``, optionally ``<name>_prob.*`` and (``uncertainty``, :mod:`medseg_masksup.quality`)
    ``<name>_uncertainty.*`` with a quality score and review flag per case; for the run ``summary.csv`` / ``summary.json`` and
    the manifest of the files written. A file that cannot be read is reported (path and reason) and the others
    are still written. The output folder is locked for the run; one holding results of an earlier run is
    refused unless ``overwrite`` (then exactly the files that run wrote are removed first), one holding results
    this program did not write is refused, one that is not writable is refused before any work.
    Raises :class:`UserError` for unusable settings, and — with ``raise_if_none`` — when no case
    could be segmented or the output folder failed (full, vanished). ``option_overrides`` (``tta=True``,
    ``device="cpu"`` …) replace fields of ``options``.
    """
    options = InferenceOptions.build(options, **option_overrides)
    input_path, out_root = check_run(input, output_dir, ckpt)
    from ..io.output_folder import claim_output_dir

    with claim_output_dir(out_root, input_path, bool(overwrite)) as earlier:  # refuse before loading anything
        predictor = Predictor.from_checkpoint(ckpt, options)
        cases = find_cases(input_path, out_root)
        return FolderRun(predictor, cases, input_path, out_root, checkpoint_names(ckpt), save_prob=save_prob,
                         overlay=overlay, verbose=verbose, raise_if_none=raise_if_none, overwrite=overwrite,
                         earlier=earlier, uncertainty=uncertainty, uncertainty_settings=uncertainty_settings).run()
