"""``digitnet models``: the model zoo with parameters and compute."""

from __future__ import annotations

import argparse
import json

NAME = "models"
HELP = "list the available models (name, parameters, MFLOPs, summary)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list")


def run(args: argparse.Namespace) -> int:
    from ..models import list_models, model_info

    infos = [model_info(n) for n in list_models()]
    if args.json:
        print(json.dumps(infos))
        return 0
    w = max(len(i["name"]) for i in infos)
    print(f"{'name':<{w}}  {'params':>9}  {'MFLOPs':>7}  summary")
    for i in infos:
        print(f"{i['name']:<{w}}  {i['params']:>9,}  {i['mflops']:>7.2f}  {i['summary']}")
    print(
        "MFLOPs: floating-point operations of one 28x28 forward pass (2 x multiply-adds), in millions."
    )
    return 0
