"""What the PyTorch-side benchmarks (torch_kernels.py, model_step.py) record about the machine."""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import time

import torch


def write_log(msg: str, t0: float, logf, width: int = 8) -> None:
    """One timestamped line to stderr (as it happens) and to the log file, if one is open."""
    line = f"[{time.time() - t0:{width}.1f}s] {msg}"
    print(line, file=sys.stderr, flush=True)
    if logf:
        logf.write(line + "\n")
        logf.flush()


def hardware_slug(name: str) -> str:
    """costsim's profile name for the GPU the machine reports (never the kind that was asked for)."""
    n = name.upper()
    if "H200" in n:
        return "h200"
    if "H100" in n:
        return "h100-pcie" if "PCIE" in n else "h100-sxm"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _version(module: str) -> str | None:
    try:
        return getattr(__import__(module), "__version__", "?")
    except Exception as exc:
        return f"not importable ({exc.__class__.__name__})"


def gpu_header(gpu_name: str, hardware: str, argv: list[str], quick: bool, **extra) -> dict:
    """The header record: GPU, driver, clocks, library versions, date and the command line."""
    props = torch.cuda.get_device_properties(0)
    h = {"record": "header", "gpu_name": gpu_name, "hardware": hardware}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm,clocks.max.mem,power.limit,"
                              "temperature.gpu", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20)
        parts = [p.strip() for p in smi.stdout.strip().splitlines()[0].split(",")]
        h["driver"] = parts[0]
        h["nvidia_smi_clocks_sm_max_mem_max_powerlimit_temp"] = ", ".join(parts[1:])
    except Exception as exc:
        h["driver"] = f"unknown ({exc.__class__.__name__})"
    h.update(torch=torch.__version__, cuda_runtime=torch.version.cuda,
             cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
             compute_capability=f"{props.major}.{props.minor}", sm_count=props.multi_processor_count,
             memory_bytes=props.total_memory, triton=_version("triton"), fla=_version("fla"),
             date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
             command=portable_command(argv), mode="quick" if quick else "full", **extra)
    return h


def portable_command(argv: list[str]) -> str:
    """The command line as it reads from a checkout: `python3`, then the arguments with every absolute path
    (the machine's own interpreter, output folders) cut to its file name, so a record names no local path."""
    def plain(arg: str) -> str:
        key, sep, value = arg.partition("=")
        if sep and os.path.isabs(value):
            return f"{key}={os.path.basename(value)}"
        return os.path.basename(arg) if os.path.isabs(arg) else arg

    return " ".join(["python3", *(plain(a) for a in argv)])


def common_parser(doc: str, full_deadline_s: float, only: list[str]) -> argparse.ArgumentParser:
    """--quick, --out, --log, --deadline and --only, as both PyTorch-side benchmarks take them."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="-")
    ap.add_argument("--log", default=None)
    ap.add_argument("--deadline", type=float, default=None,
                    help=f"seconds (default {full_deadline_s:g}; 90 with --quick)")
    ap.add_argument("--only", default=",".join(only))
    return ap


def host_cpu() -> str:
    """The host's CPU model and logical CPU count (the header of eager-style and host-cost runs)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return f"unknown ({os.cpu_count()} logical CPUs)"


def host_seconds_per_call(fn, blocks: int, calls_per_block: int) -> list[float]:
    """The host's time to issue fn, sorted, one value per block: three warm-up calls, then blocks of
    back-to-back calls between perf_counter reads with the device synchronised before and after each
    block, so the launch queue never fills and the host never waits on the GPU."""
    for _ in range(3):
        fn()
    per_call = []
    for _ in range(blocks):
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(calls_per_block):
            fn()
        per_call.append((time.perf_counter() - t) / calls_per_block)
        torch.cuda.synchronize()
    return sorted(per_call)


def kernels_launched(fn) -> int:
    """The GPU kernels one call of fn launches, counted under the profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return sum(1 for e in prof.events() if e.device_type.name == "CUDA")
