"""Server-side check of an uploaded executor package, before its version becomes visible.

`validate_executor_package` opens the zip (a path, or a seekable binary file: download the S3
object to /tmp first), checks every entry's name and type, the declared sizes and
compression ratios, then decompresses every entry in chunks with a hard cap, so that neither
a lying header nor a zip bomb can make it use more than `max_unpacked_bytes` of work or
more than one chunk of memory. It raises `InvalidPackage` with a one-line reason.

These rules are the authority: the client repeats them when it extracts a pull
(nshub/packaging.py), and tests/test_package_rules.py holds the two to the same verdicts.
"""
from __future__ import annotations

import hashlib
import os
import stat
from typing import BinaryIO

from chalicelib.config import get_settings
from chalicelib.errors import InvalidPackage

MiB = 1024 * 1024
MAX_UNPACKED_BYTES = 512 * MiB
MAX_RATIO = 200
MAX_ENTRIES = 10_000
# Ratios are only judged past this size: small text files full of repeats are not bombs.
RATIO_MIN_BYTES = 1 * MiB
MAX_YAML_BYTES = 1 * MiB
CHUNK = 1 * MiB

_SPECIAL = {
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


def check_package(fileobj: BinaryIO) -> dict:
    """Validate an uploaded package (InvalidPackage, 400, refuses the version); return the
    summary stored with the version: jtype, name, manifest, files, unpacked_size,
    has_dockerfile, md5."""
    fileobj.seek(0)
    summary = validate_executor_package(
        fileobj, max_unpacked_bytes=get_settings().max_unpacked_executor_bytes
    )
    # Jina clients check a pulled package against its md5 (shared/HUBBLE.md).
    fileobj.seek(0)
    md5 = hashlib.md5()  # noqa: S324 - a checksum the client asks for, not security
    for chunk in iter(lambda: fileobj.read(1024 * 1024), b""):
        md5.update(chunk)
    summary["md5"] = md5.hexdigest()
    return summary


def validate_executor_package(
    source: str | os.PathLike | BinaryIO,
    *,
    max_unpacked_bytes: int = MAX_UNPACKED_BYTES,
    max_ratio: float = MAX_RATIO,
    max_entries: int = MAX_ENTRIES,
) -> dict:
    """Check an executor package and return its summary, or raise InvalidPackage.

    Summary: `{"jtype", "name" (metas.name or None), "files", "unpacked_size",
    "manifest" ({description?, keywords?, url?} or None), "has_dockerfile"}`.
    """
    import zipfile

    if hasattr(source, "read") and hasattr(source, "seekable") and not source.seekable():
        raise TypeError("validate_executor_package needs a path or a seekable file")

    _check_entry_count(source, max_entries)
    try:
        zf = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise InvalidPackage("the package is not a zip file: push an executor folder with the nshub client") from None
    except (OSError, ValueError, EOFError) as exc:
        raise InvalidPackage(f"the package is not a readable zip file ({_one_line(exc)})") from None

    with zf:
        infos = zf.infolist()
        files = _check_entries(zf, infos, max_entries, max_unpacked_bytes, max_ratio)
        if "config.yml" not in files:
            raise InvalidPackage(
                "the package has no config.yml at its root: an executor folder needs a "
                "config.yml with a `jtype`"
            )
        unpacked, small = _read_all(zf, files, max_unpacked_bytes)

    config = _load_yaml("config.yml", small["config.yml"])
    if not isinstance(config, dict):
        raise InvalidPackage("config.yml must be a mapping with a `jtype`")
    jtype = config.get("jtype")
    if not isinstance(jtype, str) or not jtype.strip():
        raise InvalidPackage("config.yml has no `jtype`: add e.g. `jtype: MyExecutor` and push again")
    if len(jtype) > 200:
        raise InvalidPackage("config.yml `jtype` is longer than 200 characters")
    metas = config.get("metas")
    name = None
    if isinstance(metas, dict) and isinstance(metas.get("name"), str) and metas["name"].strip():
        name = metas["name"].strip()[:200]

    manifest = None
    if "manifest.yml" in small:
        manifest = _manifest(_load_yaml("manifest.yml", small["manifest.yml"]))

    return {
        "jtype": jtype.strip(),
        "name": name,
        "files": len(files),
        "unpacked_size": unpacked,
        "manifest": manifest,
        "has_dockerfile": "Dockerfile" in files,
    }


# ----------------------------------------------------------------------------- entries


def _check_entry_count(source, max_entries: int) -> None:
    """Refuse a huge central directory before zipfile builds one object per entry."""
    import zipfile

    end_rec_data = getattr(zipfile, "_EndRecData", None)
    if end_rec_data is None:  # pragma: no cover - private helper gone in some future Python
        return
    try:
        if hasattr(source, "read"):
            pos = source.tell()
            try:
                rec = end_rec_data(source)
            finally:
                source.seek(pos)
        else:
            with open(source, "rb") as fh:
                rec = end_rec_data(fh)
    except OSError:
        return  # zipfile.ZipFile reports it
    if rec and rec[zipfile._ECD_ENTRIES_TOTAL] > max_entries:
        raise InvalidPackage(
            f"the package has {rec[zipfile._ECD_ENTRIES_TOTAL]} entries, more than {max_entries}"
        )


def _check_name(name: str) -> str:
    """The entry's path without a trailing slash, or InvalidPackage."""
    if not name or any(ord(c) < 0x20 for c in name):
        raise InvalidPackage(f"package entry {name!r} has an empty name or control characters")
    if "\\" in name:
        raise InvalidPackage(f"package entry {name!r} contains a backslash: use '/' between folders")
    if name.startswith("/"):
        raise InvalidPackage(f"package entry {name!r} is an absolute path: paths must be relative")
    if len(name) >= 2 and name[1] == ":" and name[0].isalpha():
        raise InvalidPackage(f"package entry {name!r} starts with a drive letter: paths must be relative")
    parts = name.rstrip("/").split("/")
    if ".." in parts:
        raise InvalidPackage(f"package entry {name!r} contains '..': paths must stay inside the package")
    if any(p in ("", ".") for p in parts):
        raise InvalidPackage(f"package entry {name!r} has an empty or '.' path component")
    return "/".join(parts)


def _check_entries(zf, infos, max_entries: int, max_bytes: int, max_ratio: float) -> dict:
    """Check names, types, flags and declared sizes; return {path: ZipInfo} of the files."""
    import zipfile

    if len(infos) > max_entries:
        raise InvalidPackage(f"the package has {len(infos)} entries, more than {max_entries}")
    kinds: dict[str, str] = {}
    files: dict[str, zipfile.ZipInfo] = {}
    total = total_compressed = 0
    for info in infos:
        path = _check_name(info.filename)
        fmt = stat.S_IFMT(info.external_attr >> 16)
        if fmt == stat.S_IFLNK:
            raise InvalidPackage(
                f"package contains a symlink: {path} -> {_link_target(zf, info)}; remove it and push again"
            )
        if fmt in _SPECIAL:
            raise InvalidPackage(
                f"package contains a {_SPECIAL[fmt]}: {path}; packages hold regular files only"
            )
        is_dir = info.filename.endswith("/")
        if fmt == stat.S_IFDIR and not is_dir:
            raise InvalidPackage(f"package entry {path!r} is a folder without a trailing '/'")
        if path in kinds:
            raise InvalidPackage(f"package contains {path!r} twice: each path must appear once")
        kinds[path] = "dir" if is_dir else "file"
        if is_dir:
            if info.file_size:
                raise InvalidPackage(f"package folder entry {info.filename!r} has content")
            continue
        if info.flag_bits & 0x1:
            raise InvalidPackage(f"package entry {path!r} is encrypted: packages must not be encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise InvalidPackage(
                f"package entry {path!r} uses compression method {info.compress_type}: "
                "use deflate or store (the nshub client does)"
            )
        if info.file_size > max_bytes:
            raise InvalidPackage(
                f"package entry {path!r} unpacks to {info.file_size} bytes, more than the "
                f"{max_bytes} allowed"
            )
        if info.file_size > RATIO_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            raise InvalidPackage(
                f"package entry {path!r} expands {info.file_size / max(info.compress_size, 1):.0f} times "
                f"(more than {max_ratio:g}): it looks like a zip bomb"
            )
        total += info.file_size
        total_compressed += info.compress_size
        files[path] = info
    for path in kinds:
        parent = path.rpartition("/")[0]
        while parent:
            if kinds.get(parent) == "file":
                raise InvalidPackage(f"package entry {parent!r} is both a file and a folder")
            parent = parent.rpartition("/")[0]
    if total > max_bytes:
        raise InvalidPackage(
            f"the package unpacks to {total} bytes, more than the {max_bytes} allowed"
        )
    if total > RATIO_MIN_BYTES and total > max_ratio * max(total_compressed, 1):
        raise InvalidPackage(
            f"the package expands {total / max(total_compressed, 1):.0f} times (more than "
            f"{max_ratio:g}): it looks like a zip bomb"
        )
    return files


def _link_target(zf, info) -> str:
    try:
        with zf.open(info) as fh:
            raw = fh.read(min(info.file_size, 1024) or 1024)[:1024]
        return raw.decode("utf-8", "replace") or "?"
    except Exception:  # noqa: BLE001 - only decoration for the message
        return "?"


def _read_all(zf, files: dict, max_bytes: int) -> tuple[int, dict[str, bytes]]:
    """Decompress every file with a hard cap; keep config.yml and manifest.yml.

    zipfile stops at the declared size and checks the CRC, but it is not trusted: bytes are
    counted here, and a stream that yields more or fewer bytes than declared is refused.
    """
    import zipfile
    import zlib

    keep = {"config.yml", "manifest.yml"}
    kept: dict[str, bytes] = {}
    total = 0
    for path, info in files.items():
        declared = info.file_size
        if path in keep and declared > MAX_YAML_BYTES:
            raise InvalidPackage(f"{path} is {declared} bytes, more than {MAX_YAML_BYTES}")
        buf = bytearray() if path in keep else None
        got = 0
        try:
            with zf.open(info) as fh:
                while True:
                    chunk = fh.read(min(CHUNK, declared - got + 1))
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > declared:
                        raise InvalidPackage(
                            f"package entry {path!r} decompresses to more than the {declared} bytes "
                            "it declares: the zip is corrupt or forged"
                        )
                    if total + got > max_bytes:
                        raise InvalidPackage(
                            f"the package unpacks to more than the {max_bytes} bytes allowed"
                        )
                    if buf is not None:
                        buf += chunk
        except InvalidPackage:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
            raise InvalidPackage(
                f"package entry {path!r} is corrupt ({_one_line(exc)}): pack and push again"
            ) from None
        if got != declared:
            raise InvalidPackage(
                f"package entry {path!r} decompresses to {got} bytes but declares {declared}: "
                "the zip is corrupt or forged"
            )
        total += got
        if buf is not None:
            kept[path] = bytes(buf)
    return total, kept


# ----------------------------------------------------------------------------- YAML


def _load_yaml(path: str, raw: bytes):
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.constructor.ConstructorError as exc:
        raise InvalidPackage(
            f"{path} is not safe YAML ({_one_line(exc.problem or exc)}): remove python/ tags and push again"
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidPackage(f"{path} is not valid YAML: {_yaml_problem(exc)}") from None


# The manifest is stored with every version (twice: version and head): keep it small.
MAX_DESCRIPTION, MAX_URL, MAX_KEYWORDS, MAX_KEYWORD = 2000, 500, 30, 50


def _manifest(data) -> dict:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InvalidPackage("manifest.yml must be a mapping (description, keywords, url)")
    out: dict = {}
    for key, limit in (("description", MAX_DESCRIPTION), ("url", MAX_URL)):
        if data.get(key) is not None:
            if not isinstance(data[key], str):
                raise InvalidPackage(f"manifest.yml `{key}` must be a string")
            if len(data[key]) > limit:
                raise InvalidPackage(f"manifest.yml `{key}` is longer than {limit} characters")
            out[key] = data[key]
    if data.get("keywords") is not None:
        kw = data["keywords"]
        if not isinstance(kw, list) or not all(isinstance(k, str) for k in kw):
            raise InvalidPackage("manifest.yml `keywords` must be a list of strings")
        if len(kw) > MAX_KEYWORDS or any(len(k) > MAX_KEYWORD for k in kw):
            raise InvalidPackage(
                f"manifest.yml `keywords`: at most {MAX_KEYWORDS}, of {MAX_KEYWORD} characters each"
            )
        out["keywords"] = kw
    return out


def _one_line(value) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _yaml_problem(exc) -> str:
    """`<problem> at line L, column C` for a YAML error, on one line."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return _one_line(f"{problem}{where}")
