"""`kubernetes` datastore URLs."""

from __future__ import annotations

import pytest

from gingham.datastore.url import KubernetesURL, parse_datastore_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("kubernetes", KubernetesURL()),
        ("kubernetes://", KubernetesURL()),
        ("kubernetes://?kubeconfig=/etc/k.conf", KubernetesURL(kubeconfig="/etc/k.conf")),
        (
            "kubernetes://?kubeconfig=/k&context=kind-gingham",
            KubernetesURL(kubeconfig="/k", context="kind-gingham"),
        ),
    ],
)
def test_kubernetes_urls(url: str, expected: KubernetesURL) -> None:
    assert parse_datastore_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("kubernetes://apiserver:6443", "takes no host"),
        ("kubernetes://?config=/k", "unknown parameter 'config'"),
        ("kubernetes://?kubeconfig", "not key=value"),
    ],
)
def test_bad_kubernetes_urls_say_why(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_datastore_url(url)
