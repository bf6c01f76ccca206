"""``digitnet data``: download MNIST, or show where it is and what it holds."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

NAME = "data"
HELP = "download the MNIST files or show where they are (info)"

# Item counts of the official files, to point out when a folder holds a subset.
_OFFICIAL_COUNTS = {"train": 60_000, "test": 10_000}


def _add_data_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="MNIST folder (default: $DIGITNET_DATA, else the user cache folder)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    download = actions.add_parser(
        "download",
        help="fetch the four official files (md5-checked)",
        description="Fetch the four official MNIST files from public mirrors, checking their md5.",
    )
    _add_data_dir(download)
    download.add_argument(
        "--force",
        action="store_true",
        help="download again even when a file with the right md5 is present",
    )
    download.add_argument(
        "--mirror",
        metavar="URL",
        action="append",
        dest="mirrors",
        help="base URL to fetch from (http, https or file; repeat to give "
        "several, tried in order; default: the public mirrors)",
    )
    download.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="network timeout per request (default: %(default)s)",
    )

    info = actions.add_parser(
        "info",
        help="show the data folder, files, item counts and md5 sums",
        description="Show where the MNIST files are, their item counts and md5 sums.",
    )
    _add_data_dir(info)
    info.add_argument("--json", action="store_true", help="print JSON for scripts")


def _source(cli_value: str | None) -> str:
    if cli_value:
        return "--data-dir"
    if os.environ.get("DIGITNET_DATA", "").strip():
        return "$DIGITNET_DATA"
    return "default cache folder"


def _run_download(args: argparse.Namespace) -> int:
    from ..data.download import download_mnist
    from ..data.mnist import resolve_data_dir
    from ..errors import UsageError

    if args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, got {args.timeout}")
    folder = resolve_data_dir(args.data_dir)
    results = download_mnist(folder, mirrors=args.mirrors, force=args.force, timeout=args.timeout)
    for result in results:
        if result.action == "kept":
            print(f"{result.path.name}: already present, md5 ok")
        else:
            print(f"{result.path.name}: downloaded from {result.url}")
    print(f"MNIST is in {folder}")
    return 0


def _print_info(info: dict[str, Any], source: str) -> None:
    print(f"MNIST folder: {info['data_dir']} (from {source})")
    for split, entry in info["splits"].items():
        note = ""
        official = _OFFICIAL_COUNTS[split]
        if entry["items"] != official:
            note = f" (the official {split} set has {official:,})"
        print(f"{split}: {entry['items']:,} items{note}")
        for kind in ("images", "labels"):
            print(f"  {kind:<7} {entry[kind]['path']}  md5 {entry[kind]['md5']}")


def _run_info(args: argparse.Namespace) -> int:
    from ..data.mnist import describe_data, resolve_data_dir

    info = describe_data(resolve_data_dir(args.data_dir))
    if args.json:
        print(json.dumps({**info, "source": _source(args.data_dir)}, indent=2))
    else:
        _print_info(info, _source(args.data_dir))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.action == "download":
        return _run_download(args)
    return _run_info(args)
