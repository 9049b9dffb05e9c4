"""The server's package check (chalicelib/packages.py, authoritative) and the client's
(nshub/packaging.py: what a pull extracts) accept and refuse the same packages; the admin
tool packs with the client's packer."""
from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

from chalicelib.errors import InvalidPackage
from chalicelib.packages import validate_executor_package
from nshub.packaging import PackagingError, extract_package, pack_executor
from tests.executor_packages import CONFIG_YML, build_zip, executor_folder, hostile_packages, pack

LIMITS = {"max_entries": 20, "max_unpacked_bytes": 30 << 20}
DIR, FILE, EXEC = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o644, stat.S_IFREG | 0o755


def entries(*extra) -> list:
    return [("config.yml", CONFIG_YML), ("executor.py", "class MyExecutor: pass\n"), *extra]


def patched(data: bytes, name: bytes, change) -> bytes:
    """`change(raw, central_offset)` applied to the central directory record of `name`."""
    raw = bytearray(data)
    cd = raw.index(b"PK\x01\x02")
    while raw[cd + 46: cd + 46 + int.from_bytes(raw[cd + 28: cd + 30], "little")] != name:
        cd += 46 + sum(int.from_bytes(raw[cd + i: cd + i + 2], "little") for i in (28, 30, 32))
    change(raw, cd)
    return bytes(raw)


def declared_size(size: int):
    def change(raw: bytearray, cd: int) -> None:
        raw[cd + 24: cd + 28] = size.to_bytes(4, "little")
        local = int.from_bytes(raw[cd + 42: cd + 46], "little")
        raw[local + 22: local + 26] = size.to_bytes(4, "little")
    return change


def encrypted(raw: bytearray, cd: int) -> None:
    raw[cd + 8] |= 0x01


def bzip2(entries_: list) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_BZIP2) as zf:
        for name, data in entries_:
            zf.writestr(name, data)
    return buf.getvalue()


