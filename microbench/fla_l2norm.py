"""Is fla's recurrent decode slower with q and k l2-normalised inside the kernel, as model_step.py runs it?

Times fused_recurrent_kda and fused_recurrent_gated_delta_rule (32 heads of 128 x 128, one token, fp32
state) at batch 16 / 64 / 128, with use_qk_l2norm_in_kernel off (q, k normalised beforehand, as
torch_kernels.py measures them) and on; each call captured in a CUDA graph per input set, so no host
launch sits between the events; median of 60 replays.

    python3 microbench/fla_l2norm.py        # needs fla-core; output in measurements/h200-fla-l2norm.log
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from fla.ops.gated_delta_rule import fused_recurrent_gated_delta_rule
from fla.ops.kda import fused_recurrent_kda

H, K, V = 32, 128, 128
SETS = 4  # input sets replayed in turn, so consecutive replays do not find the state in L2


def inputs(name: str, B: int) -> dict:
    gshape = (SETS, B, 1, H, K) if name == "kda" else (SETS, B, 1, H)
    q = torch.randn(SETS, B, 1, H, K, device="cuda", dtype=torch.bfloat16)
    k = torch.randn(SETS, B, 1, H, K, device="cuda", dtype=torch.bfloat16)
    return {"q": q, "k": k,  # normalised beforehand, outside the timed graph, for the l2-off runs
            "qn": F.normalize(q.float(), dim=-1).bfloat16(), "kn": F.normalize(k.float(), dim=-1).bfloat16(),
            "v": torch.randn(SETS, B, 1, H, V, device="cuda", dtype=torch.bfloat16),
            "g": F.logsigmoid(torch.randn(*gshape, device="cuda") + 3.0),
            "beta": torch.sigmoid(torch.randn(SETS, B, 1, H, device="cuda")).to(torch.bfloat16),
            "h": torch.randn(SETS, B, H, K, V, device="cuda") * 0.1}


def call(name: str, x: dict, i: int, l2: bool):
    q, k = (x["q"][i], x["k"][i]) if l2 else (x["qn"][i], x["kn"][i])
    if name == "kda":
        return fused_recurrent_kda(q, k, x["v"][i], x["g"][i], x["beta"][i], scale=K ** -0.5,
                                   initial_state=x["h"][i], output_final_state=True, use_qk_l2norm_in_kernel=l2)
    return fused_recurrent_gated_delta_rule(q, k, x["v"][i], g=x["g"][i], beta=x["beta"][i], scale=K ** -0.5,
                                            initial_state=x["h"][i], output_final_state=True,
                                            use_qk_l2norm_in_kernel=l2)


def median_us(name: str, x: dict, l2: bool) -> float:
    for i in range(SETS):  # compile and autotune outside capture
        call(name, x, i, l2)
    torch.cuda.synchronize()
    graphs = []
    for i in range(SETS):
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            call(name, x, i, l2)
        graphs.append(graph)
    torch.cuda.synchronize()
    times = []
    for r in range(60):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        graphs[r % SETS].replay()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) * 1e3)
    return sorted(times)[30]


def main() -> None:
    print(torch.cuda.get_device_name(0))
    for name in ("kda", "gdn"):
        for B in (16, 64, 128):
            x = inputs(name, B)
            state_bytes = 2 * B * H * K * V * 4  # read and written, fp32
            for l2 in (False, True):
                us = median_us(name, x, l2)
                print(f"{name} B={B:3d} l2norm_in_kernel={l2!s:5s} median {us:7.1f} us  "
                      f"state {state_bytes / us / 1e3:6.0f} GB/s")


if __name__ == "__main__":
    main()
