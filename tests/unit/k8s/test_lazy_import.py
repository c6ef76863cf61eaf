"""The kubernetes client (~200 ms to import) is paid for only by its users."""

from __future__ import annotations

import subprocess
import sys


def test_opening_a_kubernetes_store_does_not_import_the_client() -> None:
    code = (
        "import sys\n"
        "from gingham.datastore import open_datastore\n"
        "store = open_datastore('kubernetes')\n"
        "assert type(store).__name__ == 'KubernetesDatastore'\n"
        "assert 'kubernetes' not in sys.modules, 'imported the client eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
