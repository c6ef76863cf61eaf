"""What apply decides for each object: created, configured or unchanged, and the CAS guard."""

from __future__ import annotations

from gingham.cli.resources import cross_file_duplicates, plan_apply
from gingham.model import IPPool, load_documents
from gingham.model.base import Resource


def pool(name: str, cidr: str, revision: str | None = None, **spec: object) -> IPPool:
    labels = spec.pop("labels", {})
    return IPPool.model_validate(
        {
            "metadata": {"name": name, "labels": labels, "resourceVersion": revision},
            "spec": {"cidr": cidr, **spec},
        }
    )


def stored(*objs: Resource) -> dict[tuple[str, str], Resource]:
    return {(o.kind, o.name): o for o in objs}


def test_new_objects_are_created_without_a_revision() -> None:
    (step,) = plan_apply([pool("a", "10.0.0.0/16", revision="99")], {})
    assert step.verb == "created"
    assert step.write is not None
    assert step.write.resource_version is None


def test_equal_spec_and_labels_is_unchanged_and_writes_nothing() -> None:
    old = pool("a", "10.0.0.0/16", revision="5", natOutgoing=True)
    # Written differently (defaults spelled out) but equal in meaning.
    new = pool("a", "10.0.0.0/16", blockSize=26, natOutgoing=True, ipipMode="Never")
    (step,) = plan_apply([new], stored(old))
    assert (step.verb, step.write) == ("unchanged", None)


def test_a_changed_spec_is_configured_guarded_by_the_revision_read() -> None:
    old = pool("a", "10.0.0.0/16", revision="5")
    (step,) = plan_apply([pool("a", "10.0.0.0/16", natOutgoing=True)], stored(old))
    assert step.verb == "configured"
    assert step.write is not None
    assert step.write.resource_version == "5"
    assert step.write.spec.nat_outgoing is True


def test_a_label_change_is_configured() -> None:
    old = pool("a", "10.0.0.0/16", revision="5")
    (step,) = plan_apply([pool("a", "10.0.0.0/16", labels={"x": "y"})], stored(old))
    assert step.verb == "configured"


def test_a_revision_in_the_document_is_the_cas_guard_even_when_stale() -> None:
    old = pool("a", "10.0.0.0/16", revision="7")
    (step,) = plan_apply([pool("a", "10.0.0.0/16", revision="3", disabled=True)], stored(old))
    assert step.verb == "configured"
    assert step.write is not None
    assert step.write.resource_version == "3"  # the store refuses it: Conflict


def test_the_same_object_in_two_files_is_an_error_naming_both() -> None:
    text = (
        "apiVersion: gingham.io/v1\nkind: IPPool\nmetadata: {name: a}\nspec: {cidr: 10.0.0.0/16}\n"
    )
    one, two = load_documents(text, "one.yaml"), load_documents(text, "two.yaml")
    (error,) = cross_file_duplicates([("one.yaml", one), ("two.yaml", two)])
    assert str(error) == 'two.yaml: IPPool "a": metadata.name: also defined in one.yaml'
    assert cross_file_duplicates([("one.yaml", one)]) == []
