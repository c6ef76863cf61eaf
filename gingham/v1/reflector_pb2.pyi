from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Origin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORIGIN_IGP: _ClassVar[Origin]
    ORIGIN_EGP: _ClassVar[Origin]
    ORIGIN_INCOMPLETE: _ClassVar[Origin]

class ReflectorInputType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFLECTOR_INPUT_TYPE_UNSPECIFIED: _ClassVar[ReflectorInputType]
    INPUT_SNAPSHOT_BEGIN: _ClassVar[ReflectorInputType]
    INPUT_SNAPSHOT_END: _ClassVar[ReflectorInputType]
    PEER_UP: _ClassVar[ReflectorInputType]
    PEER_DOWN: _ClassVar[ReflectorInputType]
    ANNOUNCE: _ClassVar[ReflectorInputType]
    WITHDRAW: _ClassVar[ReflectorInputType]

class ReflectorOutputType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REFLECTOR_OUTPUT_TYPE_UNSPECIFIED: _ClassVar[ReflectorOutputType]
    DELTA: _ClassVar[ReflectorOutputType]
    OUTPUT_SNAPSHOT_BEGIN: _ClassVar[ReflectorOutputType]
    OUTPUT_SNAPSHOT_END: _ClassVar[ReflectorOutputType]
ORIGIN_IGP: Origin
ORIGIN_EGP: Origin
ORIGIN_INCOMPLETE: Origin
REFLECTOR_INPUT_TYPE_UNSPECIFIED: ReflectorInputType
INPUT_SNAPSHOT_BEGIN: ReflectorInputType
INPUT_SNAPSHOT_END: ReflectorInputType
PEER_UP: ReflectorInputType
PEER_DOWN: ReflectorInputType
ANNOUNCE: ReflectorInputType
WITHDRAW: ReflectorInputType
REFLECTOR_OUTPUT_TYPE_UNSPECIFIED: ReflectorOutputType
DELTA: ReflectorOutputType
OUTPUT_SNAPSHOT_BEGIN: ReflectorOutputType
OUTPUT_SNAPSHOT_END: ReflectorOutputType

class PathAttributes(_message.Message):
    __slots__ = ("next_hop", "as_path", "origin", "med", "local_pref", "originator_id", "cluster_list", "communities", "large_communities", "extended_communities")
    NEXT_HOP_FIELD_NUMBER: _ClassVar[int]
    AS_PATH_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    MED_FIELD_NUMBER: _ClassVar[int]
    LOCAL_PREF_FIELD_NUMBER: _ClassVar[int]
    ORIGINATOR_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_LIST_FIELD_NUMBER: _ClassVar[int]
    COMMUNITIES_FIELD_NUMBER: _ClassVar[int]
    LARGE_COMMUNITIES_FIELD_NUMBER: _ClassVar[int]
    EXTENDED_COMMUNITIES_FIELD_NUMBER: _ClassVar[int]
    next_hop: str
    as_path: _containers.RepeatedScalarFieldContainer[int]
    origin: Origin
    med: int
    local_pref: int
    originator_id: str
    cluster_list: _containers.RepeatedScalarFieldContainer[str]
    communities: _containers.RepeatedScalarFieldContainer[str]
    large_communities: _containers.RepeatedScalarFieldContainer[str]
    extended_communities: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, next_hop: _Optional[str] = ..., as_path: _Optional[_Iterable[int]] = ..., origin: _Optional[_Union[Origin, str]] = ..., med: _Optional[int] = ..., local_pref: _Optional[int] = ..., originator_id: _Optional[str] = ..., cluster_list: _Optional[_Iterable[str]] = ..., communities: _Optional[_Iterable[str]] = ..., large_communities: _Optional[_Iterable[str]] = ..., extended_communities: _Optional[_Iterable[str]] = ...) -> None: ...

class ReflectorInput(_message.Message):
    __slots__ = ("type", "peer", "router_id", "client", "prefixes", "attributes", "cluster_id")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    ROUTER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    type: ReflectorInputType
    peer: str
    router_id: str
    client: bool
    prefixes: _containers.RepeatedScalarFieldContainer[str]
    attributes: PathAttributes
    cluster_id: str
    def __init__(self, type: _Optional[_Union[ReflectorInputType, str]] = ..., peer: _Optional[str] = ..., router_id: _Optional[str] = ..., client: _Optional[bool] = ..., prefixes: _Optional[_Iterable[str]] = ..., attributes: _Optional[_Union[PathAttributes, _Mapping]] = ..., cluster_id: _Optional[str] = ...) -> None: ...

