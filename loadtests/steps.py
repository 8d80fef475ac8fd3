"""Step ramp over user counts for the read scenario (a LoadTestShape).

AUTHBENCH_STEPS="10,50,100" and AUTHBENCH_STEP_SECONDS=20: each user count is held
for that long, then the test stops.

By hand:  AUTHBENCH_STEPS=5,20,50 locust -f loadtests/steps.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

import os

from locust import LoadTestShape

from loadtests.read import ReadUser

__all__ = ["ReadUser", "StepShape"]


class StepShape(LoadTestShape):
    """Hold each user count of AUTHBENCH_STEPS for AUTHBENCH_STEP_SECONDS."""

    steps = tuple(int(s) for s in os.environ.get("AUTHBENCH_STEPS", "10,50,100").split(","))
    seconds = float(os.environ.get("AUTHBENCH_STEP_SECONDS", "20"))

    def tick(self) -> tuple[int, float] | None:
        index = int(self.get_run_time() // self.seconds)
        if index >= len(self.steps):
            return None
        users = self.steps[index]
        return users, float(users)  # reach each step within a second
