"""``python -m flows run NAME`` runs one flow with recovery (what ``shopstream flow NAME`` runs)."""

from __future__ import annotations

import argparse
import sys

from flows import run


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows")
    commands = parser.add_subparsers(dest="command", required=True)
    one = commands.add_parser("run", help="run one flow with recovery")
    one.add_argument("name", choices=run.FLOWS)
    args = parser.parse_args(argv)
    run.main(args.name)
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
