"""Two test-only kinds for the datastore contract suite.

They are small on purpose (the suite tests storage, not validation) and live
in an importable module so `spawn`ed worker processes register them too.
"""

from __future__ import annotations

from typing import ClassVar

from gingham.model.base import Metadata, Model, Resource, register_kind


class CounterSpec(Model):
    value: int = 0
    owner: str = ""


@register_kind
class ContractWidget(Resource):
    kind: ClassVar[str] = "ContractWidget"
    plural: ClassVar[str] = "contractwidgets"
    spec: CounterSpec


@register_kind
class ContractGadget(Resource):
    kind: ClassVar[str] = "ContractGadget"
    plural: ClassVar[str] = "contractgadgets"
    spec: CounterSpec


WIDGET = ContractWidget.kind
GADGET = ContractGadget.kind


def widget(name: str, value: int = 0, owner: str = "") -> ContractWidget:
    return ContractWidget(metadata=Metadata(name=name), spec=CounterSpec(value=value, owner=owner))


def gadget(name: str, value: int = 0) -> ContractGadget:
    return ContractGadget(metadata=Metadata(name=name), spec=CounterSpec(value=value))


def with_value(obj: Resource, value: int, owner: str = "") -> Resource:
    """A copy of `obj` (keeping its revision, for CAS) with a new spec."""
    return obj.model_copy(update={"spec": CounterSpec(value=value, owner=owner)})
