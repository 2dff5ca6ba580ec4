"""Agent scenarios: hand-checkable equalities, caching physics, reproducibility, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import costsim
from costsim.analysis.task_costs import run_task, summarize
from costsim.cli import main
from costsim.errors import CostsimError
from costsim.inputs.hardware import load_hardware
from costsim.inputs.scenarios import load_scenario, scenario_names
from costsim.spec.scenario import Scenario

H100 = load_hardware("h100-sxm")


def test_single_turn_equals_estimate_exactly():
    sc = Scenario(name="one", turns=[{"input_tokens": 30_000, "output_tokens": 2_000}])
    task = summarize(run_task(sc, costsim.load_model("llama-3.1-8b"), H100))
    est = costsim.estimate("llama-3.1-8b", "h100-sxm", prompt=30_000, output_tokens=2_000)
    assert task["usd_per_task"] == pytest.approx(est["usd_per_request"], rel=1e-12)
    assert task["wall_time_s"] == pytest.approx(est["request_latency_s"], rel=1e-12)


def _agent(turns: int, hit_rate: float) -> Scenario:
    return Scenario(name="agent", system_prompt_tokens=2000, repeat=turns,
                    template={"input_tokens": 1000, "output_tokens": 100}, prefix_cache={"hit_rate": hit_rate})


def _recompute_cost(model: str, turns: int) -> float:
    spec = costsim.load_model(model)
    off = summarize(run_task(_agent(turns, 0.0), spec, H100))["usd_per_task"]
    on = summarize(run_task(_agent(turns, 1.0), spec, H100))["usd_per_task"]
    return off - on


def test_cache_misses_grow_quadratically_for_softmax_and_linearly_for_ssm():
    # without caching, turn i re-prefills ~i x 1100 tokens: the extra cost sums to ~N^2 for softmax
    # (each token's attention also grows), ~N^2 tokens x constant cost for an SSM: compare ratios.
    llama = _recompute_cost("llama-3.1-8b", 40) / _recompute_cost("llama-3.1-8b", 20)
    mamba = _recompute_cost("mamba2-2.7b", 40) / _recompute_cost("mamba2-2.7b", 20)
    assert 3.8 <= mamba <= 4.4  # recomputed tokens: sum of i for i < N, so x4 when N doubles
    assert llama > mamba  # softmax: the recomputed tokens also attend a longer prefix


def test_cached_tokens_are_counted():
    task = summarize(run_task(_agent(10, 1.0), costsim.load_model("llama-3.1-8b"), H100))
    # turn i (0-based) finds the whole previous context: 2000 + i x 1100 tokens
    assert task["tokens"]["cached_input"] == sum(2000 + i * 1100 for i in range(1, 10))
    assert task["tokens"]["recomputed_input"] == 0


def test_monte_carlo_is_reproducible_and_spread():
    sc = load_scenario("chat")
    spec = costsim.load_model("llama-3.1-8b")
    a = run_task(sc, spec, H100, samples=500, seed=7).usd
    b = run_task(sc, spec, H100, samples=500, seed=7).usd
    np.testing.assert_array_equal(a, b)
    assert a.std() > 0


def test_compaction_caps_the_context():
    sc = Scenario(name="c", repeat=30, template={"input_tokens": 1000, "output_tokens": 100},
                  context={"limit_tokens": 10_000, "on_limit": "compact", "compact_to_tokens": 2_000})
    task = run_task(sc, costsim.load_model("llama-3.1-8b"), H100)
    kept = np.array([c[0] for c in task.per_turn_context])
    # the context grows by 1,100 a turn, passes 10,000, is compacted to 2,000 and grows again
    assert kept.max() <= 10_000 + 1_100
    assert kept[9] == 11_000 and kept[10] == 2_000 + 1_100
    # the turn after a compaction misses the cache: its 2,000 tokens are prefilled again
    assert task.tokens["recomputed_input"][0] == 2_000 * np.sum(kept[:-1] > 10_000)


@pytest.mark.parametrize("name", scenario_names())
def test_every_shipped_scenario_runs_and_says_where_its_numbers_come_from(name, capsys):
    sc = load_scenario(name)
    assert sc.sources and sc.description
    assert main(["scenario", "run", name, "-m", "kimi-linear-48b-a3b", "-H", "b200", "--samples", "20",
                 "-f", "json"]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(("text", "needle"), [
    ('[[turns]]\ninput_tokens = -5\n', "input_tokens"),
    ('[[turns]]\ninput_tokens = 5\nbogus = 1\n', "bogus"),
    ('repeat = 3\n', "template"),
    ('[[turns]]\ninput_tokens = { kind = "lognormal", median = 100, sigma = -1 }\n', "sigma"),
    ('[[turns]]\ninput_tokens = { kind = "uniform", low = 10, high = 1 }\n', "low"),
    ('[prefix_cache]\nhit_rate = 1.5\n[[turns]]\ninput_tokens = 5\n', "hit_rate"),
])
def test_malformed_scenarios(tmp_path, capsys, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(CostsimError, match=needle):
        load_scenario(str(path))
    assert main(["scenario", "run", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_unknown_scenario_and_bad_samples(capsys):
    assert main(["scenario", "run", "nope"]) == 2
    assert "not a shipped scenario" in capsys.readouterr().err
    assert main(["scenario", "run", "chat", "--samples", "0"]) == 2
    assert "--samples" in capsys.readouterr().err


def test_subagents_add_their_cost_and_return_their_results():
    child = {"system_prompt_tokens": 500, "turns": [{"input_tokens": 3000, "output_tokens": 200}]}
    parent_turns = [{"input_tokens": 1000, "output_tokens": 100}, {"input_tokens": 0, "output_tokens": 400}]
    spec = costsim.load_model("llama-3.1-8b")
    with_subs = Scenario(name="p", turns=parent_turns,
                         subagents={"count": 3, "after_turn": 0, "return_tokens": 700, **child})
    alone = Scenario(name="p", turns=[parent_turns[0], {"input_tokens": 3 * 700, "output_tokens": 400}])
    one_child = Scenario(name="c", **child)
    total = run_task(with_subs, spec, H100).usd[0]
    expected = run_task(alone, spec, H100).usd[0] + 3 * run_task(one_child, spec, H100).usd[0]
    assert total == pytest.approx(expected, rel=1e-12)


def test_subagents_after_a_missing_turn_is_an_error():
    with pytest.raises(ValueError, match="after_turn"):
        Scenario(name="p", turns=[{"input_tokens": 5}],
                 subagents={"count": 2, "after_turn": 3, "turns": [{"input_tokens": 1}]})


def test_api_price_sheet_by_hand(tmp_path, capsys):
    from costsim.spec.scenario import ApiPrice

    api = ApiPrice(name="t", provider="p", model="m", usd_per_mtok_input=1.0, usd_per_mtok_cached_input=0.1,
                   usd_per_mtok_output=10.0, long_context_threshold_tokens=5000, long_usd_per_mtok_input=2.0,
                   long_usd_per_mtok_cached_input=0.2, long_usd_per_mtok_output=20.0, date="2026-11", source="test")
    sc = Scenario(name="two", turns=[{"input_tokens": 3000, "output_tokens": 100},
                                     {"input_tokens": 4000, "reasoning_tokens": 50, "output_tokens": 200}])
    task = run_task(sc, costsim.load_model("llama-3.1-8b"), H100, api=api)
    # turn 1: 3000 in at $1, 100 out at $10; turn 2: prompt 7100 > 5000 -> long tier:
    # 3100 cached at $0.2, 4000 fresh at $2, 250 decoded at $20
    expected = (3000 * 1 + 100 * 10 + 3100 * 0.2 + 4000 * 2 + 250 * 20) / 1e6
    assert task.api_usd[0] == pytest.approx(expected)
    sheet = tmp_path / "sheet.toml"
    sheet.write_text('name = "t"\nprovider = "p"\nmodel = "m"\nusd_per_mtok_input = 1\n'
                     'usd_per_mtok_cached_input = 0.1\nusd_per_mtok_output = 10\ndate = "2026-11"\nsource = "test"\n')
    assert main(["scenario", "run", "rag-qa", "--samples", "10", "--api-prices", str(sheet), "-f", "json"]) == 0
    import json

    rows = json.loads(capsys.readouterr().out)
    assert rows[-1]["hardware"] == "api:t" and rows[-1]["usd_per_task"] > 0
    sheet.write_text('name = "t"\nusd_per_mtok_input = -1\n')
    assert main(["scenario", "run", "rag-qa", "--api-prices", str(sheet)]) == 2


def test_caching_off_costs_what_a_turn_by_turn_calculation_predicts():
    """The coding agent at its median token counts, with and without prefix caching: the difference
    is, turn by turn, re-prefilling the whole context instead of only the new tokens, minus the
    cache reads — computed here independently of the scenario engine's bookkeeping."""
    from costsim.engine.timing import prefill_time

    spec = costsim.load_model("llama-3.1-8b")
    turns = 30
    template = {"input_tokens": 860, "output_tokens": 250}

    def agent(hit: float) -> Scenario:
        return Scenario(name="ca", system_prompt_tokens=20_000, turns=[{"input_tokens": 1500, "output_tokens": 300}],
                        template=template, repeat=turns, prefix_cache={"hit_rate": hit})

    on, off = run_task(agent(1.0), spec, H100).usd[0], run_task(agent(0.0), spec, H100).usd[0]
    price_s = H100.usd_per_hour / 3600
    cached_s = 131_072 / (H100.bandwidth_bytes_s * H100.efficiency.memory_max)  # one read per cached token
    context, extra = 0.0, 0.0
    for i, (new, out) in enumerate([(21_500, 300)] + [(860, 250)] * turns):
        if i:
            full = prefill_time(spec, H100, context + new).total_s
            incremental = prefill_time(spec, H100, new, context).total_s
            extra += float(full - incremental) * price_s - context * cached_s * price_s
        context += new + out
    assert off / on == pytest.approx((on + extra) / on, rel=0.01)
    assert off / on > 1.5  # and caching matters for an agent


