"""The ``medssl`` command: run notebooks, run protocol grids, manage weights, rebuild the mini-zoo."""
from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml


def _params(pairs: list[str]) -> dict[str, Any]:
    out = {}
    for p in pairs or []:
        if "=" not in p:
            raise SystemExit(f"medssl: -p expects key=value, got {p!r}")
        k, v = p.split("=", 1)
        out[k] = yaml.safe_load(v)
    return out


def _shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"medssl: --shard expects i/n (e.g. 0/4), got {text!r}") from None
    return i, n


def _with_executor(args) -> dict[str, Any]:
    params = _params(args.params)
    if args.executor:
        params["executor"] = args.executor
    return params


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="medssl", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    nb = sub.add_parser("notebooks", help="execute the Q1-Q3 notebooks with papermill (skips up-to-date ones)")
    nb.add_argument("--profile", default="mini")
    nb.add_argument("--out", default="book/generated")
    nb.add_argument("--only", nargs="*", help="notebook names (default: all)")
    nb.add_argument("--suffix", default="", help="appended to output file names")
    nb.add_argument("--force", action="store_true")
    nb.add_argument("-p", dest="params", action="append", metavar="KEY=VALUE", help="parameter override (YAML value)")
    nb.add_argument("--executor",
                    help="where the grid's units run: local | processes | submitit | ray (the parameter 'executor')")

    rn = sub.add_parser("run", help="run a grid of (protocol, model, dataset) units; shardable")
    rn.add_argument("--profile", default="mini")
    rn.add_argument("--protocols", default="fewshot,linear,finetune")
    rn.add_argument("--shard", help="i/n: this worker's share (default: RANK/WORLD_SIZE or SLURM variables)")
    rn.add_argument("-p", dest="params", action="append", metavar="KEY=VALUE")
    rn.add_argument("--executor", help="local | processes (a pool on this machine) | submitit (SLURM array jobs) | "
                                       "ray; settings: -p executor_options={...}")

    ck = sub.add_parser("check", help="validate a profile and overrides, then exit")
    ck.add_argument("--profile", default="mini")
    ck.add_argument("-p", dest="params", action="append", metavar="KEY=VALUE")
    ck.add_argument("--quick", action="store_true", help="options and files only; do not read the datasets")

    wt = sub.add_parser("weights", help="the paper's checkpoints: download, convert, report")
    wsub = wt.add_subparsers(dest="wcmd", required=True)
    wf = wsub.add_parser("fetch", help="download missing originals (needs the internet), verify, convert")
    wf.add_argument("names", nargs="*", help="model names (default: all paper models)")
    wf.add_argument("--weights-dir", required=True)
    wc = wsub.add_parser("convert", help="convert an original checkpoint you downloaded by hand")
    wc.add_argument("name")
    wc.add_argument("--source", required=True, help="the original checkpoint file")
    wc.add_argument("--weights-dir", required=True)
    ws = wsub.add_parser("status", help="which models are present, converted and verified")
    ws.add_argument("--weights-dir", required=True)

    rh = sub.add_parser("rehearse", help="the paper profile end to end on fabricated publisher-layout data and "
                        "random checkpoints in their original layouts, then the book")
    rh.add_argument("--out", default="_rehearsal", help="folder for data, weights, cache, results and the book")
    rh.add_argument("--models", nargs="*", help="paper model names (default: all 13)")
    rh.add_argument("--datasets", nargs="*", help="paper dataset names (default: all 8)")
    rh.add_argument("--ci", action="store_true", help="the CI-sized rehearsal: 2 models x 2 datasets")
    rh.add_argument("--no-book", action="store_true", help="run the notebooks but do not build the book")

    mz = sub.add_parser("minizoo", help="rebuild mini-zoo checkpoints from scratch (deterministic), build budgets "
                        "in resumable stretches (--budget B --continue), neutral probe (--neutral-probe)",
                        prefix_chars="+", add_help=False)   # '--name ...', '-h' all go to the trainer's own parser
    mz.add_argument("args", nargs=argparse.REMAINDER, help="arguments of python -m medssl_utils.models.minizoo.train")

    args = ap.parse_args(argv)
    from .config import resolve
    from .errors import MedsslError

    try:
        if args.cmd == "check":
            from .preflight import preflight

            cfg = resolve(args.profile, **_params(args.params))
            preflight(cfg, data=not args.quick, progress=True)
            what = "options and files" if args.quick else "options, files, dataset indexes, few-shot classes, images"
            print(f"profile {cfg.profile}: {len(cfg.models)} models, {len(cfg.datasets)} datasets; {what}: ok")
        elif args.cmd == "notebooks":
            from .notebooks import run_notebooks

            run_notebooks(args.profile, args.out, names=args.only, params=_with_executor(args), force=args.force,
                          suffix=args.suffix)
        elif args.cmd == "run":
            from .pipeline import grid

            cfg = resolve(args.profile, **_with_executor(args))
            protocols = grid.check_protocols(p.strip() for p in args.protocols.split(",") if p.strip())
            rows = grid.run(cfg, protocols, shard=_shard(args.shard))   # checks files and data before work
            print(f"{len(rows)} result rows under {cfg.results_dir}")
        elif args.cmd == "weights":
            from .models import converters, fetch

            if args.wcmd == "fetch":
                from .models.registry import available

                fetch.fetch(args.names or available("paper"), args.weights_dir)
            elif args.wcmd == "convert":
                print(converters.convert(args.name, args.source, args.weights_dir))
            else:
                print(fetch.status(args.weights_dir).to_string(index=False))
        elif args.cmd == "rehearse":
            from . import rehearsal

            models = args.models or (list(rehearsal.CI_MODELS) if args.ci else None)
            datasets = args.datasets or (list(rehearsal.CI_DATASETS) if args.ci else None)
            rehearsal.rehearse(args.out, models=models, datasets=datasets, book=not args.no_book)
        elif args.cmd == "minizoo":
            from .models.minizoo import train

            train.main(args.args)
    except MedsslError as exc:
        print(f"medssl: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
