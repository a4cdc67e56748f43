#!/usr/bin/env python3
"""Create OMServer's MySQL/MariaDB database and its own user, idempotently.

Run with an administrator's URL; prints the URL the platform should use
(``OMSERVER_DATABASE_URL``). The password is generated once and kept, mode
0600, in ``--secret-file`` so that running it again changes nothing.

    python sql/create_database.py --admin-url mysql://root@127.0.0.1:3306/ \\
        --name omserver --user omserver --secret-file /etc/omserver/db.url
"""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import MySQLdb

from omserver.files import write_private


def admin_connection(url: str) -> MySQLdb.Connection:
    parts = urlsplit(url)
    if parts.scheme != "mysql":
        raise SystemExit(f"--admin-url must be mysql://user[:password]@host[:port]/, got {url!r}")
    return MySQLdb.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        charset="utf8mb4",
    )


def stored_password(secret_file: Path) -> str | None:
    try:
        return urlsplit(secret_file.read_text().strip()).password
    except FileNotFoundError:
        return None


def create(admin_url: str, name: str, user: str, secret_file: Path, test_grants: bool) -> str:
    password = stored_password(secret_file) or secrets.token_urlsafe(24)
    parts = urlsplit(admin_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 3306
    db = admin_connection(admin_url)
    try:
        cur = db.cursor()
        cur.execute(
            f"CREATE DATABASE IF NOT EXISTS `{name}` "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )
        schemas = [name] + ([f"test_{name}"] if test_grants else [])
        for account_host in ("localhost", "%"):
            cur.execute(
                "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, account_host, password)
            )
            cur.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, account_host, password))
            for schema in schemas:
                escaped = schema.replace("_", r"\_")
                cur.execute(f"GRANT ALL PRIVILEGES ON `{escaped}`.* TO %s@%s", (user, account_host))
        db.commit()
    finally:
        db.close()
    url = f"mysql://{quote(user)}:{quote(password, safe='')}@{host}:{port}/{name}"
    write_private(secret_file, url + "\n")
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="mysql://root@127.0.0.1:3306/")
    parser.add_argument("--name", default="omserver")
    parser.add_argument("--user", default="omserver")
    parser.add_argument("--secret-file", type=Path, required=True)
    parser.add_argument(
        "--test-grants",
        action="store_true",
        help="also grant on test_<name>, for Django's test runner",
    )
    args = parser.parse_args(argv)
    for value, what in ((args.name, "--name"), (args.user, "--user")):
        if not value.replace("_", "").isalnum():
            parser.error(f"{what} takes letters, digits and underscores only")
    try:
        print(create(args.admin_url, args.name, args.user, args.secret_file, args.test_grants))
    except MySQLdb.OperationalError as exc:
        print(f"cannot reach MySQL at {args.admin_url}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