def test_task_cost_grows_quadratically_with_turns_for_softmax_linearly_for_ssm():
    def cost(model: str, turns: int) -> float:
        sc = Scenario(name="a", repeat=turns, template={"input_tokens": 2000, "output_tokens": 200})
        return run_task(sc, costsim.load_model(model), H100).usd[0]

    assert cost("mamba2-2.7b", 40) / cost("mamba2-2.7b", 20) == pytest.approx(2.0, rel=0.02)
    assert cost("llama-3.1-8b", 40) / cost("llama-3.1-8b", 20) > 3.4  # -> 4 as attention dominates


def test_utilisation_scales_self_hosted_dollars(capsys):
    import json

    main(["scenario", "run", "rag-qa", "--samples", "5", "-f", "json"])
    full = json.loads(capsys.readouterr().out)[0]["usd_per_task"]
    main(["scenario", "run", "rag-qa", "--samples", "5", "--utilisation", "0.5", "-f", "json"])
    half = json.loads(capsys.readouterr().out)[0]["usd_per_task"]
    assert half == pytest.approx(2 * full)
    assert main(["scenario", "run", "rag-qa", "--utilisation", "0"]) == 2


def test_recompute_between_turns_trades_memory_for_prefill():
    def agent(policy: str) -> Scenario:
        return Scenario(name="a", system_prompt_tokens=5000, repeat=10,
                        template={"input_tokens": 1000, "output_tokens": 100, "tool_latency_s": 60},
                        prefix_cache={"between_turns": policy})

    spec = costsim.load_model("llama-3.1-8b")
    keep, recompute = run_task(agent("keep"), spec, H100), run_task(agent("recompute"), spec, H100)
    assert recompute.usd_by_kind["cache_hold"][0] == 0 < keep.usd_by_kind["cache_hold"][0]
    assert recompute.tokens["cached_input"][0] == 0
    assert recompute.usd_by_kind["prefill"][0] > keep.usd_by_kind["prefill"][0]


