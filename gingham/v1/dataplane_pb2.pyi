from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ERROR_CODE_UNSPECIFIED: _ClassVar[ErrorCode]
    TRY_AGAIN_LATER: _ClassVar[ErrorCode]
    INVALID_ARGUMENT: _ClassVar[ErrorCode]
    ADDRESS_EXHAUSTED: _ClassVar[ErrorCode]
    NOT_FOUND: _ClassVar[ErrorCode]
    INTERNAL: _ClassVar[ErrorCode]

class RouteUpdateType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUTE_UPDATE_TYPE_UNSPECIFIED: _ClassVar[RouteUpdateType]
    SNAPSHOT_BEGIN: _ClassVar[RouteUpdateType]
    SNAPSHOT_END: _ClassVar[RouteUpdateType]
    ADD: _ClassVar[RouteUpdateType]
    DEL: _ClassVar[RouteUpdateType]

class Encapsulation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENCAPSULATION_FROM_POOL: _ClassVar[Encapsulation]
    ENCAPSULATION_NONE: _ClassVar[Encapsulation]
    ENCAPSULATION_IPIP: _ClassVar[Encapsulation]
    ENCAPSULATION_VXLAN: _ClassVar[Encapsulation]
ERROR_CODE_UNSPECIFIED: ErrorCode
TRY_AGAIN_LATER: ErrorCode
INVALID_ARGUMENT: ErrorCode
ADDRESS_EXHAUSTED: ErrorCode
NOT_FOUND: ErrorCode
INTERNAL: ErrorCode
ROUTE_UPDATE_TYPE_UNSPECIFIED: RouteUpdateType
SNAPSHOT_BEGIN: RouteUpdateType
SNAPSHOT_END: RouteUpdateType
ADD: RouteUpdateType
DEL: RouteUpdateType
ENCAPSULATION_FROM_POOL: Encapsulation
ENCAPSULATION_NONE: Encapsulation
ENCAPSULATION_IPIP: Encapsulation
ENCAPSULATION_VXLAN: Encapsulation

