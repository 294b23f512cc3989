"""The TextGrad pieces and the Pistonball Monte-Carlo trainer against the loopback server."""

import json
import re

import pytest

from algos.textgrad_pistonball import (
    MonteCarloTrainer,
    PolicyManager,
    TrainingConfig,
    main,
    parse_credit_sections,
)
from jaxmarl_lab.llm import LLMClient, LLMError, LoopbackServer
from jaxmarl_lab.llm.testing import rule_like_pistonball_model
from jaxmarl_lab.textgrad import BACKWARD_SYSTEM, OPTIMIZER_SYSTEM, SUMMARY_SYSTEM, TGD, TextLoss, Variable

NEXT_K = {"0.1": "0.5", "0.5": "1.0"}


def scripted_model(messages):
    """Critic, feedback, summary and optimiser in one: the optimiser proposes a larger rule k."""
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    text = messages[-1]["content"]
    if system == BACKWARD_SYSTEM:
        return "Feedback: react more strongly to the ball (larger k)."
    if system == SUMMARY_SYSTEM:
        return "Summary: larger k."
    if system.startswith(OPTIMIZER_SYSTEM[:60]):
        current = re.search(r"<VARIABLE>(.*?)</VARIABLE>", text, flags=re.S).group(1)
        k = re.search(r"k = ([0-9.]+)", current)
        new_k = NEXT_K.get(k.group(1), "1.0") if k else "0.5"
        piston = re.search(r"Policy for (piston_\d+)", text).group(1)
        return f"Here it is.\n<IMPROVED_VARIABLE>{piston}: rise right of the ball. k = {new_k}, tau = 4" \
               "</IMPROVED_VARIABLE>"
    if "[PISTON_0 EVALUATION]" in text:
        n = int(re.search(r"from 0 to (\d+)", text).group(1)) + 1
        return "\n".join(f"[PISTON_{i} EVALUATION]\n- Performance assessment: slow.\n- Specific improvements: "
                         f"piston_{i} should use a larger k." for i in range(n))
    if "your height:" in text:                                   # an actor prompt
        return rule_like_pistonball_model(1.0, 4.0)(messages)
    return "The team was slow: the surface under the ball was flat."


def test_textgrad_loss_backward_summary_and_step():
    with LoopbackServer(scripted_model) as server:
        engine = LLMClient(server.config(), cache_dir=False)
        policy = Variable("piston_3: wait. k = 0.1", "Policy for piston_3")
        actions = Variable("actions", "actions of the pistons", predecessors=(policy,))
        loss = TextLoss("Evaluate the team.", engine)(actions)
        assert loss.value.startswith("The team was slow")
        loss.backward()
        assert actions.gradients and actions.gradients[0].text.startswith("Feedback")
        policy.add_gradient("one", "a")
        policy.add_gradient("two", "b")
        from jaxmarl_lab.textgrad import summarize_gradients
        summarize_gradients(policy, engine)
        assert [g.text for g in policy.gradients] == ["Summary: larger k."]
        log = TGD([policy], engine).step()
        assert policy.value == "piston_3: rise right of the ball. k = 0.5, tau = 4" and log[0]["updated"]
    with LoopbackServer(lambda m: "I would rather not use tags.") as server:   # no tags: keep, log, no crash
        engine = LLMClient(server.config(), cache_dir=False)
        keep = Variable("old text", "Policy for piston_0")
        keep.add_gradient("do better")
        log = TGD([keep], engine).step()
        assert keep.value == "old text" and not log[0]["updated"] and "kept" in log[0]["reason"]


def test_credit_parsing_cascade():
    sections, counts = parse_credit_sections("[PISTON_0 EVALUATION] a\n[PISTON_1 EVALUATION] b\n", 3)
    assert sections[0] == "a" and sections[1] == "b" and sections[2].startswith("[Global feedback")
    assert counts["global_fallback"] == 1
    sections, _ = parse_credit_sections("**piston_0**: up\n**piston_1**: down\n**piston_2**: stay", 3)
    assert [sections[i] for i in range(3)] == ["up", "down", "stay"]
    sections, _ = parse_credit_sections("1. first\n0. zeroth\n", 4)          # numbered list, piston 2 missing
    assert sections[0] == "zeroth" and sections[1] == "first" and sections[2].startswith("[Global")
    sections, _ = parse_credit_sections("[LEFT PISTONS EVALUATION] go\n[RIGHT PISTONS EVALUATION] rise", 6)
    assert sections[0] == "go" and sections[5] == "rise" and sections[3].startswith("[Global")


