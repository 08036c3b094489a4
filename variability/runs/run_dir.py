"""The run directory: where a monitored training run keeps its configuration and its records.

Layout (docs/runs.md documents it; ``FORMAT_VERSION`` is its version)::

    run.json          configuration: what ran, with what settings, versions, device
    metrics.jsonl     one JSON object per line, appended as each record is made
    model.pt          the checkpoint chosen on the validation split (``variability.arch`` format)
    checkpoints/      last.pt: everything a resumed run needs (weights, optimizer, RNG, step)
    result.json       final figures; present only once a run has finished
    report/           ``variability report RUN_DIR`` writes here by default

Why it is written this way:

- Every batch of records goes to ``metrics.jsonl`` with one unbuffered ``os.write`` on a file
  opened for appending: once the call returns the bytes are the kernel's, so a process killed at
  any moment (SIGKILL included) keeps every record written before. Each line is complete JSON.
- A resumed run never rewrites or deletes a line: it appends a ``resume`` record naming the step
  it continues after, and readers drop the earlier segments' records past that step
  (``read_records`` applies this rule; docs/runs.md gives it in pandas).
- Writability and free space are checked when a run starts, not after an hour of training.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from variability.atomic import atomic_file
from variability.errors import UserError
from variability.runs.jsonl import read_json_lines

FORMAT = "variability-run"
FORMAT_VERSION = 1

RUN_FILE = "run.json"
METRICS_FILE = "metrics.jsonl"
RESULT_FILE = "result.json"
MODEL_FILE = "model.pt"
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.pt"

MIN_FREE_BYTES = 16 * 1024 * 1024
"""Free space a run asks for beyond its own estimate: room for checkpoints' temporary copies."""


class RunDirError(UserError):
    """A run directory that cannot be used: not writable, disk full, not a run, another run's."""


@dataclass(frozen=True)
class RunSetup:
    """A run directory, and how a ``Monitor`` opens it (``Monitor(model, RunSetup(...))``).

    A path alone starts a new run there. ``resume_step``: continue the run in ``path`` after
    step S, its last checkpoint (its records past S are superseded: docs/runs.md); -1 starts a
    run killed before its first checkpoint over, keeping its lines. ``info``: entries of
    ``run.json`` to add, merged one level deep into the Monitor's own (``{"config": {...}}``
    stores your settings; the trainer adds its task, config and command). ``required_bytes``:
    free disk space to check for, beyond 16 MB (the trainer's estimate of its checkpoints).
    """

    path: str | os.PathLike[str]
    resume_step: int | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    required_bytes: int = 0


def _describe(error: OSError) -> str:
    return error.strerror or type(error).__name__


