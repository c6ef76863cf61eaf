"""Datastore URLs: the accepted forms parse, everything else is a clear ValueError."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gingham.datastore import open_datastore
from gingham.datastore.url import (
    EtcdEndpoint,
    EtcdURL,
    SqliteURL,
    parse_datastore_url,
)


def test_sqlite_url_is_an_absolute_path() -> None:
    assert parse_datastore_url("sqlite:///var/lib/gingham/gingham.db") == SqliteURL(
        "/var/lib/gingham/gingham.db"
    )


def test_etcd_url_lists_endpoints_in_order() -> None:
    parsed = parse_datastore_url("etcd://10.0.0.1:2379,etcd-b.example:32379,[::1]:2379")
    assert parsed == EtcdURL(
        (
            EtcdEndpoint("10.0.0.1", 2379),
            EtcdEndpoint("etcd-b.example", 32379),
            EtcdEndpoint("::1", 2379),
        )
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("/var/lib/gingham.db", "missing scheme"),
        ("sqlite://relative/path.db", "must be absolute"),
        ("sqlite:///", "must be absolute"),
        ("etcd://127.0.0.1", "not host:port"),
        ("etcd://127.0.0.1:http", "is not a number"),
        ("etcd://127.0.0.1:70000", "outside 1..65535"),
        ("etcd://127.0.0.1:2379,", "not host:port"),
        ("mysql://db:3306", 'unknown scheme "mysql"'),
    ],
)
def test_bad_urls_say_why_and_show_the_accepted_forms(url: str, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        open_datastore(url)
    message = str(caught.value)
    assert url in message and reason in message
    assert "sqlite:///" in message and "etcd://host:port" in message


def test_a_sqlite_store_does_not_import_grpc() -> None:
    code = (
        "import sys\n"
        "from gingham.datastore import open_datastore\n"
        "open_datastore('sqlite:///tmp/never-opened/gingham.db')\n"
        "assert 'grpc' not in sys.modules, 'grpc imported for sqlite'\n"
        "open_datastore('etcd://127.0.0.1:1')\n"
        "assert 'grpc' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=".")
