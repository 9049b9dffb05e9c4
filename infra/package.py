"""Join template.yaml with functions.yaml into one template for `chalice package --merge-template`
(which takes a single file): `python infra/package.py OUT.yaml`."""
from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent


def merge(base: dict, overlay: dict) -> dict:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def main(out: str) -> None:
    from devstack.bootstrap import load_template

    template = load_template(HERE / "template.yaml")
    overlay = load_template(HERE / "functions.yaml")
    Path(out).write_text(yaml.safe_dump(merge(dict(template), overlay), sort_keys=False))


if __name__ == "__main__":
    main(sys.argv[1])
