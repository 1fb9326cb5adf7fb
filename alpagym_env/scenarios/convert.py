"""`python -m alpagym_env.scenarios.convert`: ScenarioNet ``.pkl`` / GPUDrive ``.json`` -> AlpaGym ``.npz``.

Examples::

    python -m alpagym_env.scenarios.convert waymo_json/ --out scenes/          # one .npz per scene
    python -m alpagym_env.scenarios.convert sn_dataset/ --out real.npz         # one packed suite file
    python -m alpagym_env.evaluate --policy idm --suite real.npz --horizon 90  # Waymo scenes last 9 s

Inputs are files or directories (searched recursively for ``.pkl`` / ``.json``; ScenarioNet's
``dataset_summary.pkl`` and ``dataset_mapping.pkl`` are skipped). A file that fails to convert is
reported with the field at fault and skipped (``--strict`` stops at the first failure instead).
"""

from __future__ import annotations

import argparse
import os
import sys

from alpagym_env.scenarios.importers import FORMATS, load_file
from alpagym_env.scenarios.schema import ScenarioError, save_scenario, save_suite

SKIP = {"dataset_summary.pkl", "dataset_mapping.pkl"}


def find_inputs(paths: list[str], fmt: str) -> list[str]:
    """Every scenario file under `paths`, sorted within each directory."""
    suffixes = tuple(s for name, sfx in FORMATS.items() if fmt in ("auto", name) for s in sfx)
    out = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                out += [
                    os.path.join(root, f) for f in sorted(files) if f.endswith(suffixes) and f not in SKIP
                ]
        elif os.path.exists(p):
            out.append(p)
        else:
            raise FileNotFoundError(p)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m alpagym_env.scenarios.convert", description=__doc__.splitlines()[0]
    )
    p.add_argument("inputs", nargs="+", help="scenario files or directories")
    p.add_argument(
        "--out", required=True, help="a directory (one .npz per scene) or a .npz file (packed suite)"
    )
    p.add_argument("--format", choices=("auto", *FORMATS), default="auto")
    p.add_argument("--strict", action="store_true", help="stop at the first file that fails")
    args = p.parse_args(argv)
    try:
        files = find_inputs(args.inputs, args.format)
    except FileNotFoundError as e:
        print(f"error: no such file or directory: {e}", file=sys.stderr)
        return 2
    scenes, failed = [], 0
    for f in files:
        try:
            scenes.append(load_file(f, args.format))
        except (ScenarioError, ValueError) as e:
            failed += 1
            print(f"skipped: {e}", file=sys.stderr)
            if args.strict:
                return 1
    if not scenes:
        print("error: nothing converted", file=sys.stderr)
        return 1
    if args.out.endswith(".npz"):
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        save_suite(args.out, scenes)
    else:
        os.makedirs(args.out, exist_ok=True)
        for s in scenes:
            name = "".join(c if c.isalnum() or c in "-_." else "_" for c in s.scenario_id)
            save_scenario(os.path.join(args.out, f"{name}.npz"), s)
    print(f"converted {len(scenes)} scenes ({failed} skipped) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
