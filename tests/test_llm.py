"""LLM configs, the OpenAI-compatible client (cache, retries, usage), prompts and the host-callback
bridge, all against the loopback server on 127.0.0.1 (no network, no key)."""

import json

import jax
import numpy as np
import pytest

import jaxmarl_lab as jl
from jaxmarl_lab.llm import (
    PREDEFINED_MODELS,
    LLMClient,
    LLMConfig,
    LLMError,
    LoopbackServer,
    MissingAPIKey,
    get_llm_config,
    llm_policy,
    llm_session,
    prompts_for,
)
from jaxmarl_lab.llm.testing import rule_like_pistonball_model, simple_bargainer_model

SEED_MODELS = ["gpt-4o", "gpt-4o-mini", "gpt-5", "o1", "o3", "gpt-5.2-pro", "gpt-5.2-thinking", "gemini-pro",
               "gemini-flash", "gemini-2.0-flash", "llama-3.1-70b", "llama-3.3-70b", "qwen-72b", "deepseek-chat",
               "deepseek-reasoner", "ollama-llama3"]


# ---- configs --------------------------------------------------------------------------------------
def test_predefined_models_and_config_sources(tmp_path):
    assert set(SEED_MODELS) <= set(PREDEFINED_MODELS)
    assert PREDEFINED_MODELS["gemini-flash"].api_key_env_var == "GOOGLE_API_KEY"
    assert PREDEFINED_MODELS["qwen-72b"].base_url == "https://api.together.xyz/v1"
    path = tmp_path / "local.json"
    path.write_text(json.dumps({"model_string": "my-model", "base_url": "http://127.0.0.1:9/v1",
                                "input_price_per_million": 1.0, "output_price_per_million": 2.0}))
    config = get_llm_config(str(path))
    assert config.name == "my-model" and config.cost(1_000_000, 500_000) == pytest.approx(2.0)
    assert get_llm_config({"name": "x", "model_string": "y"}).model_string == "y"
    assert get_llm_config("gpt-4o", temperature=0.0).temperature == 0.0
    with pytest.raises(ValueError, match="unknown LLM config key"):
        get_llm_config({"model_string": "m", "temprature": 1})
    with pytest.raises(ValueError, match="unknown model"):
        get_llm_config("gpt-17")


def test_missing_key_names_the_variable(monkeypatch):
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    with pytest.raises(MissingAPIKey, match="DEEPSEEK_API_KEY"):
        LLMClient("deepseek-chat", cache_dir=False)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-test")
    assert get_llm_config("deepseek-chat").resolve_api_key() == "sk-test"
    assert "sk-test" not in json.dumps(get_llm_config("deepseek-chat").to_dict())


