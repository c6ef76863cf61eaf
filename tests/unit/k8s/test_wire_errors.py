"""API errors → datastore errors (gingham.datastore.kubernetes_wire.translate), with the
exception shape the official client raises (status, reason, JSON body)."""

from __future__ import annotations

import json

import pytest

from gingham.datastore.base import (
    AlreadyExists,
    Conflict,
    NotFound,
    RevisionCompacted,
    Unavailable,
)
from gingham.datastore.kubernetes_wire import Forbidden, Rejected, translate


class ApiError(Exception):
    """Shaped like kubernetes.client.exceptions.ApiException."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = "Reason"
        self.body = json.dumps({"kind": "Status", "message": message})


DENIED = (
    'ippools.gingham.io "p" is forbidden: User "system:serviceaccount:kube-system:gingham-node"'
    ' cannot delete resource "ippools" in API group "gingham.io" at the cluster scope'
)


@pytest.mark.parametrize(
    ("status", "create", "expected"),
    [
        (404, False, NotFound),
        (409, True, AlreadyExists),
        (409, False, Conflict),
        (410, False, RevisionCompacted),
        (422, False, Rejected),
        (401, False, Forbidden),
        (403, False, Forbidden),
        (429, False, Unavailable),
        (500, False, Unavailable),
    ],
)
def test_status_maps_to_a_datastore_error(
    status: int, create: bool, expected: type[Exception]
) -> None:
    assert type(translate('IPPool "p"', ApiError(status, "m"), create=create)) is expected


def test_a_refusal_keeps_the_servers_words_and_is_retried_like_an_outage() -> None:
    error = translate('IPPool "p"', ApiError(403, DENIED), create=False)

    assert isinstance(error, Unavailable)  # agents back off and retry
    assert DENIED in str(error) and "manifests/rbac.yaml" in str(error)


def test_no_answer_at_all_is_unavailable() -> None:
    error = translate('IPPool "p"', ConnectionRefusedError("refused"), create=False)
    assert type(error) is Unavailable and "unreachable" in str(error)
