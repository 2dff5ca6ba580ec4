"""Names a user can get wrong: a near miss gets a "did you mean", an unknown name says where the list is
(never the whole list), and Hugging Face repo ids of the presets (and of variants with the same config)
load the preset."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from costsim.cli import main
from costsim.errors import CostsimError
from costsim.families.model_costs import param_counts
from costsim.inputs.engines import load_engine
from costsim.inputs.hardware import hardware_names, load_hardware
from costsim.inputs.models import ALIASES_FILE, hf_repos, load_model, preset_names
from costsim.inputs.names import close_names, did_you_mean, normalise, not_found
from costsim.inputs.scenarios import load_scenario, scenario_names

MODELS = Path(__file__).parent.parent / "models"


def error(load, name: str) -> str:
    with pytest.raises(CostsimError) as info:
        load(name)
    message = str(info.value)
    assert "\n" not in message
    return message


def params(name: str) -> int:
    return param_counts(load_model(name)).total


# --- the suggestion itself ---------------------------------------------------------------------------------


def test_normalise_drops_case_separators_and_punctuation():
    assert normalise("llama3.1-8b") == normalise("llama-3.1-8b") == normalise("Llama_3.1_8B") == "llama318b"


def test_close_names_tiers():
    hw = ["h100-nvl", "h100-pcie", "h100-sxm", "h200", "b300", "b200"]
    assert close_names("H100_SXM", hw) == ["h100-sxm"]  # same normalised name
    assert close_names("h100", hw) == ["h100-nvl", "h100-pcie", "h100-sxm"]  # prefix
    assert close_names("sxm", hw) == ["h100-sxm"]  # contained
    assert close_names("nvidia-h100-sxm5", hw) == ["h100-sxm"]  # contains a name
    assert close_names("b100", hw) == ["b300", "b200"]  # difflib: closest first, ties in the order given
    assert close_names("zzz", hw) == []
    assert close_names("", hw) == []


def test_did_you_mean_reads_as_a_sentence():
    assert did_you_mean([]) == ""
    assert did_you_mean(["a"]) == "did you mean a?"
    assert did_you_mean(["a", "b", "c"]) == "did you mean a, b or c?"


def test_not_found_without_a_listing_names_the_short_list():
    assert not_found("--engine 'x'", "not an engine", "x", ["sglang", "vllm"], noun="engines") == (
        "--engine 'x': not an engine; engines: sglang, vllm")


# --- the near misses of the issue --------------------------------------------------------------------------


def test_hardware_prefix():
    assert error(load_hardware, "h100") == (
        "hardware 'h100': not a profile; did you mean h100-nvl, h100-pcie or h100-sxm? "
        f"(costsim hardware lists all {len(hardware_names())})")


@pytest.mark.parametrize(("name", "suggestion"), [
    ("qwen3-next", "did you mean qwen3-next-80b-a3b?"),
    ("llama3.1-8b", "did you mean llama-3.1-8b?"),
    ("Llama_3.1_8B", "did you mean llama-3.1-8b?"),
    ("mixtral", "did you mean mixtral-8x7b?"),
    ("deepseek-r1", "did you mean deepseek-ai/DeepSeek-R1, deepseek-v3 or deepseek-v3.2-exp?"),
    ("Llama-3.1-8B-Instruct", "did you mean meta-llama/Llama-3.1-8B-Instruct or llama-3.1-8b?"),
])
def test_model_near_misses(name, suggestion):
    message = error(load_model, name)
    assert message.startswith(f"model '{name}': not a preset or a file; {suggestion}")
    assert message.endswith(f"(costsim models lists all {len(preset_names())})")


@pytest.mark.parametrize(("name", "suggestion"), [
    ("H100_SXM", "did you mean h100-sxm?"), ("mi300", "did you mean mi300x?"), ("4090", "did you mean rtx-4090?"),
    ("tpu-v5", "did you mean tpu-v5e or tpu-v5p?"), ("gaudi-3", "did you mean gaudi3?"),
])
def test_hardware_near_misses(name, suggestion):
    assert suggestion in error(load_hardware, name)


@pytest.mark.parametrize(("name", "suggestion"), [
    ("vlm", "did you mean vllm?"), ("trt-llm", "did you mean trtllm?"), ("eager", "did you mean pytorch-eager?"),
])
def test_engine_near_misses(name, suggestion):
    message = error(load_engine, name)
    assert message.startswith(f"--engine '{name}': not an engine profile or a .toml path; {suggestion}")


@pytest.mark.parametrize(("name", "suggestion"), [
    ("chatt", "did you mean chat?"), ("rag", "did you mean rag-qa?"), ("coding_agent", "did you mean coding-agent?"),
])
def test_scenario_near_misses(name, suggestion):
    message = error(load_scenario, name)
    assert message == (f"scenario '{name}': not a shipped scenario or a file; {suggestion} "
                       f"(costsim scenario list lists all {len(scenario_names())})")


def test_exact_names_still_load_case_insensitively():
    assert load_hardware("H200").name == load_hardware("h200").name
    assert load_engine("TRTLLM").name == load_engine("trtllm").name
    assert load_scenario("Chat").name == load_scenario("chat").name


# --- nothing close: say where the list is, do not dump it ------------------------------------------------


@pytest.mark.parametrize(("load", "name", "expected", "names"), [
    (load_model, "zzz", "model 'zzz': not a preset or a file; costsim models lists all", preset_names),
    (load_model, "gpt-17", "model 'gpt-17': not a preset or a file; costsim models lists all", preset_names),
    (load_hardware, "zzz", "hardware 'zzz': not a profile; costsim hardware lists all", hardware_names),
    (load_scenario, "nope", "scenario 'nope': not a shipped scenario or a file; costsim scenario list lists all",
     scenario_names),
])
def test_unknown_name_says_where_the_list_is(load, name, expected, names):
    message = error(load, name)
    assert message.startswith(expected)
    assert sum(re.search(rf"\b{re.escape(n)}\b", message) is not None for n in names()) == 0


# --- paths stay paths --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nope.json", "nope.toml", "no/such/dir/model", "./nope"])
def test_what_looks_like_a_file_is_a_missing_file(name):
    assert "no such file" in error(load_model, name)


def test_an_existing_file_is_read_as_a_file(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text((MODELS / "llama-3.1-8b.json").read_text())
    assert param_counts(load_model(str(path))).total == params("llama-3.1-8b")


def test_scenario_paths():
    assert "no such scenario file" in error(load_scenario, "nope.toml")


# --- Hugging Face repo ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("repo", "preset"), [
    ("meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b"),
    ("meta-llama/Meta-Llama-3.1-8B", "llama-3.1-8b"),
    ("meta-llama/llama-3.1-8b", "llama-3.1-8b"),
    ("Qwen/Qwen3-Next-80B-A3B-Instruct", "qwen3-next-80b-a3b"),
    ("https://huggingface.co/Qwen/Qwen3-Next-80B-A3B-Instruct", "qwen3-next-80b-a3b"),
    ("huggingface.co/deepseek-ai/DeepSeek-V3/", "deepseek-v3"),
    ("https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json", "deepseek-v3"),
    ("deepseek-ai/DeepSeek-V3", "deepseek-v3"),
    ("deepseek-ai/DeepSeek-R1", "deepseek-v3"),
    ("moonshotai/Kimi-Linear-48B-A3B-Instruct", "kimi-linear-48b-a3b"),
])
def test_hf_ids_resolve_to_the_preset(repo, preset):
    spec = load_model(repo)
    assert spec.name == load_model(preset).name
    assert param_counts(spec).total == params(preset)


@pytest.mark.parametrize(("key", "entry"), sorted(hf_repos().items()))
def test_every_listed_repo_loads_its_preset(key, entry):
    spelled, preset = entry
    assert key == spelled.lower()
    assert preset in preset_names()
    assert param_counts(load_model(spelled)).total == params(preset)


def test_the_alias_file_agrees_with_sources_md():
    """Each preset's `repo` is the HF repo SOURCES.md gives it, every HF preset has one, every alias says why."""
    table = tomllib.loads((MODELS / ALIASES_FILE).read_text(encoding="utf-8"))
    sources = dict(re.findall(r"^\| ([\w.-]+)\.json \| ([\w.-]+/[\w.-]+) \|", (MODELS / "SOURCES.md").read_text(),
                              flags=re.M))
    assert sources and {name: entry["repo"] for name, entry in table.items()} == sources
    for entry in table.values():
        for alias in entry.get("aliases", []):
            assert set(alias) == {"id", "why"} and len(alias["why"]) > 20
    ids = [a["id"].lower() for e in table.values() for a in e.get("aliases", [])] + [e["repo"].lower()
                                                                                       for e in table.values()]
    assert len(ids) == len(set(ids))


