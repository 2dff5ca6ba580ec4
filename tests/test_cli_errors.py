"""Bad input gives exit code 2 and one line naming the problem — never a traceback or a number."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from costsim.cli import main

LLAMA_LIKE = {
    "model_type": "llama", "hidden_size": 512, "intermediate_size": 1024, "num_attention_heads": 8,
    "num_key_value_heads": 2, "num_hidden_layers": 2, "vocab_size": 1000,
}


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def assert_one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_valid_config_runs(capsys, tmp_path):
    code, out, _ = run(capsys, "inspect", write(tmp_path, "tiny.json", json.dumps(LLAMA_LIKE)), "-f", "json")
    assert code == 0
    assert json.loads(out)["params_total"] > 0


def test_missing_file(capsys):
    assert_one_line_error(*run(capsys, "inspect", "/no/such/config.json"), "no such file")


def test_directory_instead_of_file(capsys, tmp_path):
    (tmp_path / "cfg.json").mkdir()
    assert_one_line_error(*run(capsys, "inspect", str(tmp_path / "cfg.json")), "directory")


def test_empty_file(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "inspect", write(tmp_path, "e.json", "")), "empty")


def test_malformed_json(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "inspect", write(tmp_path, "bad.json", '{"model_type": "llama",')),
                          "malformed JSON", "line 1")


def test_json_that_is_not_an_object(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "inspect", write(tmp_path, "list.json", "[1, 2]")), "object")


def test_unknown_model_type_lists_supported(capsys, tmp_path):
    cfg = dict(LLAMA_LIKE, model_type="falcon_h9")
    code, out, err = run(capsys, "inspect", write(tmp_path, "f.json", json.dumps(cfg)))
    assert_one_line_error(code, out, err, "falcon_h9", "not supported", "deepseek_v3", "qwen3_next")


def test_missing_field_is_named(capsys, tmp_path):
    cfg = {k: v for k, v in LLAMA_LIKE.items() if k != "hidden_size"}
    assert_one_line_error(*run(capsys, "inspect", write(tmp_path, "m.json", json.dumps(cfg))), "'hidden_size'",
                          "missing")


@pytest.mark.parametrize("value", [-4096, 0, "many", 1.5, True, float("nan")])
def test_bad_field_values(capsys, tmp_path, value):
    cfg = dict(LLAMA_LIKE, num_hidden_layers=value)
    text = json.dumps(cfg).replace("NaN", "NaN")
    assert_one_line_error(*run(capsys, "inspect", write(tmp_path, "v.json", text)), "num_hidden_layers")


def test_heads_not_divisible(capsys, tmp_path):
    cfg = dict(LLAMA_LIKE, num_key_value_heads=3)
    assert_one_line_error(*run(capsys, "inspect", write(tmp_path, "h.json", json.dumps(cfg))), "num_kv_heads")


@pytest.mark.parametrize("context", ["-5", "0", "abc", "1.5k7", ""])
def test_bad_context(capsys, tmp_path, context):
    path = write(tmp_path, "ok.json", json.dumps(LLAMA_LIKE))
    assert_one_line_error(*run(capsys, "inspect", path, "--context", context), "--context")


def test_bad_batch(capsys, tmp_path):
    path = write(tmp_path, "ok.json", json.dumps(LLAMA_LIKE))
    assert_one_line_error(*run(capsys, "inspect", path, "--batch", "0"), "--batch")


def test_unknown_option_and_dtype(capsys, tmp_path):
    path = write(tmp_path, "ok.json", json.dumps(LLAMA_LIKE))
    assert_one_line_error(*run(capsys, "inspect", path, "--bogus"), "--bogus")
    assert_one_line_error(*run(capsys, "inspect", path, "--kv-dtype", "fp9"), "--kv-dtype")


def test_unknown_preset_name(capsys):
    assert_one_line_error(*run(capsys, "inspect", "gpt-17"), "gpt-17", "not a preset")


def test_context_suffixes(capsys, tmp_path):
    path = write(tmp_path, "ok.json", json.dumps(LLAMA_LIKE))
    code, out, _ = run(capsys, "inspect", path, "--context", "128k", "-f", "json")
    assert code == 0 and json.loads(out)["context_tokens"] == 128_000
    code, out, _ = run(capsys, "inspect", path, "--context", "1M", "-f", "json")
    assert json.loads(out)["context_tokens"] == 1_000_000


def test_console_script_exit_code(tmp_path):
    """The installed entry point itself returns 2 (not just main())."""
    proc = subprocess.run([sys.executable, "-m", "costsim.cli", "inspect", str(tmp_path / "none.json")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_bench_without_gpu_is_one_line(capsys, monkeypatch):
    import costsim.evidence.bench as bench

    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    assert_one_line_error(*run(capsys, "bench", "run", "--quick"), "nvcc")
    monkeypatch.setattr(bench.shutil, "which", lambda name: "/usr/bin/" + name if name == "nvcc" else None)
    assert_one_line_error(*run(capsys, "bench", "run"), "no NVIDIA GPU")


def test_bench_model_step_without_gpu_is_one_line(capsys, monkeypatch):
    import costsim.evidence.bench as bench

    monkeypatch.setattr(bench.shutil, "which", lambda name: None)
    assert_one_line_error(*run(capsys, "bench", "model-step", "--quick"), "no NVIDIA GPU")
    monkeypatch.setattr(bench.shutil, "which", lambda name: "/usr/bin/" + name)
    monkeypatch.setattr(bench, "_has_torch_cuda", lambda: False)
    assert_one_line_error(*run(capsys, "bench", "model-step"), "PyTorch with CUDA")


@pytest.mark.parametrize("command", [["models"], ["hardware"], ["inspect"], ["estimate"], ["compare", "-H", "h100-sxm"],
                                     ["sweep", "--points", "3"]])
@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_every_command_every_format_and_output_file(tmp_path, capsys, command, fmt):
    target = tmp_path / "out.txt"
    assert main([*command, "-f", fmt, "-o", str(target)]) == 0
    assert capsys.readouterr().out == ""
    assert target.read_text().strip()


@pytest.mark.parametrize("args", [
    ["scenario", "run", "chat", "--seed", "-5"],          # found by the long fuzz run: was an internal error
    ["estimate", "--tpot-ms", "inf"],                     # an infinite target was accepted
    ["estimate", "--price", "inf"],
    ["plan", "--ttft-s", "nan"],
])
def test_inputs_the_fuzzer_found(capsys, args):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "internal error" not in err


def test_an_infinite_hardware_peak_is_refused(tmp_path, capsys):
    source = (Path(__file__).parent.parent / "hardware_profiles" / "h100-sxm.toml").read_text()
    profile = tmp_path / "hw.toml"
    profile.write_text(source.replace("vector_tflops = 66.9", 'vector_tflops = "1e999"'))
    assert main(["estimate", "-H", str(profile)]) == 2
    assert "finite" in capsys.readouterr().err
