"""File plumbing every stage may use: CSV or Parquet by suffix, one-line read errors, atomic writes.

The format of a file follows its suffix: ``.parquet`` / ``.pq`` is Parquet, anything else CSV.
Readers raise :class:`~convexsched.errors.DataError` naming the file and the problem, never a
parser traceback. Every writer is atomic: it writes a hidden temporary file beside the target and
renames it into place, so an error (a full disk, an interrupt) never leaves half a file, and the
previous file survives until the new one is complete. :func:`check_outputs` validates a command's
output paths before any work starts.

This module imports no stage (``data``, ``model``, ``optimize``, ``execution``): the loaders use
it without depending on the curve and schedule formats of :mod:`convexsched.io`.
"""

from __future__ import annotations

import os
import tempfile
import threading
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from .errors import DataError, OutputError

PARQUET_SUFFIXES = (".parquet", ".pq")


def is_parquet(path):
    """Whether ``path`` is written and read as Parquet (by its suffix)."""
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


# A zip or compressed CSV cut short fails inside zipfile/zlib, not in the CSV parser.
UNREADABLE = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, UnicodeDecodeError)


def unreadable_error(path, error):
    """A one-line :class:`DataError` for a file the parser could not read (one of :data:`UNREADABLE`)."""
    if isinstance(error, (zipfile.BadZipFile, EOFError, zlib.error)):
        return DataError(f"cannot read {Path(path).name}: the archive is truncated or corrupt ({error})")
    # Parser errors span several lines; the first one names the problem.
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return DataError(f"cannot read {Path(path).name} as {'Parquet' if is_parquet(path) else 'CSV'}: {first}")


def existing_file(path):
    """``path`` as a Path if it is a file, else :class:`DataError` ("no such file")."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    return path


def table_columns(path):
    """The column names of a CSV or Parquet file, read from its header (or schema) only."""
    try:
        if is_parquet(path):
            import pyarrow.parquet as pq

            return pq.read_schema(path).names
        return list(pd.read_csv(path, nrows=0).columns)
    except UNREADABLE as exc:
        raise unreadable_error(path, exc) from None


def read_columns(path, usecols=None, text=()):
    """A CSV or Parquet file (``usecols`` only, when given).

    A named Parquet index is made a column again; the columns ``text`` are read as strings
    (codes such as ``000400``).
    """
    try:
        if is_parquet(path):
            # Databento's to_parquet stores ts_recv as the index.
            frame = pd.read_parquet(path, columns=usecols)
            frame = frame.reset_index() if frame.index.name is not None else frame
            for column in text:
                if column in frame and not pd.api.types.is_string_dtype(frame[column]):
                    frame[column] = frame[column].astype(str)
            return frame
        return pd.read_csv(path, usecols=usecols, dtype=dict.fromkeys(text, str) or None)
    except UNREADABLE as exc:
        raise unreadable_error(path, exc) from None


def read_table(path):
    """A CSV or Parquet file as a DataFrame.

    Raises
    ------
    DataError
        The file is missing, unreadable, or holds no rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    try:
        frame = pd.read_parquet(path) if is_parquet(path) else pd.read_csv(path)
    except UNREADABLE as error:
        raise unreadable_error(path, error) from None
    if frame.empty:
        raise DataError(f"{path.name} holds no rows")
    return frame


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Outputs that check_outputs found absent without --force: they are published without replacing
# whatever may have appeared since (another run writing the same name).
_MUST_BE_NEW: set[str] = set()
_MUST_BE_NEW_LOCK = threading.Lock()


def _key(path):
    return os.path.normcase(os.path.abspath(path))


