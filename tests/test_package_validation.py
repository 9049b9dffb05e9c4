"""Server-side validation of uploaded executor packages (chalicelib/packages.py)."""
from __future__ import annotations

import io
import os
import stat
import warnings
import zipfile

import pytest

from chalicelib.errors import InvalidPackage
from chalicelib.packages import validate_executor_package

CONFIG = "jtype: MyExecutor\nmetas:\n  name: FancyExecutor\n"
MANIFEST = "description: Encodes things\nkeywords: [text, encoder]\nurl: https://example.com\nauthor: me\n"


def build_zip(entries, *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """entries: name -> data, or name -> (data, unix mode)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names
        with zipfile.ZipFile(buf, "w", compression=compression) as zf:
            for name, value in entries:
                data, mode = value if isinstance(value, tuple) else (value, None)
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = compression
                if mode is not None:
                    info.external_attr = mode << 16
                zf.writestr(info, data)
    return buf.getvalue()


def good_entries(**extra):
    entries = [
        ("config.yml", CONFIG),
        ("executor.py", "class MyExecutor: pass\n"),
        ("requirements.txt", "numpy\n"),
        ("lib/", ("", stat.S_IFDIR | 0o755)),
        ("lib/helpers.py", ("X = 1\n", stat.S_IFREG | 0o644)),
        ("run.sh", ("#!/bin/sh\n", stat.S_IFREG | 0o755)),
    ]
    entries += list(extra.items())
    return entries


def check(data: bytes, **kwargs):
    return validate_executor_package(io.BytesIO(data), **kwargs)


def refused(data: bytes, match: str, **kwargs) -> str:
    with pytest.raises(InvalidPackage) as info:
        check(data, **kwargs)
    message = info.value.message
    assert info.value.code == "InvalidPackage" and info.value.status == 400
    assert "\n" not in message
    import re

    assert re.search(match, message), message
    return message


# --------------------------------------------------------------------------- good packages


def test_good_package_summary():
    data = build_zip(good_entries(**{"manifest.yml": MANIFEST, "Dockerfile": "FROM python\n"}))
    summary = check(data)
    assert summary == {
        "jtype": "MyExecutor",
        "name": "FancyExecutor",
        "files": 7,
        "unpacked_size": sum(
            len(v if isinstance(v, str) else v[0])
            for _, v in good_entries(**{"manifest.yml": MANIFEST, "Dockerfile": "FROM python\n"})
        ),
        "manifest": {
            "description": "Encodes things",
            "keywords": ["text", "encoder"],
            "url": "https://example.com",
        },
        "has_dockerfile": True,
    }


def test_minimal_package_from_a_path(tmp_path):
    path = tmp_path / "p.zip"
    path.write_bytes(build_zip([("config.yml", "jtype: Enc\n")], compression=zipfile.ZIP_STORED))
    assert validate_executor_package(path) == {
        "jtype": "Enc",
        "name": None,
        "files": 1,
        "unpacked_size": len("jtype: Enc\n"),
        "manifest": None,
        "has_dockerfile": False,
    }
    assert validate_executor_package(str(path))["jtype"] == "Enc"


def test_package_made_by_the_client_passes(tmp_path):
    from nshub.packaging import pack_executor

    folder = tmp_path / "x"
    (folder / "lib").mkdir(parents=True)
    (folder / "config.yml").write_text(CONFIG)
    (folder / "lib" / "a.py").write_text("A = 1\n" * 1000)
    path, _, _ = pack_executor(folder)
    try:
        summary = validate_executor_package(path)
    finally:
        os.unlink(path)
    assert summary["jtype"] == "MyExecutor" and summary["files"] == 2


def test_small_repetitive_files_are_not_bombs():
    # 512 KiB of one byte compresses ~1000x, but small entries are not judged by ratio
    data = build_zip(good_entries(**{"pad.txt": " " * (512 * 1024)}))
    assert check(data)["files"] == 6


def test_non_seekable_source_is_a_programming_error():
    class Pipe(io.RawIOBase):
        def readable(self):
            return True

        def seekable(self):
            return False

    with pytest.raises(TypeError):
        validate_executor_package(Pipe())


# --------------------------------------------------------------------------- hostile entries


@pytest.mark.parametrize(
    "name, match",
    [
        ("../evil", r"contains '\.\.'"),
        ("lib/../../evil", r"contains '\.\.'"),
        ("/etc/x", "absolute path"),
        ("C:/windows/evil", "drive letter"),
        ("c:evil", "drive letter"),
        ("lib\\..\\evil", "backslash"),
        ("lib//evil", "empty or '.'"),
        ("./evil", "empty or '.'"),
        ("evil\x01.py", "control characters"),
    ],
)
def test_bad_paths(name, match):
    refused(build_zip(good_entries(**{name: "x"})), match)


def test_symlink_entry():
    data = build_zip(good_entries(**{"lib/x": ("/etc/passwd", stat.S_IFLNK | 0o777)}))
    message = refused(data, "symlink")
    assert message == "package contains a symlink: lib/x -> /etc/passwd; remove it and push again"


@pytest.mark.parametrize(
    "mode, kind",
    [
        (stat.S_IFCHR, "character device"),
        (stat.S_IFBLK, "block device"),
        (stat.S_IFIFO, "fifo"),
        (stat.S_IFSOCK, "socket"),
    ],
)
def test_special_files(mode, kind):
    refused(build_zip(good_entries(**{"dev/null": ("", mode | 0o666)})), f"package contains a {kind}: dev/null")


def test_duplicate_names():
    refused(build_zip(good_entries() + [("executor.py", "again")]), "twice")
    refused(build_zip(good_entries() + [("lib", "x")]), "twice")  # 'lib/' folder and 'lib' file


def test_file_and_folder_with_one_name():
    refused(build_zip(good_entries(**{"a": "x", "a/b": "y"})), "both a file and a folder")


def test_too_many_entries():
    entries = [("config.yml", CONFIG)] + [(f"f{i}.txt", "x") for i in range(20)]
    refused(build_zip(entries), "21 entries, more than 10", max_entries=10)
    assert check(build_zip(entries), max_entries=21)["files"] == 21


def test_unsupported_compression():
    data = build_zip([("config.yml", CONFIG)], compression=zipfile.ZIP_BZIP2)
    refused(data, "compression method 12")


def test_encrypted_flag():
    data = bytearray(build_zip(good_entries()))
    cd = data.index(b"PK\x01\x02")  # first central directory entry: config.yml
    data[cd + 8] |= 0x01
    refused(bytes(data), "encrypted")


# --------------------------------------------------------------------------- sizes and bombs


def test_zip_bomb_by_entry_ratio():
    data = build_zip(good_entries(**{"zeros.bin": b"\0" * (50 << 20)}))
    assert len(data) < 200_000
    refused(data, r"zeros.bin' expands \d+ times \(more than 200\): it looks like a zip bomb")


def test_zip_bomb_by_total_ratio():
    # each entry is under the per-entry threshold, together they are a bomb
    entries = good_entries(**{f"z{i}.bin": b"\0" * (900 * 1024) for i in range(4)})
    refused(build_zip(entries), r"the package expands \d+ times")


def test_ratio_limit_is_a_parameter():
    data = build_zip(good_entries(**{"zeros.bin": b"\0" * (2 << 20)}))
    assert check(data, max_ratio=5000)["files"] == 6


def test_total_declared_size_limit():
    entries = good_entries(**{"a.bin": os.urandom(6000), "b.bin": os.urandom(6000)})
    refused(build_zip(entries), r"unpacks to \d+ bytes, more than the 10000 allowed", max_unpacked_bytes=10_000)


def test_entry_declared_size_limit():
    entries = good_entries(**{"a.bin": os.urandom(20_000)})
    refused(build_zip(entries), r"'a.bin' unpacks to 20000 bytes", max_unpacked_bytes=10_000)


def _patch_declared_size(data: bytes, name: bytes, new_size: int) -> bytes:
    """Rewrite the declared uncompressed size of `name` in both its local and central headers."""
    raw = bytearray(data)
    cd = raw.index(b"PK\x01\x02")
    while True:
        name_len = int.from_bytes(raw[cd + 28: cd + 30], "little")
        if raw[cd + 46: cd + 46 + name_len] == name:
            break
        extra = int.from_bytes(raw[cd + 30: cd + 32], "little")
        comment = int.from_bytes(raw[cd + 32: cd + 34], "little")
        cd += 46 + name_len + extra + comment
    raw[cd + 24: cd + 28] = new_size.to_bytes(4, "little")
    local = int.from_bytes(raw[cd + 42: cd + 46], "little")
    assert raw[local: local + 4] == b"PK\x03\x04"
    raw[local + 22: local + 26] = new_size.to_bytes(4, "little")
    return bytes(raw)


def test_lying_header_smaller_than_content():
    # a 40 MiB run of zeros declared as 1000 bytes: the header checks pass, decompression
    # must stop at the declared size and refuse the entry
    data = build_zip(good_entries(**{"liar.bin": b"\0" * (40 << 20)}))
    forged = _patch_declared_size(data, b"liar.bin", 1000)
    message = refused(forged, "liar.bin")
    assert "corrupt" in message or "declares" in message


def test_lying_header_larger_than_content():
    data = build_zip(good_entries(**{"short.bin": os.urandom(5000)}))
    forged = _patch_declared_size(data, b"short.bin", 9000)
    refused(forged, "short.bin.*(corrupt|declares)")


def test_truncated_zip():
    data = build_zip(good_entries())
    refused(data[: len(data) // 2], "not a zip")


# --------------------------------------------------------------------------- config.yml


def test_not_a_zip():
    refused(b"this is not a zip", "not a zip file")
    refused(b"", "not a zip file")


def test_missing_config():
    refused(build_zip([("executor.py", "x")]), "no config.yml at its root")
    refused(build_zip([("sub/config.yml", CONFIG)]), "no config.yml at its root")


def test_config_with_python_tag(monkeypatch):
    def boom(*args):
        raise AssertionError("os.system was called")

    monkeypatch.setattr(os, "system", boom)
    data = build_zip([("config.yml", "jtype: !!python/object/apply:os.system ['echo pwned']\n")])
    refused(data, "config.yml is not safe YAML")


def test_config_invalid_yaml():
    refused(build_zip([("config.yml", "jtype: [unclosed\n")]), "config.yml is not valid YAML")


@pytest.mark.parametrize("config", ["metas:\n  name: X\n", "jtype: ''\n", "jtype: 3\n", ""])
def test_config_without_jtype(config):
    refused(build_zip([("config.yml", config)]), "has no `jtype`|must be a mapping")


@pytest.mark.parametrize("config", ["- a\n- b\n", "just a string\n"])
def test_config_not_a_mapping(config):
    refused(build_zip([("config.yml", config)]), "must be a mapping")


def test_config_too_large():
    refused(build_zip([("config.yml", "jtype: X\n# " + os.urandom(1 << 20).hex())]), "config.yml is \\d+ bytes")


@pytest.mark.parametrize(
    "manifest, match",
    [
        ("keywords: text\n", "keywords` must be a list"),
        ("- a\n", "must be a mapping"),
        ("description: !!python/name:os.system\n", "manifest.yml is not safe YAML"),
    ],
)
def test_bad_manifest(manifest, match):
    refused(build_zip(good_entries(**{"manifest.yml": manifest})), match)


def test_empty_manifest_is_an_empty_summary():
    assert check(build_zip(good_entries(**{"manifest.yml": ""})))["manifest"] == {}


def test_oversized_manifest_fields_are_refused(tmp_path):
    """The manifest is stored with every version: fields of any size would break the item."""
    import io
    import zipfile

    from chalicelib.errors import InvalidPackage
    from chalicelib.packages import validate_executor_package

    for manifest in ("description: " + "x" * 3000, "keywords: [" + ", ".join(["k"] * 40) + "]",
                     "url: " + "u" * 600):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("config.yml", "jtype: MyExecutor\n")
            zf.writestr("manifest.yml", manifest + "\n")
        buf.seek(0)
        with pytest.raises(InvalidPackage, match="manifest.yml"):
            validate_executor_package(buf)
