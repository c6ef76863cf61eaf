from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SpeakerStatusRequest(_message.Message):
    __slots__ = ("include_routes",)
    INCLUDE_ROUTES_FIELD_NUMBER: _ClassVar[int]
    include_routes: bool
    def __init__(self, include_routes: _Optional[bool] = ...) -> None: ...

class BgpPeerStatus(_message.Message):
    __slots__ = ("address", "peer_type", "state", "since", "info", "received", "accepted", "advertised", "node", "as_number")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    INFO_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    ADVERTISED_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    AS_NUMBER_FIELD_NUMBER: _ClassVar[int]
    address: str
    peer_type: str
    state: str
    since: float
    info: str
    received: int
    accepted: int
    advertised: int
    node: str
    as_number: int
    def __init__(self, address: _Optional[str] = ..., peer_type: _Optional[str] = ..., state: _Optional[str] = ..., since: _Optional[float] = ..., info: _Optional[str] = ..., received: _Optional[int] = ..., accepted: _Optional[int] = ..., advertised: _Optional[int] = ..., node: _Optional[str] = ..., as_number: _Optional[int] = ...) -> None: ...

class BgpRoute(_message.Message):
    __slots__ = ("prefix", "next_hop", "peer", "node")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NEXT_HOP_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    next_hop: str
    peer: str
    node: str
    def __init__(self, prefix: _Optional[str] = ..., next_hop: _Optional[str] = ..., peer: _Optional[str] = ..., node: _Optional[str] = ...) -> None: ...

class SpeakerStatusReply(_message.Message):
    __slots__ = ("node", "address", "ready", "felix_in_sync", "peers", "announced_count", "learned_count", "announced", "learned", "rejected_by_reason", "rejected_by_peer", "rejected_example")
    class RejectedByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class RejectedByPeerEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class RejectedExampleEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    FELIX_IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCED_COUNT_FIELD_NUMBER: _ClassVar[int]
    LEARNED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCED_FIELD_NUMBER: _ClassVar[int]
    LEARNED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    REJECTED_BY_PEER_FIELD_NUMBER: _ClassVar[int]
    REJECTED_EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    node: str
    address: str
    ready: bool
    felix_in_sync: bool
    peers: _containers.RepeatedCompositeFieldContainer[BgpPeerStatus]
    announced_count: int
    learned_count: int
    announced: _containers.RepeatedCompositeFieldContainer[BgpRoute]
    learned: _containers.RepeatedCompositeFieldContainer[BgpRoute]
    rejected_by_reason: _containers.ScalarMap[str, int]
    rejected_by_peer: _containers.ScalarMap[str, int]
    rejected_example: _containers.ScalarMap[str, str]
    def __init__(self, node: _Optional[str] = ..., address: _Optional[str] = ..., ready: _Optional[bool] = ..., felix_in_sync: _Optional[bool] = ..., peers: _Optional[_Iterable[_Union[BgpPeerStatus, _Mapping]]] = ..., announced_count: _Optional[int] = ..., learned_count: _Optional[int] = ..., announced: _Optional[_Iterable[_Union[BgpRoute, _Mapping]]] = ..., learned: _Optional[_Iterable[_Union[BgpRoute, _Mapping]]] = ..., rejected_by_reason: _Optional[_Mapping[str, int]] = ..., rejected_by_peer: _Optional[_Mapping[str, int]] = ..., rejected_example: _Optional[_Mapping[str, str]] = ...) -> None: ...
