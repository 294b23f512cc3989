"""Therapy simulator: the deterministic checks of spec therapy.md §6, perception, episode rules and
the baseline statistics of §5.5."""

from __future__ import annotations

import csv
import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmarl_lab as jl
from algos import ppo_therapy
from envs.therapy import (
    COMPLEMENT,
    DEFAULT_PATTERNS,
    MECHANISMS,
    MEMORY_WEIGHTS,
    PATTERNS,
    U_MAX,
    U_MID,
    U_MIN,
    Therapy,
    expected_payoffs,
    initial_memory,
    perceive,
)
from jaxmarl_lab.results import Run

U = jnp.asarray(U_MID)
COLD_WARM = (jnp.full(50, 6), jnp.full(50, 2))
HALF_AND_HALF = (jnp.full(50, 6), jnp.concatenate([jnp.full(25, 2), jnp.full(25, 6)]))


def client(memory, threshold=0.9):
    env = Therapy()
    return env.client_state(U, *memory, env.default_params.replace(threshold=jnp.float32(threshold)))


def test_memory_weights_and_midpoint_matrix():
    assert MEMORY_WEIGHTS[0] == pytest.approx(0.012028220, abs=1e-8)
    assert MEMORY_WEIGHTS[-1] == pytest.approx(0.024056441, abs=1e-8)
    assert MEMORY_WEIGHTS.sum() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_array_equal(U_MID.argmax(1), COMPLEMENT)  # row argmax = the complement map
    assert (U_MAX - U_MIN == 20).all()


def test_rs_bond_threshold_and_payoffs_cold_warm_memory():
    state = client(COLD_WARM)
    assert float(state.rs) == pytest.approx(-20.0, abs=1e-4)
    assert float(state.bond) == pytest.approx(0.0249244, abs=1e-4)
    assert float(state.rs_threshold) == pytest.approx(48.0, abs=1e-4)
    assert float(client(COLD_WARM, 0.8).rs_threshold) == pytest.approx(36.0, abs=1e-4)
    expected = {
        "bond_only": [-40, -56.511, -60, -56.511, -40, -28.255, -30, -28.255],
        "frequency_amplifier": [-40, -56.511, -60, -56.511, -40, -38.255, -38.255, -28.255],
        "conditional_amplifier": [-45, -63.574, -67.5, -63.574, -45, -31.787, -32.125, -31.787],
    }
    for name, values in expected.items():
        payoffs = expected_payoffs(U, *COLD_WARM, state.bond, MECHANISMS.index(name), 1.0)
        np.testing.assert_allclose(payoffs, values, atol=1e-3)
    probs = jax.nn.softmax(expected_payoffs(U, *COLD_WARM, state.bond, 0, 1.0) / 0.5)
    np.testing.assert_allclose(probs, [0, 0, 0, 0, 0, 0.4925, 0.0150, 0.4925], atol=1e-4)


def test_all_five_mechanisms_on_a_mixed_memory():
    state = client(HALF_AND_HALF)
    assert float(state.rs) == pytest.approx(8.037004, abs=1e-4)
    assert float(state.bond) == pytest.approx(0.209118, abs=1e-4)
    expected = [
        [-35.3617, -30.7235, -55.3617, -30.7235, -35.3617, -15.3617, -25.3617, -15.3617],
        [-35.3617, -41.4469, -60.0, -41.4469, -35.3617, -20.0721, -29.4365, -17.3991],
        [-39.782, -34.5639, -62.282, -34.5639, -39.782, -17.282, -29.0345, -17.282],
        [-35.3617, -33.2384, -58.0812, -33.2384, -35.3617, -16.3468, -26.2139, -15.7878],
        [-36.2861, -31.5266, -56.8089, -31.5266, -36.2861, -15.7633, -26.1298, -15.7633],
    ]
    # one compiled function serves every mechanism: the index is a traced argument
    payoffs = jax.jit(jax.vmap(lambda m: expected_payoffs(U, *HALF_AND_HALF, state.bond, m, 1.0)))(jnp.arange(5))
    np.testing.assert_allclose(payoffs, expected, atol=1e-3)


def test_perception_modal_substitution_and_tie_breaking():
    window_a = jnp.asarray([0] * 35 + [2] * 7 + [6] * 7 + [0])
    window_b = jnp.asarray([0] * 35 + [6] * 7 + [2] * 7 + [0])
    assert int(perceive(jnp.int32(3), window_a, 0.9, 0.5, True)[0]) == 6  # tie 2 vs 6: 6 is more recent
    assert int(perceive(jnp.int32(3), window_b, 0.9, 0.5, True)[0]) == 2
    assert int(perceive(jnp.int32(3), window_a, 0.1, 0.5, True)[0]) == 3  # draw < accuracy: seen right
    assert int(perceive(jnp.int32(3), window_a, 0.9, 0.5, False)[0]) == 3  # perception disabled


