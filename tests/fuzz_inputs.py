"""Seeded generators of malformed inputs for the fuzz suite (tests/test_fuzz.py, bounded, in CI) and the
long run (benchmarks/fuzz_long.py). Every input they make is invalid on purpose: a required field with a
wrong type or an impossible value, a required key missing, a file that is not what it claims, or a CLI
argument no command accepts. costsim must answer each with exit code 2 and one line naming the problem:
no traceback, no hang, and no number."""

from __future__ import annotations

import json
import random
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAD_NUMBERS = [-1, 0, -1e9, "abc", "", [], {}, [1, 2], {"a": 1}, float("nan"), float("inf"), float("-inf"), 1e400,
               "1e999", "１２８", "\u202e42"]
GARBAGE = [b"", b"{", b"[]", b"null", b"42", b'"text"', b"\xff\xfe\x00\x01", b"\x00" * 64, "ü∂ƒ©˙∆".encode(),
           b"{" * 5000, b'{"a": ' * 200]
HF_REQUIRED = ["hidden_size", "num_hidden_layers", "vocab_size", "num_attention_heads"]
HW_REQUIRED = ["memory_gb", "hbm_bandwidth_tb_s", "usd_per_hour", "vector_tflops"]


def _toml_value(v) -> str:
    if isinstance(v, float):
        return "nan" if v != v else ("inf" if v == float("inf") else ("-inf" if v == float("-inf") else repr(v)))
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, bool):
        return "true" if v else "false"
    return repr(v)


def _dump_toml(data: dict) -> str:
    """Top-level keys, then one [table] per dict value (hardware profiles have no deeper nesting once
    their fitted implementation tables are dropped)."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{ik} = {_toml_value(iv)}" for ik, iv in v.items()]
    return "\n".join(lines) + "\n"


def _garbage(rng: random.Random, path: Path) -> bool:
    """Now and then the file is not what it claims at all (empty, truncated, binary, ...)."""
    if rng.random() < 0.15:
        path.write_bytes(rng.choice(GARBAGE))
        return True
    return False


def hf_config(rng: random.Random, folder: Path) -> list[str]:
    """A preset's config.json with one required field broken, or a file that is not JSON."""
    path = folder / f"config-{rng.randrange(10**9)}.json"
    if not _garbage(rng, path):
        source = rng.choice(sorted((ROOT / "models").glob("*.json")))
        data = json.loads(source.read_text(encoding="utf-8"))
        if rng.random() < 0.1:
            # (None only where the file names a type: the mamba_ssm format has none and needs none)
            data["model_type"] = rng.choice(["gpt9", "", 42, "llama\u0000"] + ([None] if "model_type" in data else []))
        else:
            target = data.get("text_config", data)  # multimodal configs nest the language model
            key = rng.choice([k for k in HF_REQUIRED if k in target])
            if rng.random() < 0.25:
                target.pop(key)
            else:
                target[key] = rng.choice(BAD_NUMBERS)
        path.write_text(json.dumps(data), encoding="utf-8")
    return ["inspect", str(path), "-c", "8192"]


def hardware_profile(rng: random.Random, folder: Path) -> list[str]:
    path = folder / f"hw-{rng.randrange(10**9)}.toml"
    if not _garbage(rng, path):
        source = rng.choice(sorted((ROOT / "hardware_profiles").glob("*.toml")))
        data = tomllib.loads(source.read_text(encoding="utf-8"))
        data.pop("sources", None)
        data.get("efficiency", {}).pop("implementations", None)
        roll = rng.random()
        if roll < 0.2:
            data.pop(rng.choice(HW_REQUIRED), None)
        elif roll < 0.35:
            data["dense_tflops"] = {"bf16": rng.choice(BAD_NUMBERS)}
        elif roll < 0.5:
            data.setdefault("efficiency", {})[rng.choice(["memory_max", "matmul_max", "attention_max"])] = \
                rng.choice([1.5, -0.1, 0, "x", float("nan")])
        else:
            data[rng.choice(HW_REQUIRED)] = rng.choice(BAD_NUMBERS)
        path.write_text(_dump_toml(data), encoding="utf-8")
    return ["estimate", "-H", str(path), "-c", "8192"]


