"""A kernel already in the cache is used without asking apt; the newest ABI wins."""

from __future__ import annotations

from pathlib import Path

from gingham.lab.vm.kernel import cached_kernel, prepare_kernel


def fake_tree(cache: Path, abi: int, version: str, complete: bool = True) -> None:
    tree = cache / f"linux-image-6.1.0-{abi}-amd64_{version}"
    (tree / "modules").mkdir(parents=True)
    if complete:
        (tree / "vmlinuz").write_bytes(b"kernel")


def test_newest_complete_cached_kernel_is_used(tmp_path: Path) -> None:
    assert cached_kernel(tmp_path) is None
    fake_tree(tmp_path, 9, "6.1.50-1")
    fake_tree(tmp_path, 56, "6.1.192-2")
    fake_tree(tmp_path, 60, "6.1.200-1", complete=False)  # half-unpacked: never used
    kernel = prepare_kernel(tmp_path)
    assert (kernel.package, kernel.version) == ("linux-image-6.1.0-56-amd64", "6.1.192-2")
    assert kernel.modules["ipip"] == kernel.vmlinuz.parent / "modules" / "ipip.ko"
