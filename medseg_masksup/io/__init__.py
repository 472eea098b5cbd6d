"""Reading the images clinical researchers have and writing masks aligned with them.

- :mod:`.errors`: user-facing error types (the message names the file and the problem).
- :mod:`.case`: :class:`Case`, one input (a 2D image, a volume or a DICOM series) as a channel-first
  array plus the geometry needed to write results back in the input's grid.
- :mod:`.formats`: which file kinds are read, by name and content.
- :mod:`.discover`: the cases in a file or a folder (DICOM slices grouped into series).
- :mod:`.read_image2d`, :mod:`.read_nifti`, :mod:`.read_sitk`: one reader per family; :mod:`.readers`
  dispatches (:func:`read_case` for images, :func:`read_label` for masks).
- :mod:`.labels`: what a mask's stored values mean (the one binarisation rule of training and scoring).
- :mod:`.atomic`: temp-file-and-rename writes.
- :mod:`.write_mask`: masks / probability maps in the input's geometry; :mod:`.overlay`: quick-look PNG;
  :mod:`.summary`: per-case numbers and the CSV/JSON tables.
"""

from .case import Case
from .discover import discover_cases
from ..errors import InputError, OutputError, UserError
from .readers import read_case, read_label

__all__ = ["Case", "InputError", "OutputError", "UserError", "discover_cases", "read_case", "read_label"]
