"""`python -m route_reflector` is `gingham-rr`."""

from __future__ import annotations

import sys

from route_reflector.main import main

sys.exit(main())
