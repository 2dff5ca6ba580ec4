#!/usr/bin/env python3
"""Collective-communication sweep for the communication model (issues 7 and 10).

All-reduce, all-gather, reduce-scatter and all-to-all of bf16 buffers from 1 KiB to 1 GiB per rank
through torch.distributed (NCCL on GPUs; gloo on CPUs, to test this script without a GPU). Each point
is checked (the reduced / gathered / exchanged values are what the ranks sent), warmed up, then timed
over repetitions; the record's time is the median over repetitions of the slowest rank.

    torchrun --nproc_per_node 8 microbench/collectives.py --out measurements/h100-sxm-x8-nccl.jsonl
    python3 microbench/collectives.py --spawn 2 --device cpu --max-bytes 1M --out gloo.jsonl   # a test

Record fields (op `collective`, documented in microbench/NOTES.md): `collective`, `ranks`, `bytes`
(the per-rank buffer for all-reduce and all-to-all, the gathered output for all-gather, the input for
reduce-scatter: the S of costsim/engine/comm.py), `dtype` (bf16), `time_s`, `p10_s`, `p90_s`, `reps`,
`algbw_gb_s` (bytes / time), `busbw_gb_s` (NCCL's bus bandwidth convention), `source` (nccl | gloo),
`nodes` (1), plus the usual `hardware` / `gpu_name`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import sys
import time

import torch
import torch.distributed as dist

COLLECTIVES = ("all_reduce", "all_gather", "reduce_scatter", "all_to_all")


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)", text.strip().upper())
    if not m:
        raise SystemExit(f"--max-bytes: {text!r} is not like 1G, 256M or 4096")
    return int(m.group(1)) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[m.group(2)]


def bus_factor(name: str, n: int) -> float:
    """NCCL's busbw = algbw x this factor (what each link carries relative to the buffer)."""
    return 2.0 * (n - 1) / n if name == "all_reduce" else (n - 1) / n


