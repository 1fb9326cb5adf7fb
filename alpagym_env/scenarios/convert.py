"""`python -m alpagym_env.scenarios.convert`: ScenarioNet ``.pkl`` / GPUDrive ``.json`` -> AlpaGym ``.npz``.

Examples::

    python -m alpagym_env.scenarios.convert waymo_json/ --out scenes/          # one .npz per scene
    python -m alpagym_env.scenarios.convert sn_nuscenes/ sn_waymo/ --out real.npz  # one packed suite file
    python -m alpagym_env.evaluate --policy expert idm --suite real.npz --horizon 200

Inputs are files or directories, searched recursively for ``.pkl`` / ``.json``. A ScenarioNet dataset
directory (one with ``dataset_summary.pkl``) is read the way ScenarioNet reads it: the scenes its summary
lists, each in the sub-directory ``dataset_mapping.pkl`` names for it (combined datasets point into their
source datasets); both files are read with the restricted unpickler and are not scenes themselves.
A file that fails to convert is reported with the field at fault and skipped (``--strict`` stops at the
first failure instead). Each input gets a report on stderr: scenes, agents by type, lanes and road edges,
median lane width, log lengths, traffic lights, and what the importer fixed or dropped.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

from alpagym_env.scenarios.importers import FORMATS, load_file
from alpagym_env.scenarios.importers.report import SourceReport
from alpagym_env.scenarios.importers.scenarionet import read_any_pkl
from alpagym_env.scenarios.schema import ScenarioError, save_scenario, save_suite

SUMMARY, MAPPING = "dataset_summary.pkl", "dataset_mapping.pkl"
SKIP = {SUMMARY, MAPPING}


def dataset_files(directory: str) -> list[str]:
    """The scene files a ScenarioNet dataset directory lists in its summary, located through its mapping.

    Raises:
        ScenarioError: The summary or mapping is not a dict (of file names).
    """
    summary = read_any_pkl(os.path.join(directory, SUMMARY))
    mapping_path = os.path.join(directory, MAPPING)
    mapping = read_any_pkl(mapping_path) if os.path.exists(mapping_path) else {}
    for name, value in ((SUMMARY, summary), (MAPPING, mapping)):
        if not isinstance(value, dict):
            raise ScenarioError(
                f"{os.path.join(directory, name)}: expected a dict, got {type(value).__name__}"
            )
    names = [str(k) for k in summary if str(k).endswith(".pkl")]
    return [os.path.normpath(os.path.join(directory, str(mapping.get(n, "")), n)) for n in names]


def find_inputs(path: str, fmt: str) -> list[str]:
    """Every scenario file of one input, directories walked in sorted order, each file once."""
    suffixes = tuple(s for name, sfx in FORMATS.items() if fmt in ("auto", name) for s in sfx)
    if not os.path.isdir(path):
        if not os.path.exists(path):
            raise FileNotFoundError(path)
        return [path]
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        if SUMMARY in files and fmt in ("auto", "scenarionet"):
            out += dataset_files(root)
        out += [os.path.join(root, f) for f in sorted(files) if f.endswith(suffixes) and f not in SKIP]
    seen, unique = set(), []
    for f in out:
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m alpagym_env.scenarios.convert", description=__doc__.splitlines()[0]
    )
    p.add_argument("inputs", nargs="+", help="scenario files or directories (one report each)")
    p.add_argument(
        "--out", required=True, help="a directory (one .npz per scene) or a .npz file (packed suite)"
    )
    p.add_argument("--format", choices=("auto", *FORMATS), default="auto")
    p.add_argument("--strict", action="store_true", help="stop at the first file that fails")
    args = p.parse_args(argv)
    scenes, reports = [], []
    for source in args.inputs:
        report = SourceReport(source)
        reports.append(report)
        try:
            files = find_inputs(source, args.format)
        except FileNotFoundError as e:
            print(f"error: no such file or directory: {e}", file=sys.stderr)
            return 2
        except ScenarioError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        for f in files:
            notes = Counter()
            try:
                scene = load_file(f, args.format, notes)
            except (ScenarioError, ValueError, OSError) as e:
                report.fail(e)
                print(f"skipped: {e}", file=sys.stderr)
                if args.strict:
                    return 1
                continue
            scenes.append(scene)
            report.add(scene)
            report.notes.update(notes)
        print("\n".join(report.lines()), file=sys.stderr)
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
    failed = sum(r.failed for r in reports)
    print(f"converted {len(scenes)} scenes ({failed} skipped) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