def test_offloaded_prefix_costs_its_load_time_not_device_memory():
    """between_turns = offload: no HBM held during tool latency, no re-prefill; the hit part of the
    prefix comes back over the host link (PCIe ~50 GB/s on H100, NVLink-C2C ~225 GB/s on GB200)."""
    spec = costsim.load_model("llama-3.1-8b")

    def two_turns(mode: str, tier: str = "host") -> Scenario:
        return Scenario(name="o", turns=[{"input_tokens": 50_000, "output_tokens": 1_000, "tool_latency_s": 60},
                                         {"input_tokens": 1_000, "output_tokens": 500}],
                        prefix_cache={"hit_rate": 1.0, "between_turns": mode, "offload_tier": tier})

    keep, offload = run_task(two_turns("keep"), spec, H100), run_task(two_turns("offload"), spec, H100)
    recompute = run_task(two_turns("recompute"), spec, H100)
    assert offload.usd_by_kind["cache_hold"][0] == 0.0 < keep.usd_by_kind["cache_hold"][0]
    assert offload.usd_by_kind["prefill"][0] == pytest.approx(keep.usd_by_kind["prefill"][0])
    assert offload.usd[0] < min(keep.usd[0], recompute.usd[0])
    # the second turn waits for 51,000 tokens x 131,072 B to come back at 50 GB/s
    load = 51_000 * 131_072 / 50e9
    assert offload.wall_time_s[0] - keep.wall_time_s[0] == pytest.approx(load, rel=1e-9)
    ssd = run_task(two_turns("offload", "ssd"), spec, H100)
    assert ssd.wall_time_s[0] - keep.wall_time_s[0] == pytest.approx(51_000 * 131_072 / 6e9, rel=1e-9)