def test_the_alias_file_is_not_a_preset():
    assert Path(ALIASES_FILE).stem not in preset_names()


def test_unknown_hf_id_says_to_download_its_config():
    message = error(load_model, "acme/Foo-7B")
    assert message == ("model 'acme/Foo-7B': not a preset, a known Hugging Face repo or a file; download "
                       "https://huggingface.co/acme/Foo-7B/resolve/main/config.json and pass its path "
                       "(costsim inspect path/to/config.json)")


def test_near_miss_hf_id_gets_the_known_repos():
    message = error(load_model, "Qwen/Qwen3-Next")
    assert "did you mean Qwen/Qwen3-Next-80B-A3B-Instruct or Qwen/Qwen3-Next-80B-A3B-Thinking? Or download" in message
    assert "did you mean meta-llama/Llama-3.1-8B?" in error(load_model, "meta-llama/llama3.1-8b")


# --- through the CLI ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "needle"), [
    (["estimate", "-H", "h100"], "did you mean h100-nvl, h100-pcie or h100-sxm?"),
    (["estimate", "-m", "qwen3-next"], "did you mean qwen3-next-80b-a3b?"),
    (["inspect", "llama3.1-8b"], "did you mean llama-3.1-8b?"),
    (["inspect", "acme/Foo-7B"], "costsim inspect path/to/config.json"),
    (["scenario", "run", "chatt"], "did you mean chat?"),
])
def test_cli_exit_code_and_one_line(capsys, args, needle):
    rc = main(args)
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err


def test_cli_takes_an_hf_id(capsys):
    import json

    assert main(["inspect", "meta-llama/Llama-3.1-8B-Instruct", "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["params_total"] == params("llama-3.1-8b")


def test_docs_name_every_alias():
    page = (Path(__file__).parent.parent / "docs" / "models.md").read_text(encoding="utf-8")
    table = tomllib.loads((MODELS / ALIASES_FILE).read_text(encoding="utf-8"))
    missing = [a["id"] for e in table.values() for a in e.get("aliases", []) if a["id"] not in page]
    assert not missing, f"docs/models.md (Names) does not list {missing}"
