"""Command line: ``python -m bertdrift {book,info}``.

``book``  executes every chapter with papermill under a profile and builds the HTML book.
``finetune`` trains (or returns the cached) fine-tuned model of one task; under
           ``accelerate launch -m bertdrift finetune ...`` it runs on every configured GPU.
``info``  prints the profile, the model, the device and the data directory that would be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bertdrift.config import TASKS
from bertdrift.errors import BertdriftError


def _overrides(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BertdriftError(f"--set {pair!r}: use NAME=VALUE, e.g. --set mnli_epochs=1")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bertdrift", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    book = sub.add_parser("book", help="execute every chapter, then build the HTML book")
    book.add_argument("--profile", default="auto", help="tiny, paper or auto (default)")
    book.add_argument("--build", default="_build", type=Path, help="build folder")
    book.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                      help="profile override, e.g. --set mnli_epochs=1 (repeatable)")
    book.add_argument("--only", action="append", default=None,
                      help="execute only chapters whose name contains this (repeatable)")
    book.add_argument("--no-execute", action="store_true",
                      help="reuse executed notebooks in the build folder")
    ft = sub.add_parser("finetune", help="fine-tune one task (cached; resumes if interrupted)")
    ft.add_argument("--task", required=True, choices=list(TASKS))
    ft.add_argument("--profile", default="auto")
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--freeze", type=int, default=0, help="freeze embeddings + bottom k layers")
    ft.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    info = sub.add_parser("info", help="show the resolved profile, model and paths")
    info.add_argument("--profile", default="auto")
    info.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    try:
        from bertdrift import about
        from bertdrift import book as book_mod
        from bertdrift.config import absolutize_env, as_dict, get_profile, resolve_device

        absolutize_env()  # chapters run from notebooks/: relative paths must not change meaning

        overrides = _overrides(args.set)
        profile = get_profile(args.profile, **overrides)
        if args.command == "info":
            print(json.dumps({"bertdrift": about.version(), "repository": about.repository(),
                              **as_dict(profile), "resolved_device": resolve_device(
                profile.device), "data_path": str(profile.data_path),
                "cache_path": str(profile.cache_path)}, indent=2, default=str))
            return 0
        if args.command == "finetune":
            from bertdrift.finetune import get_finetuned

            result = get_finetuned(args.task, profile, freeze=args.freeze, seed=args.seed)
            print(json.dumps({"path": str(result.path), "metrics": result.metrics}, indent=2,
                             default=str))
            return 0
        if not about.in_checkout():
            raise BertdriftError(about.outside_checkout_message())
        build = args.build.resolve()
        if args.no_execute:
            book_mod.build_html(build)
        elif args.only:
            book_mod.execute(build, profile.name, overrides, only=args.only)
            missing = book_mod.unexecuted(build)
            if missing:
                print(f"[bertdrift] not building the HTML: {', '.join(missing)} not executed "
                      f"yet in {build}")
            else:
                print(f"[bertdrift] book: {book_mod.build_html(build) / 'index.html'}")
        else:
            book_mod.run(build, profile.name, overrides)
        return 0
    except BertdriftError as exc:
        print(f"bertdrift: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bertdrift: interrupted; run the same command again to resume (every stage is "
              "cached and resumable)", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"bertdrift: error: {exc}; check that the data folder (BERTDRIFT_DATA) is readable "
              "and the cache (BERTDRIFT_CACHE) writable with free space", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