class RouteGroup(_message.Message):
    __slots__ = ("attributes", "prefixes")
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    attributes: PathAttributes
    prefixes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, attributes: _Optional[_Union[PathAttributes, _Mapping]] = ..., prefixes: _Optional[_Iterable[str]] = ...) -> None: ...

class PeerDiff(_message.Message):
    __slots__ = ("peer", "announce", "withdraw", "peers")
    PEER_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCE_FIELD_NUMBER: _ClassVar[int]
    WITHDRAW_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    peer: str
    announce: _containers.RepeatedCompositeFieldContainer[RouteGroup]
    withdraw: _containers.RepeatedScalarFieldContainer[str]
    peers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, peer: _Optional[str] = ..., announce: _Optional[_Iterable[_Union[RouteGroup, _Mapping]]] = ..., withdraw: _Optional[_Iterable[str]] = ..., peers: _Optional[_Iterable[str]] = ...) -> None: ...

class ReflectorOutput(_message.Message):
    __slots__ = ("type", "received", "error", "diffs")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DIFFS_FIELD_NUMBER: _ClassVar[int]
    type: ReflectorOutputType
    received: int
    error: str
    diffs: _containers.RepeatedCompositeFieldContainer[PeerDiff]
    def __init__(self, type: _Optional[_Union[ReflectorOutputType, str]] = ..., received: _Optional[int] = ..., error: _Optional[str] = ..., diffs: _Optional[_Iterable[_Union[PeerDiff, _Mapping]]] = ...) -> None: ...

class ReflectorStatusRequest(_message.Message):
    __slots__ = ("best_paths",)
    BEST_PATHS_FIELD_NUMBER: _ClassVar[int]
    best_paths: bool
    def __init__(self, best_paths: _Optional[bool] = ...) -> None: ...

class ReflectorPeer(_message.Message):
    __slots__ = ("address", "router_id", "client", "peer_type", "received", "advertised")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ROUTER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    PEER_TYPE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    ADVERTISED_FIELD_NUMBER: _ClassVar[int]
    address: str
    router_id: str
    client: bool
    peer_type: str
    received: int
    advertised: int
    def __init__(self, address: _Optional[str] = ..., router_id: _Optional[str] = ..., client: _Optional[bool] = ..., peer_type: _Optional[str] = ..., received: _Optional[int] = ..., advertised: _Optional[int] = ...) -> None: ...

class BestPath(_message.Message):
    __slots__ = ("prefix", "peer", "attributes", "candidates", "advertised_to")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    ADVERTISED_TO_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    peer: str
    attributes: PathAttributes
    candidates: int
    advertised_to: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, prefix: _Optional[str] = ..., peer: _Optional[str] = ..., attributes: _Optional[_Union[PathAttributes, _Mapping]] = ..., candidates: _Optional[int] = ..., advertised_to: _Optional[_Iterable[str]] = ...) -> None: ...

class ReflectorStatusReply(_message.Message):
    __slots__ = ("node", "cluster_id", "router_id", "in_sync", "peers", "clients", "non_clients", "prefixes", "best_paths", "loops_dropped", "reflected_updates")
    NODE_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    ROUTER_ID_FIELD_NUMBER: _ClassVar[int]
    IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    NON_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    BEST_PATHS_FIELD_NUMBER: _ClassVar[int]
    LOOPS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    REFLECTED_UPDATES_FIELD_NUMBER: _ClassVar[int]
    node: str
    cluster_id: str
    router_id: str
    in_sync: bool
    peers: _containers.RepeatedCompositeFieldContainer[ReflectorPeer]
    clients: int
    non_clients: int
    prefixes: int
    best_paths: _containers.RepeatedCompositeFieldContainer[BestPath]
    loops_dropped: int
    reflected_updates: int
    def __init__(self, node: _Optional[str] = ..., cluster_id: _Optional[str] = ..., router_id: _Optional[str] = ..., in_sync: _Optional[bool] = ..., peers: _Optional[_Iterable[_Union[ReflectorPeer, _Mapping]]] = ..., clients: _Optional[int] = ..., non_clients: _Optional[int] = ..., prefixes: _Optional[int] = ..., best_paths: _Optional[_Iterable[_Union[BestPath, _Mapping]]] = ..., loops_dropped: _Optional[int] = ..., reflected_updates: _Optional[int] = ...) -> None: ...