class ErrorDetail(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: ErrorCode
    message: str
    field: str
    def __init__(self, code: _Optional[_Union[ErrorCode, str]] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class WorkloadId(_message.Message):
    __slots__ = ("container_id", "interface_name")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_NAME_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    interface_name: str
    def __init__(self, container_id: _Optional[str] = ..., interface_name: _Optional[str] = ...) -> None: ...

class AddWorkloadRequest(_message.Message):
    __slots__ = ("container_id", "netns", "interface_name", "pod_namespace", "pod_name", "pod_uid", "requested_ips", "pools", "mtu", "mac")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    NETNS_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_NAME_FIELD_NUMBER: _ClassVar[int]
    POD_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    POD_NAME_FIELD_NUMBER: _ClassVar[int]
    POD_UID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_IPS_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    netns: str
    interface_name: str
    pod_namespace: str
    pod_name: str
    pod_uid: str
    requested_ips: _containers.RepeatedScalarFieldContainer[str]
    pools: _containers.RepeatedScalarFieldContainer[str]
    mtu: int
    mac: str
    def __init__(self, container_id: _Optional[str] = ..., netns: _Optional[str] = ..., interface_name: _Optional[str] = ..., pod_namespace: _Optional[str] = ..., pod_name: _Optional[str] = ..., pod_uid: _Optional[str] = ..., requested_ips: _Optional[_Iterable[str]] = ..., pools: _Optional[_Iterable[str]] = ..., mtu: _Optional[int] = ..., mac: _Optional[str] = ...) -> None: ...

class Interface(_message.Message):
    __slots__ = ("name", "mac", "sandbox")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    name: str
    mac: str
    sandbox: str
    def __init__(self, name: _Optional[str] = ..., mac: _Optional[str] = ..., sandbox: _Optional[str] = ...) -> None: ...

class IPConfig(_message.Message):
    __slots__ = ("address", "gateway", "interface")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_FIELD_NUMBER: _ClassVar[int]
    address: str
    gateway: str
    interface: int
    def __init__(self, address: _Optional[str] = ..., gateway: _Optional[str] = ..., interface: _Optional[int] = ...) -> None: ...

class RouteConfig(_message.Message):
    __slots__ = ("dst", "gw")
    DST_FIELD_NUMBER: _ClassVar[int]
    GW_FIELD_NUMBER: _ClassVar[int]
    dst: str
    gw: str
    def __init__(self, dst: _Optional[str] = ..., gw: _Optional[str] = ...) -> None: ...

class AddWorkloadReply(_message.Message):
    __slots__ = ("interfaces", "ips", "routes", "mac", "host_interface", "mtu")
    INTERFACES_FIELD_NUMBER: _ClassVar[int]
    IPS_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    HOST_INTERFACE_FIELD_NUMBER: _ClassVar[int]
    MTU_FIELD_NUMBER: _ClassVar[int]
    interfaces: _containers.RepeatedCompositeFieldContainer[Interface]
    ips: _containers.RepeatedCompositeFieldContainer[IPConfig]
    routes: _containers.RepeatedCompositeFieldContainer[RouteConfig]
    mac: str
    host_interface: str
    mtu: int
    def __init__(self, interfaces: _Optional[_Iterable[_Union[Interface, _Mapping]]] = ..., ips: _Optional[_Iterable[_Union[IPConfig, _Mapping]]] = ..., routes: _Optional[_Iterable[_Union[RouteConfig, _Mapping]]] = ..., mac: _Optional[str] = ..., host_interface: _Optional[str] = ..., mtu: _Optional[int] = ...) -> None: ...

class DeleteWorkloadRequest(_message.Message):
    __slots__ = ("container_id", "netns", "interface_name")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    NETNS_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_NAME_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    netns: str
    interface_name: str
    def __init__(self, container_id: _Optional[str] = ..., netns: _Optional[str] = ..., interface_name: _Optional[str] = ...) -> None: ...

class DeleteWorkloadReply(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class CheckWorkloadRequest(_message.Message):
    __slots__ = ("container_id", "netns", "interface_name")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    NETNS_FIELD_NUMBER: _ClassVar[int]
    INTERFACE_NAME_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    netns: str
    interface_name: str
    def __init__(self, container_id: _Optional[str] = ..., netns: _Optional[str] = ..., interface_name: _Optional[str] = ...) -> None: ...

class CheckWorkloadReply(_message.Message):
    __slots__ = ("ok", "problems", "workload")
    OK_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    WORKLOAD_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    problems: _containers.RepeatedScalarFieldContainer[str]
    workload: Workload
    def __init__(self, ok: _Optional[bool] = ..., problems: _Optional[_Iterable[str]] = ..., workload: _Optional[_Union[Workload, _Mapping]] = ...) -> None: ...

class ListWorkloadsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Workload(_message.Message):
    __slots__ = ("id", "netns", "pod_namespace", "pod_name", "pod_uid", "host_interface", "ips", "mac")
    ID_FIELD_NUMBER: _ClassVar[int]
    NETNS_FIELD_NUMBER: _ClassVar[int]
    POD_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    POD_NAME_FIELD_NUMBER: _ClassVar[int]
    POD_UID_FIELD_NUMBER: _ClassVar[int]
    HOST_INTERFACE_FIELD_NUMBER: _ClassVar[int]
    IPS_FIELD_NUMBER: _ClassVar[int]
    MAC_FIELD_NUMBER: _ClassVar[int]
    id: WorkloadId
    netns: str
    pod_namespace: str
    pod_name: str
    pod_uid: str
    host_interface: str
    ips: _containers.RepeatedScalarFieldContainer[str]
    mac: str
    def __init__(self, id: _Optional[_Union[WorkloadId, _Mapping]] = ..., netns: _Optional[str] = ..., pod_namespace: _Optional[str] = ..., pod_name: _Optional[str] = ..., pod_uid: _Optional[str] = ..., host_interface: _Optional[str] = ..., ips: _Optional[_Iterable[str]] = ..., mac: _Optional[str] = ...) -> None: ...

class ListWorkloadsReply(_message.Message):
    __slots__ = ("workloads",)
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    workloads: _containers.RepeatedCompositeFieldContainer[Workload]
    def __init__(self, workloads: _Optional[_Iterable[_Union[Workload, _Mapping]]] = ...) -> None: ...

class GarbageCollectRequest(_message.Message):
    __slots__ = ("valid",)
    VALID_FIELD_NUMBER: _ClassVar[int]
    valid: _containers.RepeatedCompositeFieldContainer[WorkloadId]
    def __init__(self, valid: _Optional[_Iterable[_Union[WorkloadId, _Mapping]]] = ...) -> None: ...

class GarbageCollectReply(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: _containers.RepeatedCompositeFieldContainer[WorkloadId]
    def __init__(self, removed: _Optional[_Iterable[_Union[WorkloadId, _Mapping]]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatusReply(_message.Message):
    __slots__ = ("node", "datastore_synced", "routes_synced", "routes_programmed", "workloads", "problems")
    NODE_FIELD_NUMBER: _ClassVar[int]
    DATASTORE_SYNCED_FIELD_NUMBER: _ClassVar[int]
    ROUTES_SYNCED_FIELD_NUMBER: _ClassVar[int]
    ROUTES_PROGRAMMED_FIELD_NUMBER: _ClassVar[int]
    WORKLOADS_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    node: str
    datastore_synced: bool
    routes_synced: bool
    routes_programmed: int
    workloads: int
    problems: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, node: _Optional[str] = ..., datastore_synced: _Optional[bool] = ..., routes_synced: _Optional[bool] = ..., routes_programmed: _Optional[int] = ..., workloads: _Optional[int] = ..., problems: _Optional[_Iterable[str]] = ...) -> None: ...

class NextHop(_message.Message):
    __slots__ = ("address", "node")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    address: str
    node: str
    def __init__(self, address: _Optional[str] = ..., node: _Optional[str] = ...) -> None: ...

class RouteUpdate(_message.Message):
    __slots__ = ("type", "prefix", "next_hops", "encapsulation", "peer", "prefixes")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    NEXT_HOPS_FIELD_NUMBER: _ClassVar[int]
    ENCAPSULATION_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    PREFIXES_FIELD_NUMBER: _ClassVar[int]
    type: RouteUpdateType
    prefix: str
    next_hops: _containers.RepeatedCompositeFieldContainer[NextHop]
    encapsulation: Encapsulation
    peer: str
    prefixes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type: _Optional[_Union[RouteUpdateType, str]] = ..., prefix: _Optional[str] = ..., next_hops: _Optional[_Iterable[_Union[NextHop, _Mapping]]] = ..., encapsulation: _Optional[_Union[Encapsulation, str]] = ..., peer: _Optional[str] = ..., prefixes: _Optional[_Iterable[str]] = ...) -> None: ...

class RouteFeedAck(_message.Message):
    __slots__ = ("received", "in_sync", "error")
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    IN_SYNC_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    received: int
    in_sync: bool
    error: str
    def __init__(self, received: _Optional[int] = ..., in_sync: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...