def _scripted_episode(env, state, actions, params=None):
    params = env.default_params if params is None else params
    out = []
    for i, a in enumerate(actions):
        obs, state, reward, done, info = env.step(jax.random.key(i), state, jnp.asarray([a]), params)
        out.append((obs, state, float(reward[0]), bool(done), info))
        if done:
            break
    return out


def test_dropout_only_after_session_ten_and_reward_formulas():
    env = Therapy(max_sessions=40, enable_perception=False)
    params = env.default_params
    # a client whose RS can only fall: memory of its best cells, therapist always answers badly
    mem_c, mem_t = jnp.full(50, 1), jnp.full(50, 3)  # (WD, WS): 60 on the midpoint
    state = env.client_state(U, mem_c, mem_t, params.replace(threshold=jnp.float32(1.0)))
    steps = _scripted_episode(env, state, [7] * 40, params.replace(threshold=jnp.float32(1.0)))
    assert len(steps) == 10 and steps[-1][3] and steps[-1][2] == -150.0  # dropout exactly at session 10
    assert all(r == 0.0 for _, _, r, _, _ in steps[:-1])
    assert bool(steps[-1][4]["terminated"]) and bool(steps[-1][1].dropped)
    # success: threshold just under the current RS -> success at session 1, reward 100 + 2 (max - 1)
    state = env.client_state(U, mem_c, mem_t, params.replace(threshold=jnp.float32(0.05)))
    steps = _scripted_episode(env, state, [3], params.replace(threshold=jnp.float32(0.05)))
    assert steps[0][3] and steps[0][2] == 100.0 + 2 * 39
    # the limit: neither success nor dropout -> truncated with reward 0
    short = Therapy(max_sessions=5, enable_perception=False)
    sp = short.default_params.replace(threshold=jnp.float32(1.0))
    state = short.client_state(U, *COLD_WARM, sp)
    steps = _scripted_episode(short, state, [2] * 5, sp)
    assert len(steps) == 5 and steps[-1][2] == 0.0 and bool(steps[-1][4]["truncated"])
    assert not bool(steps[-1][4]["terminated"])


def test_observation_history_layout():
    env = Therapy(max_sessions=40)
    obs, state = env.reset(jax.random.key(0))
    assert obs.shape == (1, 52) and float(obs[0, 1]) == 0.0 and (obs[0, 2:] == 8).all()
    pending = int(obs[0, 0])
    obs, state, *_ = env.step(jax.random.key(1), state, jnp.asarray([5]))
    np.testing.assert_array_equal(obs[0, 2:4], [pending, 5])
    assert (obs[0, 4:] == 8).all() and float(obs[0, 1]) == pytest.approx(1 / 40)
    for i in range(30):  # after 25 sessions the window slides: the 25 latest pairs, oldest first
        obs, state, _, done, _ = env.step(jax.random.key(2 + i), state, jnp.asarray([i % 8]))
        if done:
            break
    if int(state.session) > 25:
        assert not (obs[0, 2:] == 8).any() and int(obs[0, -1]) == (int(state.session) - 2) % 8
    assert Therapy(omniscient=True).obs_shape == (124,)


def test_initial_memory_patterns():
    keys = jax.random.split(jax.random.key(0), 200)
    for name, problem in (("cold_stuck", {5, 6, 7}), ("dominant_stuck", {0, 1, 7}), ("submissive_stuck", {3, 4, 5})):
        c, t = jax.vmap(initial_memory, in_axes=(0, None))(keys, PATTERNS.index(name))
        share = np.isin(np.asarray(c), list(problem)).mean()
        assert abs(share - (0.8 + 0.2 * 3 / 8)) < 0.02  # 80% from the problem octants, else uniform
    c, t = initial_memory(jax.random.key(1), PATTERNS.index("cold_warm"))
    assert (np.asarray(c) == 6).all() and (np.asarray(t) == 2).all()
    c, t = initial_memory(jax.random.key(1), PATTERNS.index("complementary_perfect"))
    np.testing.assert_array_equal(np.asarray(t), COMPLEMENT[np.asarray(c)])
    c, t = initial_memory(jax.random.key(1), PATTERNS.index("cold_stuck"), rl_era=False)
    problem = np.isin(np.asarray(c), [5, 6, 7])
    np.testing.assert_array_equal(np.asarray(t)[problem], np.array([0, 0, 0, 0, 0, 3, 2, 1])[np.asarray(c)[problem]])