def scenario_file(rng: random.Random, folder: Path) -> list[str]:
    path = folder / f"scenario-{rng.randrange(10**9)}.toml"
    if not _garbage(rng, path):
        roll = rng.random()
        bad = rng.choice([x for x in BAD_NUMBERS if x != 0])  # a turn may have no new input or no latency
        if roll < 0.4:
            text = f'name = "f"\n[[turns]]\ninput_tokens = {_toml_value(bad)}\noutput_tokens = 10\n'
        elif roll < 0.6:
            text = (f'name = "f"\n[[turns]]\ninput_tokens = 10\noutput_tokens = 10\n'
                    f"tool_latency_s = {_toml_value(bad)}\n")
        elif roll < 0.8:
            field, value = rng.choice([("hit_rate", rng.choice([1.5, -0.5, "x", float("nan")])),
                                       ("between_turns", rng.choice(["sometimes", 3, ""])),
                                       ("evict_after_s", rng.choice([-5, 0, "x"]))])
            text = (f'name = "f"\n[[turns]]\ninput_tokens = 10\noutput_tokens = 10\n'
                    f"[prefix_cache]\n{field} = {_toml_value(value)}\n")
        else:
            text = 'name = "f"\n' + rng.choice(["", "repeat = 3\n", "[[turns]]\nbogus = 1\n",
                                                 "turns = 5\n", "[[turns]]\ninput_tokens = {median = -3}\n"])
        path.write_text(text, encoding="utf-8")
    return ["scenario", "run", str(path), "-m", "llama-3.1-8b", "--samples", "4"]


CLI_CASES = [
    (["estimate"], ["-c", "--batch", "--price", "--tpot-ms", "-m", "-H", "--layout", "--prompt"]),
    (["sweep"], ["-c", "--points", "--metric", "-m", "-H", "--batch", "--layout", "--plan"]),
    (["compare"], ["-c", "-m", "-H", "--metric", "--layout"]),
    (["inspect", "llama-3.1-8b"], ["-c", "--batch", "--kv-dtype"]),
    (["plan"], ["-c", "--tpot-ms", "--ttft-s", "--max-devices", "-m"]),
    (["scenario", "run", "chat"], ["--samples", "-m", "-H", "--utilisation", "--seed", "--layout"]),
    (["crossover", "-m", "llama-3.1-8b,mamba2-2.7b"], ["--metric", "-c", "--layout"]),
    (["disaggregate"], ["--prompt", "--output-tokens", "--prefill-layout", "--decode-layout"]),
]
BAD_ARGS = ["-5", "0", "abc", "", "1e400", "nan", "inf", "-inf", "1..", "..", "5..1", "1k..1k", "tp=3", "x=1",
            "tp=0", "nonexistent-model", "h999", "\u202e", "10M10", "1.5.2", "--", "12 34", "%s", "../../etc/passwd",
            "auto-auto", "-1k"]


def cli_args(rng: random.Random, folder: Path) -> list[str]:
    """One command with one option given a value no command accepts, or an unknown option."""
    base, options = rng.choice(CLI_CASES)
    if rng.random() < 0.1:
        return [*base, rng.choice(["--bogus", "-z", "--context=", "--format", "xml"]), "1"]
    option = rng.choice(options)
    value = rng.choice(BAD_ARGS)
    # values a given option legitimately accepts would produce a number, not an error
    acceptable = {"--seed": {"0"}, "--batch": set(), "--tpot-ms": set(), "--max-devices": set()}
    if value in acceptable.get(option, set()) or (option in ("--plan",) and value == "auto"):
        value = "abc"
    return [*base, option, value]


GENERATORS = {"hf_config": hf_config, "hardware_profile": hardware_profile, "scenario_file": scenario_file,
              "cli_args": cli_args}
