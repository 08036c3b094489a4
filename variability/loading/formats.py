"""Telling model files apart by their bytes, before anything in them is loaded.

PyTorch writes zip archives for ``torch.save``, ``torch.jit.save`` and ``torch.export.save``; the
entries inside say which. ``torch.save`` before PyTorch 1.6 wrote a pickled magic number first. A
bare pickle starts with the pickle protocol opcode. Sniffing never
unpickles, so it is safe on any file.
"""

from __future__ import annotations

import zipfile
from enum import StrEnum
from pathlib import Path

from variability.arch.errors import CorruptModelFileError, NotAModelFileError
from variability.arch.files import LEGACY_MAGIC, ZIP_MAGIC, check_model_path

__all__ = ["FileKind", "sniff_model_file"]


class FileKind(StrEnum):
    TORCH = "torch.save file"  # a variability model file, a state dict, or pickled objects
    EXPORT = "torch.export program"
    TORCHSCRIPT = "TorchScript archive"
    PICKLE = "pickle"


def _is_pickle(head: bytes) -> bool:
    """Pickle protocols 2 to 5 open with PROTO (0x80) and the protocol number."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def sniff_model_file(path: str | Path) -> FileKind:
    """Which kind of model file ``path`` is; ModelFileErrors for missing, empty, damaged, other."""
    file = Path(path)
    head = check_model_path(file)
    if head.startswith(LEGACY_MAGIC):
        return FileKind.TORCH
    if _is_pickle(head):
        return FileKind.PICKLE
    if not head.startswith(ZIP_MAGIC):
        raise NotAModelFileError(
            f"{file} is not a model file: it is neither a PyTorch archive (torch.save, "
            "torch.export.save, torch.jit.save) nor a pickle",
            file,
        )
    try:
        with zipfile.ZipFile(file) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise CorruptModelFileError(
            f"{file} is truncated or damaged and cannot be read ({error})", file
        ) from None
    leaves = {name.rsplit("/", 1)[-1] for name in names}
    if "archive_format" in leaves:
        return FileKind.EXPORT
    if "constants.pkl" in leaves:
        return FileKind.TORCHSCRIPT
    if "data.pkl" in leaves:
        return FileKind.TORCH
    raise NotAModelFileError(
        f"{file} is a zip archive, but not one that PyTorch writes (no data.pkl, no TorchScript "
        "code, no torch.export program)",
        file,
    )