def test_reasoning_models_get_their_parameters():
    client = LLMClient(LLMConfig("o1", "o1", base_url="http://127.0.0.1:9/v1", temperature=0.3,
                                 reasoning_effort="low", max_tokens=100), cache_dir=False)
    kwargs = client.request_kwargs([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert kwargs["max_completion_tokens"] == 100 and "max_tokens" not in kwargs and "temperature" not in kwargs
    assert [m["role"] for m in kwargs["messages"]] == ["user"] and kwargs["messages"][0]["content"].startswith("Be")
    assert kwargs["reasoning_effort"] == "low"
    plain = LLMClient(LLMConfig("m", "m", base_url="http://127.0.0.1:9/v1", temperature=0.3), cache_dir=False)
    kwargs = plain.request_kwargs([{"role": "user", "content": "Hi"}], seed=7)
    assert kwargs["max_tokens"] == 4096 and kwargs["temperature"] == 0.3 and kwargs["seed"] == 7


# ---- client ---------------------------------------------------------------------------------------
def test_client_usage_cache_and_retries(tmp_path):
    with LoopbackServer(lambda messages: "four words right here", fail_first=2) as server:
        client = LLMClient(server.config(input_price_per_million=1.0, output_price_per_million=2.0),
                           cache_dir=tmp_path, backoff_s=0.01)
        first = client.complete("one two three", seed=1)
        assert first.text == "four words right here" and (first.input_tokens, first.output_tokens) == (3, 4)
        assert len(server.requests) == 3 and client.usage.retries == 2          # two scripted 500s, then OK
        again = client.complete("one two three", seed=1)
        assert again.cached and again.text == first.text and len(server.requests) == 3
        client.complete("one two three", seed=2)                                 # another seed: a new request
        assert len(server.requests) == 4 and server.requests[-1]["seed"] == 2
        usage = client.usage.summary()
        assert usage["requests"] == 2 and usage["cache_hits"] == 1 and usage["input_tokens"] == 6
        assert usage["cost_usd"] == pytest.approx((6 * 1.0 + 8 * 2.0) / 1e6)
        many = client.complete_many([f"prompt {i}" for i in range(20)], list(range(20)))
        assert [c.text for c in many] == ["four words right here"] * 20


def test_client_errors_are_clear():
    with LoopbackServer(fail_first=100, fail_status=503) as server:
        client = LLMClient(server.config(), cache_dir=False, max_retries=2, backoff_s=0.01)
        with pytest.raises(LLMError, match="did not answer after 3 attempts"):
            client.complete("hello")
    with LoopbackServer(fail_first=100, fail_status=400) as server:
        client = LLMClient(server.config(), cache_dir=False, max_retries=2, backoff_s=0.01)
        with pytest.raises(LLMError, match="refused the request .400."):
            client.complete("hello")
        assert len(server.requests) == 1                    # a 4xx is not retried
    dead = LLMClient(LLMConfig("m", "m", base_url="http://127.0.0.1:9/v1"), cache_dir=False, max_retries=1,
                     backoff_s=0.01, timeout_s=2)
    with pytest.raises(LLMError, match="127.0.0.1:9"):
        dead.complete("hello")


# ---- prompts --------------------------------------------------------------------------------------
def test_bargain_prompt_speaks_from_the_readers_side():
    env = jl.make("bargain")
    prompts = prompts_for(env)
    obs, state = env.reset(jax.random.key(3))
    obs, state, *_ = env.step(jax.random.key(0), state, np.asarray([env.encode_offer((2, 1, 0)), 0]))
    obs, mask = np.asarray(obs[1]), np.asarray(env.action_mask(state)[1])   # player 2 to move
    text = prompts.render(obs, mask, 1)[0]["content"]
    values = np.asarray(state.values[1])
    assert f"item A: {values[0]} per unit" in text
    assert f"Your outside offer: {int(state.outside[1])}." in text
    assert "you would receive 2 of item A, 1 of item B, 0 of item C" in text
    assert f"(worth {2 * values[0] + values[1]} to you)" in text and "round 1 of 3" in text
    assert "ACCEPT (take" in text and "OFFER <0-7> <0-4> <0-1>" in text
    assert prompts.parse("Action: ACCEPT", obs, mask) == (env.accept_action, True)
    assert prompts.parse("Sure. Action: OFFER 3 2 1", obs, mask) == (env.encode_offer((3, 2, 1)), True)
    player1 = np.asarray(obs).copy()
    player1[env.seat_slot] = 0.0                                                # as player 1: units to P2 = q - r
    assert prompts.parse("OFFER 3 2 1", player1, mask)[0] == env.encode_offer((4, 2, 0))
    assert prompts.parse("OFFER 9 9 9", obs, mask) == (env.walk_action, False)    # impossible: fallback
    assert prompts.parse("no idea", obs, mask) == (env.walk_action, False)
    first_mask = np.asarray(env.action_mask(env.reset(jax.random.key(3))[1])[0])
    assert prompts.parse("ACCEPT", obs, first_mask) == (env.walk_action, False)  # illegal at t = 0


def test_pistonball_prompt_and_parser():
    env = jl.make("pistonball", n_pistons=20)
    prompts = prompts_for(env)
    obs, state = env.reset(jax.random.key(0))
    visible = int(np.flatnonzero(np.asarray(obs[:, 5]) > 0)[0])
    text = prompts.render(np.asarray(obs[visible]), np.ones(3, bool), visible, "Rise when the ball is right.")[0]
    content = text["content"]
    assert f"piston {visible} of 20" in content and "px/s" in content and "Rise when the ball is right." in content
    assert "ball visible: yes" in content
    hidden = prompts.render(np.asarray(obs[0]), np.ones(3, bool), 0)[0]["content"]
    assert "ball visible: no" in hidden and "x = " not in hidden           # nothing leaks beyond the window
    mask = np.ones(3, bool)
    assert prompts.parse("Thinking... Action: 2", None, mask) == (2, True)
    assert prompts.parse("I will retract.", None, mask) == (0, True)
    assert prompts.parse("¯\\_(ツ)_/¯", None, mask) == (1, False)
    continuous = prompts_for(jl.make("pistonball", n_pistons=4, continuous=True))
    assert continuous.parse("Action: 0.35", None, mask) == (0.35, True)
    assert continuous.parse("I say 5", None, mask) == (1.0, True) and continuous.parse("no", None, mask) == (0.0, False)
    assert "number in [-1, 1]" in continuous.render(np.asarray(obs[0]), mask, 0)[0]["content"]


# ---- the bridge -----------------------------------------------------------------------------------
def test_llm_bargaining_one_host_call_per_step_legal_games_and_cached_rerun(tmp_path):
    env = jl.make("bargain")
    with LoopbackServer(simple_bargainer_model(garbage_every=7)) as server:
        policy = llm_policy(env, server.config(), cache_dir=tmp_path)
        result = jl.evaluate(env, policy, 64, jax.random.key(0))             # LLM in both seats
        session = llm_session(policy)
        assert session.host_calls == env.max_steps                           # one call per step, both seats
        assert session.decisions == len(server.requests) == int(result.lengths.sum())
        assert session.parse_failures > 0                                    # garbage answers fell back ...
        assert np.all(result.outcomes["accept"] + result.outcomes["walk"] == 1)  # ... and every game ended
        assert 0 < result.accept_rate < 1 and np.all(result.lengths <= env.max_steps)
        sent = len(server.requests)

        rerun = llm_policy(env, server.config(), cache_dir=tmp_path)
        again = jl.evaluate(env, rerun, 64, jax.random.key(0))
        assert len(server.requests) == sent and llm_session(rerun).client.usage.cache_hits == sent
        np.testing.assert_array_equal(again.returns, result.returns)

        greedy = jl.baseline(env, "greedy")                                  # against a baseline: one seat
        mixed = llm_policy(env, server.config(), cache_dir=False)
        jl.evaluate(env, [mixed, greedy], 16, jax.random.key(1))
        assert llm_session(mixed).host_calls == env.max_steps


def test_llm_pistonball_team_that_answers_like_the_rule_reproduces_the_rule():
    env = jl.make("pistonball", n_pistons=20)
    key = jax.random.key(5)
    rule = jl.evaluate(env, jl.baseline(env, "rule", k=1.0, tau=4.0), 1, key)
    with LoopbackServer(rule_like_pistonball_model(k=1.0, tau=4.0)) as server:
        policy = llm_policy(env, server.config(), cache_dir=False, max_concurrency=16)
        llm = jl.evaluate(env, policy, 1, key)
        session = llm_session(policy)
    np.testing.assert_array_equal(llm.returns, rule.returns)
    np.testing.assert_array_equal(llm.lengths, rule.lengths)
    assert session.parse_failures == 0 and session.host_calls == env.max_steps
    assert session.decisions == 20 * int(rule.lengths.sum())                # finished games ask nothing


def test_list_models_cli(capsys):
    from jaxmarl_lab.cli import main

    assert main(["list-models"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SEED_MODELS) and "GOOGLE_API_KEY" in out and "api.deepseek.com" in out
