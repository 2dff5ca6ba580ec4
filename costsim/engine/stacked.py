"""Several hardware profiles as one, with every number a column array (devices x 1).

The timing and serving code only reads attributes of a profile, so passing a StackedHardware
evaluates all devices in one numpy pass: the FLOP and byte terms of a model do not depend on the
device, and the per-(model, device) Python work of a sweep disappears.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from costsim.spec.hardware import HardwareProfile


class StackedHardware:
    def __init__(self, profiles: list[HardwareProfile]) -> None:
        self.profiles = profiles
        self.names = [p.name for p in profiles]

        def column(values) -> np.ndarray:
            return np.asarray(values, dtype=np.float64).reshape(-1, 1)

        self.vector_tflops = column([p.vector_tflops for p in profiles])
        self.bandwidth_bytes_s = column([p.bandwidth_bytes_s for p in profiles])
        self.memory_bytes = column([p.memory_bytes for p in profiles])
        self.usd_per_hour = column([p.usd_per_hour for p in profiles])
        numeric = [f for f, v in profiles[0].efficiency if isinstance(v, int | float)]
        self.efficiency = SimpleNamespace(**{f: column([getattr(p.efficiency, f) for p in profiles]) for f in numeric})

    def peak_flops(self, dtype: str) -> np.ndarray:
        return np.asarray([p.peak_flops(dtype) for p in self.profiles], dtype=np.float64).reshape(-1, 1)
