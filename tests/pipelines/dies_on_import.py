"""A descriptor whose module ends any worker process that imports it, before it can start."""

from __future__ import annotations

import os

from tests.pipelines.crashing import Crashing

#: the one process allowed to import this module; any other (a worker) dies on import
ALLOWED_PID = "LOOKALIKE_TEST_ALLOWED_PID"

if os.environ.get(ALLOWED_PID, str(os.getpid())) != str(os.getpid()):
    os._exit(3)


class DiesOnImport(Crashing):
    name = "dies-on-import"