def run_one(name: str, nbytes: int, device: torch.device, dtype: torch.dtype) -> tuple[callable, callable]:
    """(op, check) for one point; buffers sized so that `nbytes` is the S of the comm model."""
    n, rank = dist.get_world_size(), dist.get_rank()
    elems = max(nbytes // torch.finfo(dtype).bits * 8, n)
    elems -= elems % n
    if name == "all_reduce":
        buf = torch.full((elems,), float(rank + 1), device=device, dtype=dtype)
        expected = n * (n + 1) / 2

        def op():
            dist.all_reduce(buf)

        def check():
            buf.fill_(float(rank + 1))
            op()
            return bool(torch.all(buf == expected))
    elif name == "all_gather":
        part = torch.full((elems // n,), float(rank), device=device, dtype=dtype)
        out = torch.empty((elems,), device=device, dtype=dtype)

        def op():
            dist.all_gather_into_tensor(out, part)

        def check():
            op()
            want = torch.arange(n, device=device, dtype=dtype).repeat_interleave(elems // n)
            return bool(torch.equal(out, want))
    elif name == "reduce_scatter":
        full = torch.full((elems,), float(rank + 1), device=device, dtype=dtype)
        out = torch.empty((elems // n,), device=device, dtype=dtype)

        def op():
            dist.reduce_scatter_tensor(out, full)

        def check():
            op()
            return bool(torch.all(out == n * (n + 1) / 2))
    else:
        send = torch.arange(n, device=device, dtype=dtype).repeat_interleave(elems // n) + 100 * rank
        recv = torch.empty_like(send)

        def op():
            dist.all_to_all_single(recv, send)

        def check():
            op()
            want = torch.arange(n, device=device, dtype=dtype).repeat_interleave(elems // n) * 100 + rank
            return bool(torch.equal(recv, want.to(dtype)))
    return op, check


def timed(op, device: torch.device, reps: int, iters: int) -> list[float]:
    """`reps` samples, each the mean of `iters` back-to-back collectives between two events after a
    barrier (as nccl-tests times them): one collective per sample would also time how far apart the
    ranks' hosts reached it, tens of microseconds that dwarf a small message."""
    times = []
    for _ in range(reps):
        dist.barrier()
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                op()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) * 1e-3 / iters)
        else:
            t = time.perf_counter()
            for _ in range(iters):
                op()
            times.append((time.perf_counter() - t) / iters)
    return times


def worker(rank: int, world: int, a: argparse.Namespace) -> None:
    if a.spawn:
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(a.port))
        os.environ["RANK"], os.environ["WORLD_SIZE"], os.environ["LOCAL_RANK"] = str(rank), str(world), str(rank)
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = a.device == "cuda"
    if cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo")
    device = torch.device(f"cuda:{local}" if cuda else "cpu")
    n, rank = dist.get_world_size(), dist.get_rank()
    dtype = torch.bfloat16 if cuda else torch.float32  # gloo has no bf16 reductions
    gpu = torch.cuda.get_device_name(local) if cuda else "cpu"
    hardware = a.hardware or ("h200" if "H200" in gpu else "h100-sxm" if "H100" in gpu else "cpu")
    sizes = []
    s = 1 << 10
    while s <= parse_size(a.max_bytes):
        sizes.append(s)
        s *= 4
    out = open(a.out, "w") if rank == 0 else None  # noqa: SIM115
    if out:
        out.write(json.dumps({"record": "header", "gpu_name": gpu, "hardware": hardware, "ranks": n,
                              "torch": torch.__version__, "nccl": ".".join(map(str, torch.cuda.nccl.version()))
                              if cuda else None, "date": datetime.datetime.now(datetime.UTC).isoformat(),
                              "command": " ".join(sys.argv)}) + "\n")
    failures = 0
    for name in COLLECTIVES:
        for nbytes in sizes:
            op, check = run_one(name, nbytes, device, dtype)
            ok = torch.tensor([1.0 if check() else 0.0], device=device)
            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
            if ok.item() < 1:
                failures += 1
                if rank == 0:
                    print(f"CHECK {name} {nbytes} B: FAIL (not timed)", file=sys.stderr)
                continue
            for _ in range(3):
                op()
            reps = 5 if nbytes >= 1 << 28 else 10
            iters = 2 if nbytes >= 1 << 28 else 10 if nbytes >= 1 << 22 else 40
            local_times = torch.tensor(timed(op, device, reps, iters), device=device, dtype=torch.float64)
            dist.all_reduce(local_times, op=dist.ReduceOp.MAX)  # a collective ends when its slowest rank does
            ts = sorted(local_times.tolist())
            if out:
                med = statistics.median(ts)
                elem_bits = torch.finfo(dtype).bits
                rec = {"op": "collective", "collective": name, "ranks": n, "nodes": 1, "bytes": nbytes,
                       "dtype": "bf16" if elem_bits == 16 else "fp32", "hardware": hardware, "gpu_name": gpu,
                       "source": "nccl" if cuda else "gloo", "time_s": med, "p10_s": ts[len(ts) // 10],
                       "p90_s": ts[min(len(ts) - 1, len(ts) * 9 // 10)], "reps": reps,
                       "iters_per_rep": iters, "algbw_gb_s": nbytes / med / 1e9,
                       "busbw_gb_s": nbytes / med / 1e9 * bus_factor(name, n)}
                out.write(json.dumps(rec) + "\n")
                out.flush()
                print(f"{name:15s} {n} ranks {nbytes:>12,} B {med * 1e6:10.1f} us  busbw {rec['busbw_gb_s']:7.1f} GB/s",
                      file=sys.stderr)
    if out:
        out.close()
    dist.destroy_process_group()
    if failures and rank == 0:
        raise SystemExit(f"{failures} checks failed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--max-bytes", default="1G")
    ap.add_argument("--spawn", type=int, default=0, help="start this many local ranks (instead of torchrun)")
    ap.add_argument("--port", type=int, default=29513)
    ap.add_argument("--hardware", default=None, help="profile name for the records (default: from the GPU name)")
    a = ap.parse_args()
    if a.spawn:
        import torch.multiprocessing as tmp

        tmp.spawn(worker, args=(a.spawn, a), nprocs=a.spawn, join=True)
    else:
        worker(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), a)


if __name__ == "__main__":
    main()
