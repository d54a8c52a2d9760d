"""``python -m sinks run NAME`` runs a sink; ``python -m sinks reindex INDEX`` rebuilds a search index."""

from __future__ import annotations

import argparse
import sys

from elasticsearch import Elasticsearch

from sinks import app, search
from topology.settings import Settings
from topology.stores import INDEXES


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m sinks")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run one sink")
    run.add_argument("name", choices=sorted(app.SINKS))
    reindex = commands.add_parser("reindex", help="rebuild a search index from its template, behind its alias")
    reindex.add_argument("index", choices=sorted(INDEXES))
    reindex.add_argument("--keep-old", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "run":
        app.main(args.name)
        return 0
    settings = Settings.from_env()
    with Elasticsearch(settings.search_url, request_timeout=60) as es:
        old, new, copied = search.reindex(es, settings.search_prefix, args.index, keep_old=args.keep_old)
    print(f"{args.index}: {old} -> {new} ({copied} documents in the catch-up pass)")
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
