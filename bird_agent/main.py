"""`gingham-bgp --node NAME --datastore URL --run-dir DIR`: the speaker process.

Reads this node's Node resource for its BGP address (ExaBGP listens there),
then runs `Speaker` until SIGTERM/SIGINT, which stop ExaBGP and exit 0.
User errors (unknown node, bad datastore URL, datastore down) print one line
naming the object and what to do, and exit 2; an unexpected failure of a
speaker task exits 1 with its traceback in the log, for the supervisor to
restart us.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from bird_agent.exabgp import ExaBGPAdapter, ExaBGPOptions
from bird_agent.model_view import config_view, node_view
from bird_agent.speaker import LoggingSink, Speaker
from gingham.datastore import DEFAULT_URL, NotFound, Unavailable, open_datastore
from gingham.model.bgp import BGPConfiguration, Node

log = logging.getLogger("gingham-bgp")


class UserError(Exception):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="gingham-bgp", description="Gingham's BGP speaker for one node (runs ExaBGP)."
    )
    parser.add_argument("--node", required=True, help="this node's Node resource name")
    parser.add_argument("--datastore", default=DEFAULT_URL, help=f"default {DEFAULT_URL}")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="sockets and ExaBGP config (default /run/gingham/NODE)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    try:
        store = open_datastore(args.datastore)
    except ValueError as exc:
        raise UserError(f"--datastore: {exc}") from None
    try:
        try:
            node = await store.get("Node", args.node)
            configs = (await store.list("BGPConfiguration")).items
        except NotFound:
            raise UserError(
                f'Node "{args.node}" does not exist in {args.datastore}: create it first'
                " (gingham apply -f node.yaml)"
            ) from None
        except Unavailable as exc:
            raise UserError(f"datastore {args.datastore} is unavailable: {exc}") from None
        assert isinstance(node, Node)
        view = node_view(node)
        if view.ipv4_address is None:
            raise UserError(f'Node "{args.node}": spec.bgp.ipv4Address is not set: nothing to run')
        config = config_view([c for c in configs if isinstance(c, BGPConfiguration)], args.node)
        run_dir = args.run_dir or Path("/run/gingham") / args.node
        adapter = ExaBGPAdapter(
            ExaBGPOptions(
                run_dir=run_dir,
                listen_addresses=(view.ipv4_address,),
                listen_port=config.listen_port,
            )
        )
        speaker = Speaker(args.node, store, adapter, LoggingSink())
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await speaker.start()
        log.info("speaker for %s running, ExaBGP listening on %s", args.node, view.ipv4_address)
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopped, *speaker.tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in done if t is not stopped]
        await speaker.stop()
        for task in failed:
            if not task.cancelled() and task.exception() is not None:
                log.error("speaker task %s failed", task.get_name(), exc_info=task.exception())
                return 1
        return 0
    finally:
        await store.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        return asyncio.run(run(args))
    except UserError as exc:
        print(f"gingham-bgp: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
