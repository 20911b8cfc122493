from __future__ import annotations

import sys

from payments.pipeline.cli import main

sys.exit(main())
