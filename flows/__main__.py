"""``python -m flows run NAME [NAME ...]`` runs one flow, or a group of flows in one dataflow, with recovery."""

from __future__ import annotations

import argparse
import sys

from flows import run


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows")
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="run one flow (or several as one group) with recovery")
    one.add_argument("names", nargs="+", choices=run.FLOWS, metavar="NAME")
    args = parser.parse_args(argv)
    run.main(*args.names)
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