def test_policy_manager_format_and_legacy(tmp_path):
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps({"team_policy": {"policy": "all together"}}))
    manager = PolicyManager(legacy, 3)
    assert manager.texts(0)["piston_2"]["policy"] == "all together"
    fresh = PolicyManager(tmp_path / "new.json", 2)
    assert fresh.texts(4)["piston_1"]["policy"].startswith("The piston adjusts")
    fresh.save(1, {"piston_0": {"policy": "a"}, "piston_1": {"policy": "b"}}, {"avg_reward": 1.0})
    data = json.loads((tmp_path / "new.json").read_text())
    assert data["current_iteration"] == 1 and data["policies"]["iteration_1"]["agent_policies"]["piston_1"] == {
        "policy": "b"} and "timestamp" in data["policies"]["iteration_1"]


@pytest.mark.parametrize("paradigm", ["independent", "central_global", "central_credit"])
def test_each_paradigm_writes_the_tree_and_a_better_k_raises_the_reward(tmp_path, paradigm):
    """Rule pistons whose texts set k: the server's optimiser moves k 0.1 -> 0.5 -> 1.0."""
    policy_path = tmp_path / "policy.json"
    PolicyManager(policy_path, 20).save(0, {f"piston_{i}": {"policy": f"piston_{i}: k = 0.1, tau = 4"}
                                            for i in range(20)}, None)
    with LoopbackServer(scripted_model) as server:
        config = TrainingConfig(exp_name="run", paradigm=paradigm, policy_path=str(policy_path),
                                experiments_dir=str(tmp_path / "experiments"), num_iterations=2,
                                trajectories_per_iteration=2, num_pistons=20, agent_type="rule",
                                llm_config=server.config().to_dict(), cache_dir=False, seed=1,
                                save_gif=paradigm == "central_credit")
        trainer = MonteCarloTrainer(config)
        history = trainer.train_full()
        third = MonteCarloTrainer(config.__class__(**{**config.__dict__, "start_iteration": 2,
                                                      "num_iterations": 3})).train_full()
    run = tmp_path / "experiments" / "run"
    assert json.loads((run / "status.json").read_text())["status"] == "completed"
    assert json.loads((run / "config.json").read_text())["paradigm"] == paradigm
    for k in range(3):
        for j in range(2):
            episode = run / f"iteration_{k}" / f"episode_{j}"
            assert {"episode.json", "episode_log.txt", "trajectory.pkl"} <= {p.name for p in episode.iterdir()}
            assert (episode / f"episode_{j}.gif").exists() == (paradigm == "central_credit")
        assert (run / f"iteration_{k}" / "textgrad_evaluations.txt").exists()
        assert (run / f"iteration_{k}" / "credit_assignment_responses.txt").exists() == (paradigm == "central_credit")
    policies = json.loads(policy_path.read_text())["policies"]
    for k, value in ((1, "0.5"), (2, "1.0")):
        texts = policies[f"iteration_{k}"]["agent_policies"]
        assert texts["piston_7"]["policy"] == f"piston_7: rise right of the ball. k = {value}, tau = 4"
        assert policies[f"iteration_{k}"]["training_stats"]["paradigm"] == paradigm
    rewards = [h["avg_reward"] for h in history + third]
    assert rewards[2] > rewards[0] + 10, rewards


def test_llm_pistons_and_the_cli(tmp_path, monkeypatch, capsys):
    """LLM actors (answering like the rule) through the CLI; prompts and answers land in episode.json."""
    with LoopbackServer(scripted_model) as server:
        llm = tmp_path / "llm.json"
        llm.write_text(json.dumps(server.config().to_dict()))
        code = main(["--paradigm", "central_global", "--num_iterations", "1", "--trajectories_per_iteration", "1",
                     "--num_pistons", "4", "--max_cycles", "20", "--agent_type", "llm", "--llm_config", str(llm),
                     "--experiments_dir", str(tmp_path / "exp"), "--exp_name", "cli",
                     "--policy_path", str(tmp_path / "policy.json"), "--no_gif", "--no_cache"])
        assert code == 0
    episode = json.loads((tmp_path / "exp" / "cli" / "iteration_0" / "episode_0" / "episode.json").read_text())
    first = episode["transitions"][0]["agents"]["piston_2"]
    assert "your height:" in first["observation_to_gpt"] and first["gpt_query_response"].endswith(
        f"Action: {first['action']}")
    assert episode["token_stats"]["total_gpt_queries"] == 4 * len(episode["transitions"])
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    assert main(["--agent_type", "llm", "--model", "deepseek-chat", "--experiments_dir", str(tmp_path / "x"),
                 "--policy_path", str(tmp_path / "p.json")]) == 2
    assert "DEEPSEEK_API_KEY" in capsys.readouterr().err


