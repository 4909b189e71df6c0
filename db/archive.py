"""Safe extraction of an uploaded or imported ``.zip`` into a scratch folder inside the data dir.

A member is refused (and reported, never written) when its name could land outside the
target folder (``..`` parts, absolute paths, drive letters, NUL bytes), when it is a symbolic
link or another special file, encrypted, a duplicate name, or looks like a zip bomb: larger
than :data:`MAX_MEMBER_BYTES`, compressed more than :data:`MAX_RATIO` : 1 (members above
:data:`RATIO_MIN_BYTES`), pushing the archive past :data:`MAX_TOTAL_BYTES`, or inflating to
more bytes than its header declares. Bytes are counted while they are written, so a lying
header cannot fill the disk.

Before anything is written, :func:`extracted_zip` refuses the whole archive
(:class:`ArchiveTooLarge`) when it has more than ``max_members`` entries or its headers declare
more than ``max_total`` uncompressed bytes; while extracting, the bytes actually written are
counted against ``max_total`` too, and passing it aborts the whole extraction the same way.
"""
from __future__ import annotations

import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import FacetError

MAX_MEMBER_BYTES = 256 * 2**20
"""Largest member accepted, uncompressed (bytes)."""
MAX_TOTAL_BYTES = 16 * 2**30
"""Most bytes one archive may expand to (bytes)."""
MAX_RATIO = 200
"""Largest uncompressed/compressed ratio for a member over :data:`RATIO_MIN_BYTES`."""
RATIO_MIN_BYTES = 2**20
MAX_MEMBERS = 200_000
"""Most entries (files and folders) one archive may hold."""
_CHUNK = 2**20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Refused:
    """A member that was not extracted: its name as stored in the archive, and why."""

    name: str
    reason: str


@dataclass
class Extracted:
    """Result of :func:`extracted_zip`: the folder holding the members, and the refusals."""

    root: Path
    refused: list[Refused] = field(default_factory=list)


class ArchiveTooLarge(FacetError):
    """The archive as a whole is over a limit: nothing of it is extracted or imported."""


def check_limits(zf: zipfile.ZipFile, name: str, max_members: int = MAX_MEMBERS,
                 max_total: int = MAX_TOTAL_BYTES) -> None:
    """:class:`ArchiveTooLarge` when ``zf`` has more than ``max_members`` entries or declares
    more than ``max_total`` uncompressed bytes (from its central directory; nothing is read)."""
    infos = zf.infolist()
    if len(infos) > max_members:
        raise ArchiveTooLarge(f"{name}: archive refused, nothing imported: it has {len(infos)} "
                              f"members (limit {max_members})")
    declared = sum(info.file_size for info in infos)
    if declared > max_total:
        raise ArchiveTooLarge(f"{name}: archive refused, nothing imported: it declares "
                              f"{declared} uncompressed bytes (limit {max_total})")


def safe_parts(name: str) -> tuple[str, ...]:
    """Path parts of a member name, ``\\`` read as ``/``; ``FacetError`` if it may escape.

    ``"a/./b//c.png"`` → ``("a", "b", "c.png")``; a bare folder entry gives ``()``.
    """
    if "\x00" in name:
        raise FacetError("NUL byte in member name")
    norm = name.replace("\\", "/")
    if norm.startswith("/"):
        raise FacetError("absolute path refused")
    if _DRIVE.match(norm):
        raise FacetError("drive-letter path refused")
    parts = tuple(p for p in norm.split("/") if p not in ("", "."))
    if ".." in parts:
        raise FacetError("path with '..' refused (would leave the target folder)")
    return parts


