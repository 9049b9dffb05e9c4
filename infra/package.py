"""Join what `chalice package` generated with infra/template.yaml and infra/functions.yaml into
the one template `make deploy` deploys:

    chalice package --template-format yaml build/chalice
    python infra/package.py build/chalice build/package     # -> sam.yaml + deployment.zip

Merge rule: mappings merge key by key (template.yaml over Chalice's output, functions.yaml over
both); anything else replaces what was there, and so does an intrinsic function (a !GetAtt
over Chalice's literal queue ARN must not end up beside it in one two-key mapping).
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
OVERLAYS = (HERE / "template.yaml", HERE / "functions.yaml")


def _is_intrinsic(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and (
        next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::"))


def merge(base: dict, overlay: dict) -> dict:
    for key, value in overlay.items():
        if isinstance(value, dict) and not _is_intrinsic(value) and isinstance(
                base.get(key), dict) and not _is_intrinsic(base[key]):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def stack_template(chalice_template: dict, overlays: tuple[Path, ...] = OVERLAYS) -> dict:
    """Chalice's template with the overlays merged in (a new dict; the input is not changed)."""
    import copy

    from devstack.bootstrap import load_template

    merged = copy.deepcopy(chalice_template)
    for path in overlays:
        merge(merged, copy.deepcopy(load_template(path)))
    return merged


class _NoAliases(yaml.SafeDumper):
    """CloudFormation reads no YAML anchors: write shared mappings out in full."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def main(chalice_dir: str, out_dir: str) -> None:
    from devstack.bootstrap import load_template

    src, out = Path(chalice_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    template = stack_template(load_template(src / "sam.yaml"))
    (out / "sam.yaml").write_text(yaml.dump(template, Dumper=_NoAliases, sort_keys=False))
    shutil.copyfile(src / "deployment.zip", out / "deployment.zip")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    main(sys.argv[1], sys.argv[2])
