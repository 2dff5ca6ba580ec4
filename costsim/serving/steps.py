"""The steps a serving engine runs, timed for one replica of a layout (arrays broadcast throughout).

    decode(c, b)          b sequences at context c each make one token
    mixed(c, b, n, c0)    the same b decodes plus a prefill chunk of n new tokens after c0 cached ones, in
                          one forward: GEMMs and elementwise kernels over b + n rows, each attention (or
                          recurrent) core on its own part, as engines' varlen kernels run them
    prefill(n, c0)        a chunk alone (engines without chunked prefill)
    verify(c, b, k)       speculative decoding: k drafted tokens per sequence checked in one forward of
                          b (k + 1) rows, the cache read once, plus k drafter passes of one layer and its head

Each step adds the engine's CPU time: step_s + per_sequence_s x b, overlapped with the GPU's (max of
the two) where the engine schedules step n + 1 while step n runs, added to it otherwise.
"""

from __future__ import annotations

import numpy as np

from costsim.engine.timing import StepTime, decode_step_time, prefill_time
from costsim.families.cost import ArrayLike
from costsim.serving.layouts import Replica
from costsim.spec.deployment import Deployment
from costsim.spec.engine import EngineProfile, Speculation
from costsim.spec.hardware import HardwareProfile
from costsim.spec.layout import Layout
from costsim.spec.model import ModelSpec

CORE_DECODE = ("attention_decode", "state_update")
CORE_PREFILL = ("attention_prefill", "scan")
LINEAR = ("gemm", "elementwise", "overhead", "host_bound")


def _sum(step: StepTime, classes: tuple[str, ...]) -> np.ndarray:
    return sum((step.by_class.get(k, 0.0) for k in classes), np.zeros_like(step.total_s))


class StepModel:
    """One replica of `layout` served by `engine`: step times, the KV pool and the sequences it holds. The
    replica is serving/layouts.py's sharded model under the engine's rules (kernel list, pool, max_num_seqs,
    CPU time); this class adds the steps a decode-only model has no use for (mixed, verify)."""

    def __init__(self, spec: ModelSpec, hw: HardwareProfile, dep: Deployment, layout: Layout,
                 engine: EngineProfile):
        self.spec, self.hw, self.layout, self.engine = spec, hw, layout, engine
        self.sh = Replica(spec, hw, dep, layout, overlap=True, engine=engine)
        self.plan, self.p = self.sh.plan, self.sh.p
        self.devices = layout.devices_per_replica
        self.usd_per_s = self.sh.usd_s

    def max_sequences(self, context: ArrayLike) -> np.ndarray:
        """Sequences of `context` tokens whose caches fit the pool on every device, capped by the
        scheduler's max_num_seqs."""
        return self.sh.max_batch_at(np.asarray(context, dtype=np.float64))

    def decode(self, context: ArrayLike, b: ArrayLike) -> np.ndarray:
        return self.sh.tpot(np.asarray(context, dtype=np.float64), np.asarray(b, dtype=np.float64))

    def _stage_parts(self, rows: np.ndarray, context: np.ndarray, b: np.ndarray, chunk: np.ndarray,
                     cached: np.ndarray) -> np.ndarray:
        """The slowest stage's time for a forward of `rows` token rows whose decode part is b sequences at
        `context` and whose prefill part is a chunk of `chunk` tokens after `cached` ones (lm head apart)."""
        lay, out = self.layout, []
        local = context / lay.cp
        for st in self.sh.stages:
            linear = decode_step_time(st, self.hw, 0.0, rows / lay.pp, self.p, True, self.plan)
            dec = decode_step_time(st, self.hw, local, np.maximum(b, 1e-9) / lay.pp, self.p, True, self.plan)
            core = np.where(b > 0, _sum(dec, CORE_DECODE), 0.0)
            pre = prefill_time(st, self.hw, np.maximum(chunk, 1.0) / lay.cp, cached, 1.0, self.p,
                               self.engine.scheduler.max_batched_tokens, self.plan)
            core = core + np.where(chunk > 0, _sum(pre, CORE_PREFILL), 0.0)
            out.append(_sum(linear, LINEAR) + core)
        return np.max(np.stack(np.broadcast_arrays(*out)), axis=0)

    def _head(self, rows: np.ndarray) -> np.ndarray:
        st = self.sh.stages[-1]
        return decode_step_time(st, self.hw, 0.0, np.maximum(rows, 1.0), self.p, True, self.plan).by_class["lm_head"]

    def mixed(self, context: ArrayLike, b: ArrayLike, chunk: ArrayLike, cached: ArrayLike = 0.0) -> np.ndarray:
        t, b = np.asarray(context, dtype=np.float64), np.asarray(b, dtype=np.float64)
        n, c0 = np.asarray(chunk, dtype=np.float64), np.asarray(cached, dtype=np.float64)
        rows = b + n
        gpu = self.layout.pp * self._stage_parts(rows, t, b, n, c0) + self._head(b + (n > 0)) \
            + self.sh.comm_decode(np.maximum(rows, 1.0))
        return self.sh.cpu_bound(gpu, b + (n > 0))

    def prefill(self, chunk: ArrayLike, cached: ArrayLike = 0.0) -> np.ndarray:
        """A prefill chunk alone (batch of one prompt)."""
        n = np.asarray(chunk, dtype=np.float64)
        return self.sh.cpu_bound(self.sh.ttft(n, np.asarray(cached, dtype=np.float64), request_floor=False),
                                 np.ones_like(n))

    def verify(self, context: ArrayLike, b: ArrayLike, spec_method: Speculation) -> np.ndarray:
        """One speculative step: k drafter passes, then the target checks k + 1 tokens per sequence."""
        t, b = np.asarray(context, dtype=np.float64), np.asarray(b, dtype=np.float64)
        k = spec_method.draft_tokens
        rows = b * (k + 1)
        target = self.layout.pp * self._stage_parts(rows, t, b, np.zeros_like(b), np.zeros_like(b)) \
            + self._head(rows) + self.sh.comm_decode(rows)
        # drafter: draft_layers of the target's layers per drafted token, and its own LM head
        one_step = self.sh.gpu_tpot(t, b)
        head = self._head(b)
        layers = max(self.spec.num_layers, 1)
        vocab_share = (spec_method.draft_vocab or self.spec.vocab_size) / self.spec.vocab_size
        draft = k * ((one_step - head) * spec_method.draft_layers / layers + head * vocab_share)
        return self.sh.cpu_bound(target + draft, b)