def _mode_problem(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "symbolic link refused"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "not a regular file"
    if info.flag_bits & 0x1:
        return "encrypted member refused"
    return None


def _size_problem(info: zipfile.ZipInfo, total: int, max_total: int) -> str | None:
    if info.file_size > MAX_MEMBER_BYTES:
        return f"member too large: {info.file_size} bytes (limit {MAX_MEMBER_BYTES})"
    if info.file_size > RATIO_MIN_BYTES and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        ratio = info.file_size // max(info.compress_size, 1)
        return f"zip bomb refused: compression ratio {ratio}:1 (limit {MAX_RATIO}:1)"
    if total + info.file_size > max_total:
        return f"zip bomb refused: archive expands past {max_total} bytes"
    return None


def _copy_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path,
                 budget: int | None = None) -> int:
    """Stream one member to ``dest``, never writing more than its declared size; the bytes
    written. :class:`ArchiveTooLarge` (file removed) past ``budget`` bytes."""
    written = 0
    try:
        with zf.open(info) as src, open(dest, "xb") as out:
            while chunk := src.read(_CHUNK):
                written += len(chunk)
                if budget is not None and written > budget:
                    raise ArchiveTooLarge("archive refused, nothing imported: it expands past "
                                          "its size limit while extracting")
                if written > info.file_size:
                    raise FacetError("zip bomb refused: inflates past its declared size")
                out.write(chunk)
    except (zipfile.BadZipFile, zlib.error, NotImplementedError, EOFError) as err:
        dest.unlink(missing_ok=True)
        raise FacetError(f"corrupt member: {err}") from None
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return written


def extract_into(zip_path: Path, root: Path, max_total: int = MAX_TOTAL_BYTES, *,
                 max_members: int = MAX_MEMBERS, whole: bool = False) -> list[Refused]:
    """Extract the safe members of ``zip_path`` into the existing folder ``root``.

    Returns the refused members: one whose declared size would take the archive past
    ``max_total`` is refused alone, unless ``whole`` (then :func:`check_limits` refuses the
    archive first). Raises :class:`FacetError` when the file is not a zip, and
    :class:`ArchiveTooLarge` for more than ``max_members`` entries or when the bytes actually
    written pass ``max_total`` (what was written stays in ``root`` for the caller to remove).
    """
    root = root.resolve()
    refused: list[Refused] = []
    seen: set[tuple[str, ...]] = set()
    total = written = 0
    try:
        zf = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, zlib.error) as err:
        raise FacetError(f"{zip_path.name}: not a valid zip archive ({err})") from None
    with zf:
        if whole:
            check_limits(zf, zip_path.name, max_members, max_total)
        elif len(zf.infolist()) > max_members:
            check_limits(zf, zip_path.name, max_members, max_total=2**63)
        for info in zf.infolist():
            try:
                parts = safe_parts(info.filename)
                problem = _mode_problem(info)
                if problem is None and not info.is_dir() and parts:
                    problem = ("duplicate member name" if parts in seen
                               else _size_problem(info, total, max_total))
                if problem is not None:
                    raise FacetError(problem)
                if info.is_dir() or not parts:
                    continue
                dest = root.joinpath(*parts)
                if not dest.resolve().is_relative_to(root):
                    raise FacetError("path leaves the target folder")
                dest.parent.mkdir(parents=True, exist_ok=True)
                written += _copy_member(zf, info, dest, max_total - written)
                seen.add(parts)
                total += info.file_size
            except ArchiveTooLarge as err:
                raise ArchiveTooLarge(f"{zip_path.name}: {err}") from None
            except FacetError as err:
                refused.append(Refused(info.filename, str(err)))
            except OSError as err:  # e.g. a file and a folder of the same name
                refused.append(Refused(info.filename, f"cannot extract: {err.strerror or err}"))
    return refused


@contextmanager
def extracted_zip(zip_path: Path, scratch_dir: Path, max_total: int = MAX_TOTAL_BYTES,
                  max_members: int = MAX_MEMBERS) -> Iterator[Extracted]:
    """Extract ``zip_path`` into a new temporary folder under ``scratch_dir``; removed on exit.

    ``scratch_dir`` must lie inside the data dir: nothing is written anywhere else. An archive
    over ``max_members`` entries or ``max_total`` uncompressed bytes (declared, or found while
    extracting) raises :class:`ArchiveTooLarge` before the ``with`` body runs.
    """
    scratch_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="unzip-", dir=scratch_dir))
    try:
        refused = extract_into(zip_path, root, max_total, max_members=max_members, whole=True)
        yield Extracted(root, refused)
    finally:
        shutil.rmtree(root)