def test_constructor_errors_and_pattern_lists():
    with pytest.raises(ValueError, match="unknown mechanism"):
        jl.make("therapy", mechanism="telepathy")
    with pytest.raises(ValueError, match="unknown pattern"):
        jl.make("therapy", pattern="cold_stuk")
    with pytest.raises(ValueError, match="threshold"):
        jl.make("therapy", threshold=1.5)
    env = jl.make("therapy", pattern=["cold_warm", "conflictual"])
    patterns = {int(env.reset(k)[1].pattern) for k in jax.random.split(jax.random.key(0), 30)}
    assert patterns == {PATTERNS.index("cold_warm"), PATTERNS.index("conflictual")}


def test_baseline_statistics_on_the_rl_vs_complementary_setting():
    """Spec §5.5 (original code, 200 episodes): complementary 13.0% success, 0.5% dropout;
    uniform random 0.0% success, 11.0% dropout."""
    env = jl.make("therapy", pattern="cold_stuck", threshold=0.8, entropy=0.1, bond_alpha=5.0, bond_offset=0.7,
                  baseline_accuracy=0.5)
    comp = jl.evaluate(env, jl.baseline(env, "complementary"), 2000, jax.random.key(0)).outcomes
    assert abs(comp["success"].mean() - 0.13) <= 0.03 and comp["dropout"].mean() < 0.02
    rand = jl.evaluate(env, jl.baseline(env, "random"), 2000, jax.random.key(1)).outcomes
    assert rand["success"].mean() < 0.005 and abs(rand["dropout"].mean() - 0.11) <= 0.03


def test_render_and_describe():
    env = Therapy()
    _, state = env.reset(jax.random.key(0))
    frame = np.asarray(jax.jit(env.render)(state))
    assert frame.shape == (240, 200, 3) and ((frame[..., 2] > 180) & (frame[..., 0] < 80)).sum() > 20
    assert "session 0" in env.describe(state) and "RS" in env.describe(state)


def test_therapy_net_shapes_and_ippo_smoke(tmp_path):
    import sys
    from pathlib import Path

    from jaxmarl_lab.networks import count_params, make_network

    net = make_network("therapy", 8, hidden_size=256)
    params = net.init(jax.random.key(0), jnp.zeros((52,)))
    # the original's counts (spec §5.1): actor 175,056 + critic 173,257 = 348,313
    assert count_params(params) == 348_313
    logits, value = net.apply(params, jnp.zeros((3, 52)))
    assert logits.shape == (3, 8) and value.shape == (3,)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from algos import ippo

    code = ippo.main(["--env", "therapy", "--env-kwargs", "pattern=cold_stuck,max_sessions=20", "--network", "therapy",
                      "--hidden-size", "32", "--num-envs", "8", "--rollout", "16", "--total-timesteps", "512",
                      "--updates-per-chunk", "2", "--eval-games", "20", "--results-dir", str(tmp_path), "--quiet"])
    assert code == 0
    run = next((tmp_path / "ippo").iterdir())
    policy = jl.load_policy(run)
    env = jl.make("therapy", pattern="cold_stuck", max_sessions=20)
    assert jl.evaluate(env, policy, 10, jax.random.key(0)).returns.shape == (10, 1)


def test_potential_shaping_telescopes_and_leaves_outcomes_alone():
    env = Therapy(max_sessions=6, enable_perception=False, potential_shaping=1.0, shaping_gamma=1.0)
    params = env.default_params.replace(threshold=jnp.float32(1.0))
    state = env.client_state(U, *COLD_WARM, params)
    steps = _scripted_episode(env, state, [2, 6, 2, 4, 2, 2], params)
    assert len(steps) == 6 and bool(steps[-1][4]["truncated"])  # no success, no dropout: all reward is shaping
    potential = lambda s: 100.0 * (float(s.rs) - float(s.rs_min)) / (float(s.rs_max) - float(s.rs_min))
    total = sum(r for _, _, r, _, _ in steps)
    assert total == pytest.approx(potential(steps[-1][1]) - potential(state), abs=1e-3)


