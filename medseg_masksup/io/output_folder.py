"""The output folder of ``infer``: locked for the run, and holding only what the program knows it wrote.

- **Lock.** ``.medseg-masksup.lock`` (:mod:`.folder_lock`) is held for the whole run: a second run into the
  folder is refused, naming the holder.
- **Ownership.** Each run lists the files it writes in ``.medseg-masksup-manifest.jsonl`` (:mod:`.manifest`).
  Files of the previous run that still match that list are its results: a new run refuses them unless
  ``overwrite``, which deletes exactly those. Nothing else is ever deleted or replaced: a file changed since it
  was written, a user's own mask, or results written by another program or by a version before manifests (the
  folder is then refused, with or without ``overwrite``).
- **Failure while writing.** :class:`RunOutputs` refuses to replace a file the run did not write and stops
  writes into a folder that vanished (it is not made again).

Files inside the input are never touched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OutputError
from .folder_lock import hold_lock, print_note
from .manifest import MANIFEST_NAME, ManifestError, ManifestWriter, listed_path, read_manifest, still_written

SUMMARY_FILES = ("summary.csv", "summary.json")
RESULT_PATTERNS = ("*_mask.*", "*_overlay.png", "*_prob.*", "*_uncertainty.*")
LOCK_NAME = ".medseg-masksup.lock"
#: errors after which nothing more can be written into the folder: the run stops
FOLDER_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})
VANISHED = "vanished during the run (deleted, moved or unmounted)"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _may_be_input(path: Path, input_path: Path, output_dir: Path) -> bool:
    """Whether ``path`` could be one of the inputs (an output folder nested in the input folder is not read)."""
    if not input_path.is_dir():
        return path.resolve() == input_path.resolve()
    return _inside(path, input_path) and not (_inside(output_dir, input_path) and _inside(path, output_dir))


def result_like_files(output_dir: Path, input_path: Path) -> list[Path]:
    """Files under ``output_dir`` named like results (``summary.*``, ``*_mask.*`` …; none inside ``input_path``)."""
    if not output_dir.is_dir():
        return []
    found = [output_dir / name for name in SUMMARY_FILES if (output_dir / name).is_file()]
    for pattern in RESULT_PATTERNS:
        found += [p for p in output_dir.rglob(pattern) if p.is_file()]
    return sorted({p for p in found if not _may_be_input(p, input_path, output_dir)})


def _names(files: list[Path], folder: Path, shown: int = 3) -> str:
    names = ", ".join(Path(os.path.relpath(p, folder)).as_posix() for p in files[:shown])
    return names + (f" and {len(files) - shown} more" if len(files) > shown else "")


@dataclass
class EarlierResults:
    """What an earlier run left in the folder: its files as it wrote them (``overwrite`` deletes these) and
    those changed since (kept)."""

    unchanged: list[Path] = field(default_factory=list)
    changed: list[Path] = field(default_factory=list)


def earlier_results(output_dir: Path, input_path: Path) -> EarlierResults:
    """The earlier run's files, from its manifest. A folder with result-like files but no manifest (another
    program, or a version before manifests) is refused: they are never deleted, so ``overwrite`` cannot help."""
    try:
        entries = read_manifest(output_dir)
    except ManifestError as err:
        raise OutputError(f"output folder {output_dir}: {err}; nothing in it is deleted: choose another --output_dir") from None
    if entries is None:
        foreign = result_like_files(output_dir, input_path)
        if foreign:
            raise OutputError(
                f"output folder {output_dir} holds files that look like results but were not written by this program, "
                f"or were written by a version that kept no record of its outputs ({_names(foreign, output_dir)}); "
                "they are never deleted: move them away or choose another --output_dir")
        return EarlierResults()
    found = EarlierResults()
    for entry in sorted(entries, key=lambda e: e.path):
        listed = listed_path(output_dir, entry)
        if listed is None or _may_be_input(listed, input_path, output_dir):
            continue
        if still_written(output_dir, entry) is not None:
            found.unchanged.append(listed)
        elif os.path.lexists(listed):
            found.changed.append(listed)
    return found


def not_writable(output_dir: Path, err: OSError) -> OutputError:
    """The one-line error for an output folder that cannot be written to."""
    return OutputError(f"output folder {output_dir} is not writable ({err.strerror or type(err).__name__}); "
                       "choose another --output_dir")


def check_writable(output_dir: Path) -> list[Path]:
    """Make ``output_dir`` and write (then remove) a probe file in it; a one-line :class:`OutputError` if that
    fails. Returns the folders it made (deepest first), for :func:`claim_output_dir` to remove if left empty."""
    missing = [p for p in (output_dir, *output_dir.parents) if not p.exists()]
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-probe-"):
            pass
    except OSError as err:
        _remove_empty(missing)
        raise not_writable(output_dir, err) from None
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def claim_output_dir(output_dir: Path, input_path: Path, overwrite: bool,
                     note: Callable[[str], None] = print_note) -> Iterator[EarlierResults]:
    """Hold ``output_dir`` for a run: writable, locked, and refused if it holds an earlier run's results (unless
    ``overwrite``) or results the program did not write. Yields the earlier results that ``overwrite`` is to
    delete (:func:`remove_earlier_results`, once there is work to do). Folders it made and left empty are removed."""
    output_dir = Path(output_dir)
    made = check_writable(output_dir)
    busy = (lambda holder: f"output folder {output_dir} is in use by another infer run ({holder}); "
            "wait for it to finish or choose another --output_dir")
    try:
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(hold_lock(output_dir / LOCK_NAME, "infer run", busy, note=note,
                                              place=f"output folder {output_dir}"))
            except OSError as err:  # the lock or its record cannot be written (a full disk)
                raise not_writable(output_dir, err) from None
            earlier = earlier_results(output_dir, input_path)
            if earlier.unchanged and not overwrite:
                raise OutputError(f"output folder {output_dir} holds results of an earlier run "
                                  f"({_names(earlier.unchanged, output_dir)}); choose another --output_dir, or pass "
                                  f"--overwrite to replace them{_kept(earlier, output_dir)}")
            if earlier.changed:
                many = len(earlier.changed) > 1
                note(f"output folder {output_dir}: kept {len(earlier.changed)} file{'s' * many} an earlier run wrote "
                     f"and that {'were' if many else 'was'} changed since ({_names(earlier.changed, output_dir)}); "
                     f"{'they are' if many else 'it is'} never replaced")
            yield earlier
    finally:
        _remove_empty(made)


def _kept(earlier: EarlierResults, folder: Path) -> str:
    if not earlier.changed:
        return ""
    return f" (--overwrite keeps {_names(earlier.changed, folder)}: changed since that run wrote {'them' if len(earlier.changed) > 1 else 'it'})"


def remove_earlier_results(earlier: EarlierResults, keep: set[Path] = frozenset()) -> None:
    """Delete the earlier run's unchanged files (``overwrite``), except those in ``keep`` (resolved paths)."""
    for path in earlier.unchanged:
        if path.resolve() not in keep:
            path.unlink(missing_ok=True)