def test_a_one_device_layout_runs_the_task_exactly_like_no_layout():
    """The multi-device path (serving/layouts.py) and the single-device engine agree on one device."""
    from costsim.spec.layout import Layout

    spec = costsim.load_model("qwen3-next-80b-a3b")
    hw = load_hardware("h200")
    sc = load_scenario("coding-agent")
    plain, laid = run_task(sc, spec, hw, samples=64, seed=3), run_task(sc, spec, hw, samples=64, seed=3,
                                                                       layout=Layout())
    np.testing.assert_allclose(laid.usd, plain.usd, rtol=1e-9)
    np.testing.assert_allclose(laid.wall_time_s, plain.wall_time_s, rtol=1e-9)
    np.testing.assert_allclose(laid.peak_cache_bytes, plain.peak_cache_bytes, rtol=1e-12)


def test_a_model_too_big_for_one_gpu_runs_a_task_on_a_layout(capsys):
    from costsim.spec.layout import Layout

    spec = costsim.load_model("llama-3.1-70b")
    sc = load_scenario("coding-agent")
    assert not summarize(run_task(sc, spec, H100, samples=16))["fits_memory"]
    task = summarize(run_task(sc, spec, H100, samples=16, layout=Layout(tp=8)))
    assert task["fits_memory"] and task["usd_per_task"] > 0
    assert main(["scenario", "run", "chat", "-m", "llama-3.1-70b", "--layout", "tp=8", "--samples", "20"]) == 0
    assert "x 8 (tp=8)" in capsys.readouterr().out
    assert main(["scenario", "run", "chat", "-m", "llama-3.1-70b", "--layout", "tp=3"]) == 2