def test_original_command_outputs_and_resume(tmp_path):
    """The original's flags; config, metrics, progress CSV (original columns + rates), policy_best,
    policy_final, periodic checkpoints; a stopped run resumes to the end with the same settings."""

    args = ["--experiment-name", "smoke", "--patterns", "cold_stuck", "dominant_stuck", "--mechanism",
            "conditional_amplifier", "--threshold", "0.8", "--max-sessions", "30", "--entropy", "0.1",
            "--total-timesteps", "2048", "--n-envs", "4", "--batch-size", "32", "--n-epochs", "2",
            "--learning-rate", "1e-3", "--gamma", "0.98", "--gae-lambda", "0.9", "--clip-range", "0.1",
            "--ent-coef", "0.02", "--hidden-size", "32", "--eval-freq", "640", "--eval-episodes", "20",
            "--save-freq", "1280", "--seed", "3", "--cpu", "--", "--updates-per-chunk", "1",
            "--results-dir", str(tmp_path), "--quiet"]
    assert ppo_therapy.main(args + ["--stop-at-step", "1024"]) == 0
    run = next((tmp_path / "ppo_therapy").iterdir())
    assert Run(run).metadata["status"] == "interrupted"
    assert ppo_therapy.main(["--resume-from", str(run), "--cpu", "--", "--results-dir", str(tmp_path),
                             "--quiet"]) == 0
    meta = Run(run).metadata
    assert meta["status"] == "completed" and meta["total_env_steps"] == 2048
    config = Run(run).load_config()
    assert config["env_kwargs"]["pattern"] == ["cold_stuck", "dominant_stuck"]
    assert config["env_kwargs"]["mechanism"] == "conditional_amplifier" and config["env_kwargs"]["max_sessions"] == 30
    assert (config["num_envs"], config["rollout"], config["num_minibatches"], config["update_epochs"]) == (4, 32, 4, 2)
    assert (config["lr"], config["gamma"], config["gae_lambda"], config["clip"], config["ent_coef"],
            config["hidden_size"], config["seed"]) == (1e-3, 0.98, 0.9, 0.1, 0.02, 32, 3)
    checkpoints = {p.name for p in (run / "checkpoints").iterdir()}
    assert {"policy_best", "policy_final", "step_1280", "step_2048"} <= checkpoints
    rows = list(csv.DictReader((run / "progress.csv").open()))
    assert list(rows[0]) == list(ppo_therapy.PROGRESS_COLUMNS)
    assert [int(r["step"]) for r in rows] == [640, 1280, 1920, 2048] and [r["epoch"] for r in rows] == list("1234")
    for r in rows:
        assert 0 <= float(r["test_success_rate"]) <= 1 and 0 <= float(r["test_dropout_rate"]) <= 1
        assert float(r["test_reward_std"]) >= 0 and 1 <= float(r["test_length_mean"]) <= 30
        assert float(r["duration"]) > 0
    assert any(r["train_reward_mean"] not in ("", None) for r in rows)
    env = jl.make("therapy", pattern="cold_stuck", max_sessions=30)
    for name in ("best", "final"):
        assert jl.evaluate(env, jl.load_policy(run, name), 5, jax.random.key(0)).returns.shape == (5, 1)


def test_progress_rows_pool_training_episodes():
    """train_reward_std pools per-update means and spreads weighted by episode counts."""
    a, b = np.array([1.0, 3.0, 5.0]), np.array([10.0])
    rows = [{"episodes": 3, "episode_return": a.mean(), "episode_return_std": a.std(), "episode_length": 10.0,
             "episode_success": 1 / 3, "episode_dropout": 0.0},
            {"episodes": 1, "episode_return": 10.0, "episode_return_std": 0.0, "episode_length": 20.0,
             "episode_success": 0.0, "episode_dropout": 1.0}]
    pooled = ppo_therapy._pooled(rows)
    both = np.concatenate([a, b])
    assert pooled["train_reward_mean"] == pytest.approx(both.mean())
    assert pooled["train_reward_std"] == pytest.approx(both.std())
    assert pooled["train_length_mean"] == pytest.approx(12.5) and pooled["train_success_rate"] == pytest.approx(0.25)
    assert pooled["train_dropout_rate"] == pytest.approx(0.25)


