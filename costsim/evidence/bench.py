"""`costsim bench run` / `costsim bench model-step`: run the bundled microbenchmark, write JSON Lines.

`run`: the CUDA program (microbench/run.sh) always runs; microbench/torch_kernels.py runs after it
where PyTorch with CUDA is importable. `model-step`: microbench/model_step.py times whole synthetic
model steps (needs PyTorch with CUDA; flash-linear-attention for the hybrid). All write the record
format of docs/contracts.md; every file's header names the costsim invocation that produced it.
"""

from __future__ import annotations

import datetime
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from costsim.errors import CostsimError
from costsim.inputs.data import data_dir
from costsim.output.atomic import write_atomic


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


def _stamp_header(path: Path, invocation: str, run_id: str) -> None:
    """Record in the file's header which costsim command (and which run of it) wrote the file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines:
        return
    head = json.loads(lines[0])
    if head.get("record") != "header":
        return
    head.update(invocation=invocation, run_id=run_id)
    lines[0] = json.dumps(head)
    write_atomic(path, "\n".join(lines) + "\n")


def _run_id() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def _invocation(argv: list[str] | None) -> str:
    return "costsim " + shlex.join(argv if argv is not None else sys.argv[1:])


def run_bench(out: Path, quick: bool = False, torch_kernels: bool = True, torch_deadline_s: float | None = None,
              argv: list[str] | None = None) -> list[Path]:
    """Build, check and measure; return the JSON Lines files written (CUDA, then torch)."""
    _check_machine()
    invocation, run_id = _invocation(argv), _run_id()
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
            cmd = [sys.executable, str(script), "--out", str(torch_out), "--log", str(torch_out.with_suffix(".log"))]
            cmd += (["--quick"] if quick else []) + (["--deadline", str(torch_deadline_s)] if torch_deadline_s else [])
            subprocess.run(cmd)
            if torch_out.is_file():
                written.append(torch_out)
    for path in written:
        _stamp_header(path, invocation, run_id)
    return written


def run_model_steps(out: Path, quick: bool = False, deadline_s: float | None = None,
                    argv: list[str] | None = None) -> Path:
    """Time whole synthetic model steps (microbench/model_step.py); return the JSON Lines file written."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise CostsimError("bench: no NVIDIA GPU found (nvidia-smi missing); run it on a machine with an NVIDIA GPU")
    if not _has_torch_cuda():
        raise CostsimError("bench model-step: PyTorch with CUDA is not importable; install torch with CUDA support")
    script = data_dir("microbench") / "model_step.py"
    if not script.is_file():
        raise CostsimError(f"bench: {script} not found; reinstall costsim")
    invocation, run_id = _invocation(argv), _run_id()
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(script), "--out", str(out), "--log", str(out.with_suffix(".log"))]
    cmd += (["--quick"] if quick else []) + (["--deadline", str(deadline_s)] if deadline_s else [])
    proc = subprocess.run(cmd)
    if not out.is_file():
        raise CostsimError(f"bench model-step: no records written (exit {proc.returncode}); see its log")
    _stamp_header(out, invocation, run_id)
    return out
