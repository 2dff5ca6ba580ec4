"""`costsim bench run`: build and run the bundled microbenchmark, write JSON Lines records.

The CUDA program (microbench/run.sh) always runs; microbench/torch_kernels.py runs after it
where PyTorch with CUDA is importable. Both write the record format of ../shared/design.md.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from costsim.data import data_dir
from costsim.errors import CostsimError


def _check_machine() -> None:
    if shutil.which("nvcc") is None:
        raise CostsimError("bench: nvcc not found; install the CUDA toolkit (nvcc) and put it on PATH")
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise CostsimError("bench: no NVIDIA GPU found (nvidia-smi missing); run it on a machine with an NVIDIA GPU")
    probe = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0 or "GPU" not in probe.stdout:
        raise CostsimError("bench: nvidia-smi lists no GPU; run it on a machine with an NVIDIA GPU")


def _has_torch_cuda() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"],
                           capture_output=True, timeout=300)
    return probe.returncode == 0


def run_bench(out: Path, quick: bool = False, torch_kernels: bool = True) -> list[Path]:
    """Build, check and measure; return the JSON Lines files written (CUDA, then torch)."""
    _check_machine()
    source = data_dir("microbench")
    if not (source / "run.sh").is_file():
        raise CostsimError(f"bench: microbenchmark sources not found under {source}; reinstall costsim")
    out.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="costsim-bench-") as tmp:
        work = Path(tmp) / "microbench"
        shutil.copytree(source, work, ignore=shutil.ignore_patterns("build"))
        results = Path(tmp) / "results"
        cmd = ["bash", str(work / "run.sh"), "--outdir", str(results)] + (["--quick"] if quick else [])
        proc = subprocess.run(cmd)
        files = sorted(results.glob("*.jsonl"))
        if not files:
            raise CostsimError(f"bench: the microbenchmark wrote no records (exit {proc.returncode}); see its log")
        shutil.copyfile(files[0], out)
        shutil.copyfile(files[0].with_suffix(".log"), out.with_suffix(".log"))
        written.append(out)
        script = work / "torch_kernels.py"
        if torch_kernels and script.is_file() and _has_torch_cuda():
            torch_out = out.with_name(out.stem + "-torch.jsonl")
            subprocess.run([sys.executable, str(script), "--out", str(torch_out)] + (["--quick"] if quick else []))
            if torch_out.is_file():
                written.append(torch_out)
    return written