def packages(tmp_path: Path) -> dict[str, tuple[bytes, bool]]:
    """name -> (package, accepted)."""
    valid = {
        "packed by the client": pack(executor_folder(tmp_path / "a")),
        "config.yml alone": build_zip([("config.yml", "jtype: X\n")]),
        "folder entries": build_zip(entries(("lib/", ("", DIR)), ("lib/x.py", ("X = 1\n", FILE)),
                                            ("run.sh", ("#!/bin/sh\n", EXEC)))),
        "a folder entry without a mode": build_zip(entries(("lib/", ""), ("lib/x.py", "X = 1\n"))),
        "a folder entry flagged encrypted": patched(
            build_zip(entries(("lib/", ("", DIR)))), b"lib/", encrypted),
        "a manifest": build_zip(entries(("manifest.yml", "description: d\nkeywords: [a]\n"))),
        "an empty manifest": build_zip(entries(("manifest.yml", ""))),
        "repetitive small files": build_zip(entries(("a.txt", "a" * 500_000))),
        "config.yml in a folder too": build_zip(entries(("sub/config.yml", "- a\n"))),
    }
    refused = {
        **hostile_packages(),
        "folder mode without a trailing /": build_zip(entries(("lib", ("", DIR)))),
        "folder entry with content": build_zip(entries(("lib/", ("x", DIR)))),
        "backslash": build_zip(entries(("lib\\x.py", "x"))),
        "drive letter": build_zip(entries(("C:/x.py", "x"))),
        "dot component": build_zip(entries(("./x.py", "x"))),
        "control character": build_zip(entries(("x\x01.py", "x"))),
        "fifo": build_zip(entries(("fifo", ("", stat.S_IFIFO | 0o644)))),
        "character device": build_zip(entries(("tty", ("", stat.S_IFCHR | 0o644)))),
        "a name twice": build_zip(entries(("executor.py", "again"))),
        "a file and a folder": build_zip(entries(("lib", "x"), ("lib/y.py", "y"))),
        "a file and a folder entry": build_zip(entries(("lib", "x"), ("lib/", ("", DIR)))),
        "too many entries": build_zip(entries(*[(f"f{i}", "x") for i in range(20)])),
        "too many bytes": build_zip(entries(*[(f"r{i}", os.urandom(11 << 20)) for i in range(3)])),
        "bombs under the entry threshold": build_zip(
            entries(*[(f"z{i}", b"\0" * (900 << 10)) for i in range(4)])),
        "encrypted": patched(build_zip(entries()), b"executor.py", encrypted),
        "bzip2": bzip2(entries()),
        "header smaller than content": patched(
            build_zip(entries(("liar", b"\0" * (4 << 20)))), b"liar", declared_size(1000)),
        "header larger than content": patched(
            build_zip(entries(("short", os.urandom(5000)))), b"short", declared_size(9000)),
        "truncated": build_zip(entries(("x", os.urandom(4000))))[:-200],
        "config.yml a folder": build_zip([("config.yml/", ("", DIR))]),
        "config.yml not a mapping": build_zip([("config.yml", "- a\n")]),
        "no jtype": build_zip([("config.yml", "metas:\n  name: X\n")]),
        "empty jtype": build_zip([("config.yml", "jtype: '  '\n")]),
        "jtype too long": build_zip([("config.yml", f"jtype: {'X' * 201}\n")]),
        "invalid YAML": build_zip([("config.yml", "jtype: [unclosed\n")]),
        "config.yml over 1 MiB": build_zip([("config.yml", "jtype: X\n#" + os.urandom(600_000).hex())]),
        "manifest a list": build_zip(entries(("manifest.yml", "- a\n"))),
        "manifest with python tags": build_zip(
            entries(("manifest.yml", "url: !!python/object/apply:os.system ['true']\n"))),
        "manifest url not a string": build_zip(entries(("manifest.yml", "url: 3\n"))),
        "manifest description too long": build_zip(
            entries(("manifest.yml", f"description: {'d' * 2001}\n"))),
        "manifest keywords not strings": build_zip(entries(("manifest.yml", "keywords: [1]\n"))),
        "manifest with too many keywords": build_zip(
            entries(("manifest.yml", f"keywords: [{', '.join(['k'] * 31)}]\n"))),
    }
    return {**{k: (v, True) for k, v in valid.items()}, **{k: (v, False) for k, v in refused.items()}}


def server_accepts(data: bytes) -> bool:
    try:
        validate_executor_package(io.BytesIO(data), **LIMITS)
    except InvalidPackage:
        return False
    return True


def client_accepts(data: bytes, work: Path) -> bool:
    work.mkdir()
    (work / "p.zip").write_bytes(data)
    try:
        extract_package(work / "p.zip", work / "out", **LIMITS)
    except PackagingError:
        assert not (work / "out").exists()
        return False
    return True


def test_server_and_client_accept_and_refuse_the_same_packages(tmp_path):
    verdicts = {}
    for i, (name, (data, accepted)) in enumerate(packages(tmp_path).items()):
        verdicts[name] = (server_accepts(data), client_accepts(data, tmp_path / f"c{i}"), accepted)
    wrong = {name: v for name, v in verdicts.items() if len(set(v)) != 1}
    assert not wrong, "(server, client, expected) differ: " + repr(wrong)


@pytest.mark.parametrize("make", [
    lambda f: (f / "config.yml").unlink(),
    lambda f: (f / "link").symlink_to("/etc/passwd"),
])
def test_the_admin_import_refuses_what_the_client_packer_refuses(aws_env, tmp_path, capsys,
                                                                 make):
    """`nshub-admin import-legacy-executor` packs with the client's packer: the same folders
    are refused, with the same line, before anything is stored."""
    from chalicelib.admin import main as admin_main

    folder = executor_folder(tmp_path / "Exec")
    make(folder)
    with pytest.raises(PackagingError) as refused:
        pack_executor(folder)
    rc = admin_main(["import-legacy-executor", "Exec", "--owner", "alice", "--secret", "s",
                     "--dir", str(folder)])
    assert rc == 1 and capsys.readouterr().err == f"error: {refused.value} (InvalidPackage)\n"
