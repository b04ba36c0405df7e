"""``python -m hotline.db``: schema chores for developers (upgrade, current, revision).

The ``hotline`` command line is the operator's tool; this is for writing migrations.
"""

from __future__ import annotations

import argparse
import sys

from alembic import command

from hotline.db.engine import alembic_config, current_revision, make_engine, migrate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hotline.db")
    parser.add_argument("--url", help="database URL (default: the configured one)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("upgrade", help="migrate to the newest revision")
    sub.add_parser("current", help="print the database's revision")
    rev = sub.add_parser("revision", help="write a new migration script")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--autogenerate", action="store_true")
    args = parser.parse_args(argv)

    url = args.url
    if url is None:
        from hotline.config import load_settings

        url = load_settings().database_url
    if args.cmd == "upgrade":
        print(migrate(url))
    elif args.cmd == "current":
        engine = make_engine(url)
        try:
            print(current_revision(engine))
        finally:
            engine.dispose()
    else:
        command.revision(alembic_config(url), message=args.message, autogenerate=args.autogenerate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
