"""Settings for the whole suite, natively and inside the images.

Under QEMU emulation the interpreter runs 10-15x slower, so hypothesis' wall-clock checks
(per-example deadline, "input generation is slow") say nothing about the code under test.
They are off for every property test; the number of examples each one runs is unchanged.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile("clickvote", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("clickvote")
