"""Shared pytest configuration: Hypothesis profiles.

``ci`` (the default) is deterministic: ``derandomize=True`` derives every example from
the test itself, no example database is read or written, and there is no per-example
deadline (the first example of a kernel test builds the kernel table). Select another
profile with ``HYPOTHESIS_PROFILE=dev`` (random examples, database on) to explore.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                          print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