def test_progress_writer_appends_what_a_full_rebuild_writes(tmp_path):
    """The incremental progress writer reads each metrics row once, leaves a half-written row for later,
    follows a header rewrite (new metric keys), and ends with the same file as a rebuild from scratch."""
    from jaxmarl_lab.results import ResultsManager

    run = ResultsManager(tmp_path).create_run(algorithm="ppo_therapy", env="therapy", seed=0, config={})
    writer = ppo_therapy.ProgressWriter()
    update = lambda step, ret: {"env_steps": step, "episodes": 2, "episode_return": ret, "episode_return_std": 1.0,
                                "episode_length": 5.0, "episode_success": 0.5, "episode_dropout": 0.0}
    run.log_metrics(1, update(10, 1.0))
    run.log_metrics(2, update(20, 3.0))
    run.log_metrics(3, {"env_steps": 20, "eval/mean_return": 7.0, "eval/std_return": 0.5, "eval/mean_length": 4.0,
                        "eval/time_s": 0.1})  # new keys: metrics.csv is rewritten with a wider header
    writer(run)
    run.log_metrics(4, update(30, 5.0))
    with open(run.path / "metrics.csv", "a") as fh:
        fh.write("5,0,40,2")  # a row caught mid-write is not consumed
    writer(run)
    assert writer.cursor[1] < (run.path / "metrics.csv").stat().st_size
    with open(run.path / "metrics.csv", "a") as fh:
        fh.write(",9.0,1.0,5.0,0.5,0.0,,,,\n")
    run.log_metrics(6, {"env_steps": 40, "eval/mean_return": 8.0, "eval/std_return": 0.5, "eval/mean_length": 4.0,
                        "eval/time_s": 0.1})
    writer(run)
    incremental = (run.path / "progress.csv").read_text()
    assert incremental == ppo_therapy.write_progress(run).read_text() == (run.path / "progress.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(incremental)))
    assert [r["epoch"] for r in rows] == ["1", "2"] and [r["step"] for r in rows] == ["20", "40"]
    assert float(rows[0]["train_reward_mean"]) == pytest.approx(2.0)
    assert float(rows[1]["train_reward_mean"]) == pytest.approx(7.0)  # pooled over steps 30 and 40 (5 and 9)


def test_therapy_table_cli(tmp_path):
    """25 conditions per policy in one program: complementary beats random everywhere on success,
    random drops out most on mixed_random (its initial RS is highest); CSV and heatmap written."""

    from jaxmarl_lab.cli import main as cli

    assert cli(["therapy-table", "--episodes", "200", "--env-arg", "threshold=0.8", "--env-arg", "entropy=0.1",
                "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "therapy_table.csv").open()))
    assert len(rows) == 2 * 25 and (tmp_path / "therapy_table.png").stat().st_size > 10_000
    by = {(r["policy"], r["mechanism"], r["pattern"]): r for r in rows}
    comp = [float(r["success_rate"]) for r in rows if r["policy"] == "complementary"]
    assert min(comp) > 0.03 and all(float(r["success_rate"]) == 0 for r in rows if r["policy"] == "random")
    assert all(float(r["paired_z"]) < -2 for r in rows if r["policy"] == "random")  # paired on the same clients
    for mechanism in MECHANISMS:
        mixed = float(by[("random", mechanism, "mixed_random")]["dropout_rate"])
        assert mixed > 0.25 and mixed > max(float(by[("random", mechanism, p)]["dropout_rate"])
                                            for p in ("dominant_stuck", "submissive_stuck", "cold_warm"))


def test_ppo_therapy_config_has_the_original_settings():
    """configs/ppo_therapy.yaml = spec §5.2: 8 envs x 64 steps, 10 epochs of minibatches of 64, lr 3e-4,
    entropy bonus 0.01, gamma 0.99, lambda 0.95, clip 0.2, seed 42, 500k steps, 100 eval episodes,
    checkpoints every 10k; env defaults of §3.1."""
    import yaml

    from algos import ippo
    from jaxmarl_lab.config import build

    path = ppo_therapy.DEFAULT_CONFIG
    config = build(ippo.Config, yaml.safe_load(path.read_text()))
    assert (config.num_envs, config.rollout, config.update_epochs) == (8, 64, 10)
    assert config.num_envs * config.rollout // config.num_minibatches == 64
    assert (config.lr, config.ent_coef, config.gamma, config.gae_lambda, config.clip) == (3e-4, 0.01, 0.99, 0.95, 0.2)
    assert (config.seed, config.total_timesteps, config.eval_games, config.checkpoint_interval) == (42, 500_000, 100,
                                                                                                    10_000)
    assert (config.network, config.hidden_size, config.anneal_lr) == ("therapy", 256, False)
    env = jl.make("therapy", **config.env_kwargs)
    assert env.patterns == DEFAULT_PATTERNS and env.mechanism == "frequency_amplifier"
    assert (env.threshold, env.entropy, env.max_sessions, env.bond_alpha, env.bond_offset) == (0.9, 0.5, 100, 5.0, 0.7)