def test_resume_reuses_episodes_and_a_failing_endpoint_marks_the_run_failed(tmp_path):
    policy_path = tmp_path / "policy.json"
    config = dict(exp_name="resume", paradigm="central_global", policy_path=str(policy_path),
                  experiments_dir=str(tmp_path / "exp"), num_iterations=1, trajectories_per_iteration=2,
                  num_pistons=6, max_cycles=30, agent_type="rule", cache_dir=False, save_gif=False)
    run = tmp_path / "exp" / "resume"
    with LoopbackServer(scripted_model) as server:
        first = MonteCarloTrainer(TrainingConfig(**config, llm_config=server.config().to_dict())).train_full()
        saved = {p: p.stat().st_mtime_ns for p in run.glob("iteration_0/episode_*/episode.json")}
        again = MonteCarloTrainer(TrainingConfig(**config, llm_config=server.config().to_dict())).train_full()
    assert len(saved) == 2 and {p: p.stat().st_mtime_ns for p in saved} == saved        # not regenerated
    assert again[0]["rewards"] == first[0]["rewards"]

    def broken(messages):
        if messages[0]["role"] == "system" and messages[0]["content"].startswith(OPTIMIZER_SYSTEM[:60]):
            raise RuntimeError("the optimiser is down")
        return scripted_model(messages)

    with LoopbackServer(broken) as server:
        trainer = MonteCarloTrainer(TrainingConfig(**{**config, "exp_name": "broken"},
                                                   llm_config=server.config().to_dict()))
        trainer.engine.max_retries = 1
        trainer.engine.backoff_s = 0.01
        with pytest.raises(LLMError, match="did not answer after 2 attempts"):
            trainer.train_full()
    status = json.loads((tmp_path / "exp" / "broken" / "status.json").read_text())
    assert status["status"] == "failed" and "optimiser is down" in status["error"]
    assert len(list((tmp_path / "exp" / "broken").glob("iteration_0/episode_*/episode.json"))) == 2


def test_crossplay_cli_with_an_llm_entry(tmp_path, capsys):
    from jaxmarl_lab.cli import main as cli
    from jaxmarl_lab.llm.testing import simple_bargainer_model

    with LoopbackServer(simple_bargainer_model()) as server:
        config = tmp_path / "loop.json"
        config.write_text(json.dumps({**server.config().to_dict(), "input_price_per_million": 1.0,
                                      "output_price_per_million": 2.0}))
        code = cli(["crossplay", "--env", "bargain", "--policies", f"llm:{config}", "baseline:greedy", "random",
                    "--num-games", "16", "--no-cache", "--quiet", "--json", str(tmp_path / "cp.json")])
        requests = len(server.requests)
    assert code == 0
    out = capsys.readouterr().out
    assert "llm:loop" in out and "cost $" in out and "0 unparseable" in out
    data = json.loads((tmp_path / "cp.json").read_text())
    usage = data["llm_usage"]["llm:loop"]
    assert usage["requests"] == requests == usage["decisions"] > 0 and usage["cost_usd"] > 0
    assert data["policy_names"] == ["llm:loop", "greedy", "random"]


def test_training_config_json_round_trip_never_writes_keys(tmp_path):
    config = TrainingConfig(exp_name="x", paradigm="independent", num_pistons=6,
                            llm_config={"model_string": "m", "base_url": "http://127.0.0.1:9/v1", "api_key": "sk-1"})
    config.to_json(tmp_path / "c.json")
    assert "sk-1" not in (tmp_path / "c.json").read_text()
    loaded = TrainingConfig.from_json(tmp_path / "c.json")
    assert loaded.paradigm == "independent" and loaded.num_pistons == 6 and loaded.frame_size == (64, 64)
    assert loaded.resolve_llm().base_url == "http://127.0.0.1:9/v1"
    (tmp_path / "bad.json").write_text(json.dumps({"paradigm": "central_global", "num_piston": 3}))
    with pytest.raises(ValueError, match="num_piston"):
        TrainingConfig.from_json(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="paradigm"):
        TrainingConfig(paradigm="telepathy")


def test_yaml_config_in_configs_loads():
    from pathlib import Path

    config = TrainingConfig.from_json(Path(__file__).resolve().parents[1] / "configs" / "textgrad_pistonball.yaml")
    assert config.paradigm == "central_credit" and config.num_pistons == 20 and config.agent_type == "llm"
