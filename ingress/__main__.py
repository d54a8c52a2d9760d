"""``python -m ingress add-partner PARTNER_ID --scope S ...``: register an OAuth2 client for a partner."""

from __future__ import annotations

import argparse
import json
import sys

import psycopg

from ingress.auth.accounts import SCOPES, add_partner_client
from topology.settings import Settings


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingress")
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add-partner", help="register an OAuth2 client (client credentials) for a partner")
    add.add_argument("partner_id", help="the partner's id (owner of its SKUs)")
    add.add_argument("--scope", action="append", choices=tuple(SCOPES), required=True, help="repeat for several")
    args = parser.parse_args(argv)
    if not (0 < len(args.partner_id) <= 64) or not args.partner_id.replace("-", "").replace("_", "").isalnum():
        parser.error("partner_id: 1 to 64 letters, digits, - or _")
    try:
        client_id, secret = add_partner_client(Settings.from_env(), args.partner_id, sorted(set(args.scope)))
    except psycopg.Error as err:
        print(
            f"error: postgres: {str(err).strip()}\n  fix: `shopstream stack up` and `shopstream db migrate`",
            file=sys.stderr,
        )
        return 1
    print(json.dumps({"client_id": client_id, "client_secret": secret, "scopes": sorted(set(args.scope))}))
    print("the secret is shown once; store it now", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
