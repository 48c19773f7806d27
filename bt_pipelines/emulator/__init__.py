"""A Braintrust-compatible server for tests, demos and benchmarks, the way moto is for AWS.

    from bt_pipelines.emulator import emulator

    with emulator(seed="demo") as bt:
        os.environ.update(bt.env())  # the braintrust SDK, `bt` and bt_pipelines now talk to it
"""

from .faults import Faults
from .server import DEFAULT_API_KEY, RunningEmulator, emulator, start_emulator

__all__ = ["DEFAULT_API_KEY", "Faults", "RunningEmulator", "emulator", "start_emulator"]
