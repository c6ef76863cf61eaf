"""`python -m bird_agent`: the same as `gingham-bgp`."""

from __future__ import annotations

import sys

from bird_agent.main import main

sys.exit(main())