def folder_failure(err: OSError, output_dir: Path) -> bool:
    """Whether ``err`` means nothing more can be written into ``output_dir`` (full, read-only, gone)."""
    return err.errno in FOLDER_ERRORS or not output_dir.is_dir()


class RunOutputs:
    """Watches a run's writes into ``output_dir`` (:func:`~.atomic.watched_writes`): lists each file in the
    manifest before it is placed, refuses to replace a file the run did not write, and refuses any write once
    the folder has vanished (rather than making it again)."""

    def __init__(self, output_dir: Path, header: dict) -> None:
        self.root = Path(os.path.abspath(output_dir))
        self._identity = self._folder_identity()
        self.manifest = ManifestWriter(self.root, header)
        self.written: set[Path] = set()

    def _folder_identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.root)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def vanished(self) -> bool:
        return self._folder_identity() != self._identity

    def _ours(self, path: Path) -> Path | None:
        path = Path(os.path.abspath(path))
        return path if path.is_relative_to(self.root) and path != self.manifest.path else None

    def before_write(self, path: Path) -> None:
        path = self._ours(path)
        if path is None:
            return
        if self.vanished():
            raise FileNotFoundError(errno.ENOENT, f"output folder {VANISHED}", os.fspath(self.root))
        if os.path.lexists(path) and path not in self.written:
            raise OutputError(f"{path}: not replaced: this file was not written by this run (changed since an earlier "
                              "run wrote it, or written by someone else); move it away or choose another --output_dir")

    def before_replace(self, content: Path, path: Path) -> None:
        path = self._ours(path)
        if path is not None:
            self.manifest.add(content, path)
            self.written.add(path)

    def close(self) -> None:
        self.manifest.close()


__all__ = ["LOCK_NAME", "MANIFEST_NAME", "EarlierResults", "RunOutputs", "claim_output_dir", "earlier_results",
           "folder_failure", "not_writable", "remove_earlier_results", "result_like_files"]