def json_safe(value: Any) -> Any:
    """``value`` with NumPy scalars made plain and NaN/Inf made None (strict JSON has neither)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):  # NumPy and zero-dimensional torch scalars
        return json_safe(value.item())
    return str(value)


def record_line(record: Mapping[str, Any]) -> str:
    """One record as a line of strict JSON (plain records go straight through ``json.dumps``)."""
    try:
        text = json.dumps(record, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):  # NaN, Inf or a NumPy scalar somewhere
        text = json.dumps(json_safe(record), allow_nan=False, separators=(",", ":"))
    return text + "\n"


class MetricsFile:
    """``metrics.jsonl`` opened for appending; every ``write`` is one unbuffered system call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def open(self) -> int:
        """Open for appending (created if missing); returns the bytes of a torn last line dropped.

        A line cut short by a kill mid-write is not a record: it is cut off, so the file stays
        readable by ``pandas.read_json(lines=True)``. (Records are written in one call each, so
        in practice a kill leaves whole lines.)
        """
        dropped = 0
        try:
            if self.path.exists() and self.path.stat().st_size:
                dropped = _cut_torn_tail(self.path)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as error:
            raise RunDirError(f"cannot open {self.path} for writing: {_describe(error)}") from None
        return dropped

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Append records, one JSON object per line, in one write; raises RunDirError on failure."""
        if not records:
            return
        if self._fd is None:
            self.open()
        data = memoryview("".join(record_line(r) for r in records).encode("utf-8"))
        try:
            while data:
                written = os.write(self._fd, data)  # type: ignore[arg-type]
                data = data[written:]
        except OSError as error:
            raise RunDirError(
                f"could not write to {self.path}: {_describe(error)}"
                + (" (the disk is full)" if error.errno == errno.ENOSPC else "")
                + "; records written before are kept"
            ) from None

    def sync(self) -> None:
        """Force the records to disk (checkpoints call this: it costs a disk round trip)."""
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as error:
                raise RunDirError(f"could not write to {self.path}: {_describe(error)}") from None

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def _cut_torn_tail(path: Path) -> int:
    """Truncate ``path`` after its last newline; returns the number of bytes removed."""
    size = path.stat().st_size
    with path.open("rb+") as stream:
        position = size
        block = 4096
        while position > 0:
            start = max(0, position - block)
            stream.seek(start)
            chunk = stream.read(position - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            position = start
        else:
            keep = 0
        if keep < size:
            stream.truncate(keep)
    return size - keep


class RunDirectory:
    """A run directory: checks at start, atomic JSON files, the metrics file, paths."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.metrics = MetricsFile(self.path / METRICS_FILE)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.path)!r})"

    # --- paths ---------------------------------------------------------------------------------

    @property
    def run_file(self) -> Path:
        return self.path / RUN_FILE

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def result_file(self) -> Path:
        return self.path / RESULT_FILE

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    @property
    def last_checkpoint(self) -> Path:
        return self.path / CHECKPOINT_DIR / LAST_CHECKPOINT

    def has_records(self) -> bool:
        return self.metrics_file.exists() and self.metrics_file.stat().st_size > 0

    def is_run(self) -> bool:
        return self.run_file.exists()

    # --- start ---------------------------------------------------------------------------------

    def prepare(self, required_bytes: int = 0) -> None:
        """Create the folder and prove it writable with room to spare, or raise RunDirError.

        Runs before any training: a run that cannot write its records fails now, with one clear
        sentence, rather than after hours of work.
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)  # checkpoints/ comes with a checkpoint
        except FileExistsError:
            raise RunDirError(f"{self.path} exists and is not a folder; choose another") from None
        except OSError as error:
            raise RunDirError(
                f"cannot create the run directory {self.path}: {_describe(error)}"
            ) from None
        for name in (METRICS_FILE, RUN_FILE, CHECKPOINT_DIR):
            target = self.path / name
            if name != CHECKPOINT_DIR and target.is_dir():
                raise RunDirError(f"{target} is a folder; a run needs it to be a file")
        try:
            handle, probe = tempfile.mkstemp(prefix=".write-check-", dir=self.path)
            try:
                os.write(handle, b"\0" * 4096)
                os.fsync(handle)
            finally:
                os.close(handle)
                os.unlink(probe)
        except OSError as error:
            raise RunDirError(
                f"cannot write in the run directory {self.path}: {_describe(error)}"
            ) from None
        free = free_bytes(self.path)
        needed = MIN_FREE_BYTES + max(0, int(required_bytes))
        if free < needed:
            raise RunDirError(
                f"only {_megabytes(free)} free on the disk holding {self.path}; this run needs "
                f"about {_megabytes(needed)} (checkpoints, model file, metrics). Free some space "
                "or choose another directory"
            )

    # --- JSON files ----------------------------------------------------------------------------

    def write_json(self, name: str, data: Mapping[str, Any]) -> Path:
        """Write ``name`` atomically (temporary file, then rename)."""
        target = self.path / name
        text = json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n"
        try:
            with atomic_file(target) as stream:
                stream.write(text)
        except OSError as error:
            raise RunDirError(f"could not write {target}: {_describe(error)}") from None
        return target

    def read_json(self, name: str) -> dict[str, Any]:
        target = self.path / name
        try:
            data = json.loads(target.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunDirError(f"{self.path} is not a run directory (no {name})") from None
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise RunDirError(f"{target} is damaged and cannot be read ({error})") from None
        if not isinstance(data, dict):
            raise RunDirError(f"{target} is damaged: it does not hold a JSON object")
        return data

    def read_run(self) -> dict[str, Any]:
        """``run.json``, checked to be a run of a format this version reads."""
        data = self.read_json(RUN_FILE)
        if data.get("format") != FORMAT:
            raise RunDirError(f"{self.run_file} is not a variability run file")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise RunDirError(
                f"{self.path} uses run format {version!r}; this version of variability reads "
                f"up to {FORMAT_VERSION}"
            )
        return data

    def read_result(self) -> dict[str, Any] | None:
        return self.read_json(RESULT_FILE) if self.result_file.exists() else None

    # --- records -------------------------------------------------------------------------------

    def records(self, *, superseded: bool = False) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl`` in file order (see ``read_records``)."""
        return read_records(self.metrics_file, superseded=superseded)


def free_bytes(path: Path) -> int:
    """Free bytes on the disk holding ``path`` (tests replace this to simulate a full disk)."""
    return shutil.disk_usage(path).free


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.1f} MB"


def read_records(path: str | os.PathLike[str], *, superseded: bool = False) -> list[dict[str, Any]]:
    """Every record of a metrics file, in file order, with the resume rule applied.

    Rule: a ``resume`` record with step S replaces, in every earlier segment, the records whose
    step is greater than S (a killed run wrote them after its last checkpoint; the resumed run
    writes those steps again). With ``superseded=True`` they are kept, flagged
    ``"superseded": True``. Lines that are not JSON objects (a line torn by a kill, bytes that
    are not UTF-8) are skipped; ``read_json_lines`` says which.
    """
    return apply_resume_rule(read_json_lines(path).records, superseded=superseded)


def apply_resume_rule(
    records: list[dict[str, Any]], *, superseded: bool = False
) -> list[dict[str, Any]]:
    """``records`` (in file order) without those a later ``resume`` record supersedes, or with
    them flagged ``"superseded": True`` (see ``read_records``)."""
    for position, record in enumerate(records):
        if record.get("type") != "resume":
            continue
        after = record.get("step", -1)
        for earlier in records[:position]:
            step = earlier.get("step")
            if isinstance(step, int | float) and step > after:
                earlier["superseded"] = True
    if superseded:
        return records
    return [r for r in records if not r.get("superseded")]


def records_frame(records: Iterable[Mapping[str, Any]], kind: str | None = None) -> pd.DataFrame:
    """Records as a pandas DataFrame, optionally only those of one ``type``."""
    import pandas as pd

    rows = [r for r in records if kind is None or r.get("type") == kind]
    return pd.DataFrame(rows)


def read_metrics(run_dir: str | os.PathLike[str], kind: str | None = None) -> pd.DataFrame:
    """``metrics.jsonl`` of a run as a DataFrame (resume rule applied), optionally one ``type``."""
    return records_frame(read_records(Path(run_dir) / METRICS_FILE), kind)
