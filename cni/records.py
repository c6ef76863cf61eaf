"""`Record`: the plugin's value-object base, because `dataclasses` is too slow to import.

Every CNI call pays for its imports. `dataclasses` pulls in `inspect` (~18 ms on
the 2-core dev machine) and generates each class with `exec` (~1 ms apiece);
`typing` costs another ~7 ms. A subclass lists its fields in `__slots__`,
annotates them for mypy and writes a keyword `__init__`; `Record` supplies
equality, hashing and repr over the slots. Treat instances as immutable.
"""

from __future__ import annotations


class Record:
    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Record)
            and type(self) is type(other)
            and self._values() == other._values()
        )

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"
