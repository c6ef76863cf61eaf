"""`gingham apply`, `get` and `delete`: resources in and out of the datastore.

`plan_apply` is the pure decision (create, configure or leave unchanged, with
which revision); the handlers read files, talk to the datastore and print.

Invariants:
- apply validates everything first: every document of every file
  (`load_documents`), names unique across files, and the whole set against
  what is stored (`check_set`). Any problem → every problem is printed and
  nothing is written.
- apply writes with compare-and-swap: on the revision the document carries
  (``metadata.resourceVersion``, e.g. from ``get -o yaml``) if any, else on
  the revision read for validation — so an object changed by someone else in
  between is reported as a conflict, never silently overwritten with a set
  that was checked against stale data.
- apply prints one kubectl-style line per object: ``ippool "p" created`` /
  ``configured`` / ``unchanged`` (spec, labels and annotations equal).
- get/delete of several names go on past a missing one; any failure → exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from gingham.cli.common import (
    EXIT_OK,
    EXIT_USER_ERROR,
    CLIError,
    open_store,
    print_error,
    read_input,
)
from gingham.cli.output import FORMATS, TableContext

if TYPE_CHECKING:
    from gingham.datastore import Datastore
    from gingham.model.base import FieldError, Resource

Verb = Literal["created", "configured", "unchanged"]


@dataclass(frozen=True)
class ApplyStep:
    verb: Verb
    # What to write (None when unchanged); its resource_version is the CAS guard.
    write: Resource | None
    obj: Resource


def same_content(a: Resource, b: Resource) -> bool:
    """Equal as far as a user wrote them: spec, labels, annotations."""
    return (
        a.spec.model_dump(mode="json", by_alias=True)
        == b.spec.model_dump(mode="json", by_alias=True)
        and a.metadata.labels == b.metadata.labels
        and a.metadata.annotations == b.metadata.annotations
    )


def plan_apply(
    incoming: Sequence[Resource], stored: dict[tuple[str, str], Resource]
) -> list[ApplyStep]:
    """What apply does with each object, given what is stored (by kind, name)."""
    steps = []
    for obj in incoming:
        old = stored.get((obj.kind, obj.name))
        if old is None:
            # A revision on a new object means nothing to the store: drop it.
            steps.append(ApplyStep("created", obj.with_revision(None), obj))
            continue
        if same_content(obj, old) and obj.resource_version in (None, old.resource_version):
            steps.append(ApplyStep("unchanged", None, obj))
            continue
        # Keep what the store (not the user) set on the metadata.
        metadata = obj.metadata.model_copy(
            update={
                "uid": obj.metadata.uid or old.metadata.uid,
                "creation_timestamp": obj.metadata.creation_timestamp
                or old.metadata.creation_timestamp,
                "resource_version": obj.resource_version or old.resource_version,
            }
        )
        steps.append(ApplyStep("configured", obj.model_copy(update={"metadata": metadata}), obj))
    return steps


def cross_file_duplicates(
    files: Sequence[tuple[str, Sequence[Resource]]],
) -> list[FieldError]:
    """An object named in two ``-f`` files (within one file load_documents checks)."""
    from gingham.model.base import FieldError

    first: dict[tuple[str, str], str] = {}
    errors = []
    for source, resources in files:
        for obj in resources:
            key = (obj.kind, obj.name)
            if key in first and first[key] != source:
                reason = f"also defined in {first[key]}"
                errors.append(FieldError(obj.kind, obj.name, "metadata.name", reason, source))
            first.setdefault(key, source)
    return errors


def load_files(paths: Sequence[str]) -> list[tuple[str, list[Resource]]]:
    """(source, resources) per ``-f`` argument; all problems of all files raised together."""
    from gingham.model.base import InvalidResource
    from gingham.model.documents import load_documents

    loaded, errors = [], []
    for path in paths:
        text, source = read_input(path)
        try:
            loaded.append((source, load_documents(text, source)))
        except InvalidResource as exc:
            errors.extend(exc.errors)
    errors.extend(cross_file_duplicates(loaded))
    if errors:
        raise InvalidResource(errors)
    return loaded


def _word(kind: str) -> str:
    return kind.lower()


# --- apply --------------------------------------------------------------------


async def run_apply(args: argparse.Namespace) -> int:
    from gingham.datastore.base import AlreadyExists, Conflict, NotFound
    from gingham.model.base import InvalidResource
    from gingham.model.documents import check_set

    files = load_files(args.filename)
    incoming = [obj for _, resources in files for obj in resources]
    source_of = {(obj.kind, obj.name): source for source, objs in files for obj in objs}
    if not incoming:
        raise CLIError("no objects passed to apply")

    async with open_store(args) as store:
        existing: list[Resource] = []
        for kind in sorted({obj.kind for obj in incoming}):
            existing.extend((await store.list(kind)).items)
        errors = check_set(incoming, existing)
        if errors:
            # check_set does not know the files; say which one each object came from.
            raise InvalidResource(
                replace(e, where=e.where or source_of.get((e.kind, e.name), "")) for e in errors
            )

        stored = {(obj.kind, obj.name): obj for obj in existing}
        failed = False
        for step in plan_apply(incoming, stored):
            label = f'{_word(step.obj.kind)} "{step.obj.name}"'
            if step.write is None:
                print(f"{label} {step.verb}")
                continue
            try:
                if step.verb == "created":
                    await store.create(step.write)
                else:
                    await store.update(step.write)
            except Conflict as exc:
                failed = True
                print_error(f"{exc}: read it again (gingham get -o yaml) and re-apply")
                continue
            except NotFound:
                failed = True
                print_error(f"{label} was deleted while applying: apply again to create it")
                continue
            except AlreadyExists:
                failed = True
                print_error(f"{label} was created by someone else while applying: apply again")
                continue
            print(f"{label} {step.verb}")
    return EXIT_USER_ERROR if failed else EXIT_OK


# --- get ----------------------------------------------------------------------


async def _table_context(store: Datastore, kind: str) -> TableContext:
    from gingham.datastore.base import NotFound

    if kind != "Node":
        return TableContext()
    try:
        config = await store.get("BGPConfiguration", "default")
    except NotFound:
        from gingham.model.bgp import DEFAULT_AS_NUMBER

        return TableContext(default_as_number=DEFAULT_AS_NUMBER)
    return TableContext(default_as_number=getattr(config.spec, "as_number", None))


async def run_get(args: argparse.Namespace) -> int:
    from gingham.cli.output import render
    from gingham.datastore.base import NotFound
    from gingham.model.base import resolve_kind

    kind = resolve_kind(args.kind).kind
    failed = False
    async with open_store(args) as store:
        if args.names:
            found = []
            for name in args.names:
                try:
                    found.append(await store.get(kind, name))
                except NotFound as exc:
                    failed = True
                    print_error(str(exc))
        else:
            found = (await store.list(kind)).items
        context = await _table_context(store, kind) if args.output in ("table", "wide") else None

    if found:
        single = len(args.names) == 1
        sys.stdout.write(render(kind, found, args.output, single=single, context=context))
    elif not args.names:
        if args.output == "json":
            sys.stdout.write(render(kind, [], "json"))
        else:
            print(f"No {kind} resources found.", file=sys.stderr)
    return EXIT_USER_ERROR if failed else EXIT_OK


# --- delete -------------------------------------------------------------------


async def run_delete(args: argparse.Namespace) -> int:
    from gingham.datastore.base import NotFound
    from gingham.model.base import resolve_kind

    targets: list[tuple[str, str]]
    if args.filename:
        if args.kind is not None:
            raise CLIError("delete takes either KIND NAME... or -f FILE, not both")
        targets = [(o.kind, o.name) for _, objs in load_files(args.filename) for o in objs]
    else:
        if args.kind is None or not args.names:
            raise CLIError("delete needs KIND NAME [NAME...] or -f FILE")
        kind = resolve_kind(args.kind).kind
        targets = [(kind, name) for name in args.names]

    failed = False
    async with open_store(args) as store:
        for kind, name in targets:
            try:
                await store.delete(kind, name)
            except NotFound as exc:
                failed = True
                print_error(str(exc))
                continue
            print(f'{_word(kind)} "{name}" deleted')
    return EXIT_USER_ERROR if failed else EXIT_OK


# --- parsers ------------------------------------------------------------------


def register(subparsers: Any) -> None:
    apply = subparsers.add_parser(
        "apply",
        help="create or update resources from YAML/JSON files",
        description="Create or update every resource in the files. All documents are"
        " validated first; nothing is written if any is invalid.",
    )
    apply.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="YAML (multi-document) or JSON file, '-' for stdin; may repeat",
    )
    apply.set_defaults(func=run_apply)

    get = subparsers.add_parser(
        "get",
        help="show resources",
        description="Show resources of one KIND (ippool, bgppeer, node, bgpconfig, ...;"
        " singular or plural, any case).",
    )
    get.add_argument("kind", metavar="KIND")
    get.add_argument("names", metavar="NAME", nargs="*")
    get.add_argument("-o", "--output", choices=FORMATS, default="table", help="default: table")
    get.set_defaults(func=run_get)

    delete = subparsers.add_parser(
        "delete",
        help="delete resources by kind and name, or those named in files",
        description="gingham delete KIND NAME [NAME...]  |  gingham delete -f FILE",
    )
    delete.add_argument("kind", metavar="KIND", nargs="?")
    delete.add_argument("names", metavar="NAME", nargs="*")
    delete.add_argument(
        "-f", "--filename", action="append", metavar="FILE", help="delete what FILE defines"
    )
    delete.set_defaults(func=run_delete)