@contextmanager
def atomic_path(path):
    """A temporary path beside ``path`` that is renamed onto ``path`` when the block succeeds.

    The temporary name keeps the suffix (writers that pick a format by suffix still work) and
    starts with a dot; it is removed when the block raises (an error, Ctrl-C, or SIGTERM under
    the command line). The folder is created if needed.

    When :func:`check_outputs` validated ``path`` as a new file (no ``force``), the rename does
    not replace a file that appeared since: the temporary file is hard-linked to ``path``, which
    fails atomically if the name is taken (:class:`OutputError`), so two runs writing the same
    output cannot silently replace one another.

    Examples
    --------
    >>> with atomic_path("plot.png") as tmp:          # doctest: +SKIP
    ...     figure.savefig(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    temporary = Path(name)
    try:
        # mkstemp makes the file private (0600); a finished output gets the usual permissions.
        os.chmod(temporary, 0o666 & ~_umask())
        yield temporary
        with _MUST_BE_NEW_LOCK:
            new = _key(path) in _MUST_BE_NEW
        if new:
            _publish_new(temporary, path)
            with _MUST_BE_NEW_LOCK:
                _MUST_BE_NEW.discard(_key(path))
        else:
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def release_outputs():
    """Forget the outputs :func:`check_outputs` reserved as new.

    The command line calls it when a command ends, written or not.
    """
    with _MUST_BE_NEW_LOCK:
        _MUST_BE_NEW.clear()


def _publish_new(temporary, path):
    """Move ``temporary`` to ``path`` only if no file has that name (atomically)."""
    taken = OutputError(
        f"{path} appeared while this command ran (another run writing the same file?); it was left as it "
        "is: pass --force to overwrite it"
    )
    try:
        os.link(temporary, path)  # fails if path exists, never replaces it
    except FileExistsError:
        raise taken from None
    except OSError:
        # No hard links on this file system: claim the name exclusively, then fill it.
        try:
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~_umask()))
        except FileExistsError:
            raise taken from None
        os.replace(temporary, path)


def check_outputs(outputs, inputs=None, force=False):
    """Validate output paths before anything is computed or written.

    Parameters
    ----------
    outputs : dict
        ``name -> path`` of every file a command will write (``None`` entries are skipped);
        the names (e.g. ``"--output"``) appear in the messages.
    inputs : dict, optional
        ``name -> path`` of the files it reads.
    force : bool
        Allow replacing existing files. Without it, the outputs must still be new when they are
        written (:func:`atomic_path`).

    Raises
    ------
    OutputError
        An output is an input or another output, exists (without ``force``), is a folder, or
        lies where no file can be created (a read-only folder, a file used as a folder).
    """
    inputs = {name: Path(path) for name, path in (inputs or {}).items() if path is not None}
    seen: dict[str, Path] = {}
    for name, path in outputs.items():
        if path is None:
            continue
        path = Path(path)
        for other, source in inputs.items():
            if _same_file(path, source):
                raise OutputError(f"{name} {path} is also the input {other}: refusing to overwrite an input")
        for other, target in seen.items():
            if _same_file(path, target):
                raise OutputError(f"{name} and {other} are the same file {path}")
        seen[name] = path
        if path.is_dir():
            raise OutputError(f"{name} {path} is a folder, not a file")
        if path.exists() and not force:
            raise OutputError(f"{name} {path} exists; pass --force to overwrite it")
        _check_writable_folder(name, path.parent)
        if not force:
            with _MUST_BE_NEW_LOCK:
                _MUST_BE_NEW.add(_key(path))


def _same_file(a, b):
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def _check_writable_folder(name, folder):
    """Create and remove a probe file in ``folder`` (or its nearest existing ancestor).

    ``os.access`` is no test: it says yes to root on a read-only mount.
    """
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"{name}: cannot create a file under {folder}: {existing} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise OutputError(f"{name}: cannot write in {existing}: {error.strerror or error}") from None


def write_table(frame, path, index=False):
    """Write ``frame`` to CSV or Parquet by the suffix of ``path`` (atomically, folder created)."""
    path = Path(path)
    with atomic_path(path) as temporary:
        if is_parquet(path):
            frame.to_parquet(temporary, index=index)
        else:
            frame.to_csv(temporary, index=index)
    return path


def save_figure(figure, path, dpi=110):
    """Save a matplotlib figure atomically, in the format of the suffix of ``path``.

    Raises
    ------
    DataError
        The suffix is no image format matplotlib writes.
    """
    path = Path(path)
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=dpi, format=path.suffix.lstrip(".").lower() or "png")
    except ValueError as error:
        raise DataError(f"cannot save a plot as {path.name}: {' '.join(str(error).split())}") from None
    return path
