"""IPPO, MAPPO and the config-plus-entrypoint API: credit assignment, CLI runs, learning."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml

import jaxmarl_lab as jl
from algos import ippo, mappo
from algos.ppo_bargain import Transition as BargainTransition
from algos.ppo_bargain import turn_based_gae
from jaxmarl_lab.ppo import agent_gae

ROOT = Path(__file__).resolve().parents[1]


# ---- credit assignment --------------------------------------------------------------------------


def test_agent_gae_simultaneous_with_truncation_bootstrap():
    """Two steps of one env and one agent, by hand: the episode is truncated after step 0."""
    gamma, lam = 0.9, 0.8
    rewards = jnp.array([1.0, 2.0]).reshape(2, 1, 1)
    values = jnp.array([0.5, 0.25]).reshape(2, 1, 1)
    acting = jnp.ones((2, 1, 1), bool)
    done = jnp.array([True, False]).reshape(2, 1)
    final_values = jnp.array([3.0, 0.0]).reshape(2, 1, 1)
    last_values = jnp.array([[4.0]])
    for truncated, bootstrap in ((True, 3.0), (False, 0.0)):
        trunc = jnp.array([truncated, False]).reshape(2, 1)
        adv, targets, valid = agent_gae(rewards, values, acting, done, trunc, final_values, last_values,
                                        jnp.ones((1, 1), bool), gamma, lam)
        adv1 = 2.0 + gamma * 4.0 - 0.25
        adv0 = 1.0 + gamma * bootstrap - 0.5  # the next step belongs to a new episode
        np.testing.assert_allclose(adv.ravel(), [adv0, adv1], rtol=1e-6)
        np.testing.assert_allclose(targets.ravel(), [adv0 + 0.5, adv1 + 0.25], rtol=1e-6)
        assert bool(valid.all())


def test_agent_gae_equals_turn_based_gae_on_random_games():
    """With acting = the mover, per-agent GAE reproduces PPO-bargain's per-player GAE exactly."""
    T, N = 40, 16
    key = jax.random.key(3)
    k = jax.random.split(key, 5)
    seat = jax.random.randint(k[0], (T, N), 0, 2)
    done = jax.random.uniform(k[1], (T, N)) < 0.2
    reward = jax.random.normal(k[2], (T, N, 2))
    value = jax.random.normal(k[3], (T, N))
    last_seat = jax.random.randint(k[4], (N,), 0, 2)
    last_value = jnp.linspace(-1, 1, N)
    zeros = jnp.zeros((T, N))
    traj = BargainTransition(obs=zeros, mask=zeros, seat=seat, action=zeros, log_prob=zeros, value=value,
                             reward=reward, done=done, episode_returns=reward, episode_length=zeros, accepted=zeros,
                             learner_move=zeros, selfplay=zeros, learner_seat=zeros)
    ref_adv, ref_targets, ref_valid = turn_based_gae(traj, last_value, last_seat, 0.97, 0.9)
    acting = jax.nn.one_hot(seat, 2).astype(bool)
    adv, targets, valid = agent_gae(reward, jnp.broadcast_to(value[..., None], (T, N, 2)), acting, done,
                                    jnp.zeros((T, N), bool), jnp.zeros((T, N, 2)),
                                    jnp.broadcast_to(last_value[:, None], (N, 2)),
                                    jax.nn.one_hot(last_seat, 2).astype(bool), 0.97, 0.9)
    mover = lambda x: jnp.take_along_axis(x, seat[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(mover(adv), ref_adv, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(mover(valid)), np.asarray(ref_valid))
    np.testing.assert_allclose(mover(targets)[ref_valid], ref_targets[ref_valid], rtol=1e-5, atol=1e-6)
    assert not bool((valid & ~acting).any())  # only the mover's decision is a sample


# ---- configs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm,env,path", [
    ("ippo", None, "configs/ippo_mpe.yaml"),
    ("mappo", None, "configs/mappo_mpe.yaml"),
    ("mappo", "bargain", "configs/mappo_bargain.yaml"),
    ("ippo", "bucket_brigade", "configs/ippo_bucket_brigade.yaml"),
    ("ippo", "pistonball", "configs/ippo_pistonball.yaml"),
    ("mappo", "pistonball", "configs/mappo_pistonball.yaml"),
    ("nfsp", None, "configs/nfsp.yaml"),
    ("nfsp", "leduc_poker", "configs/nfsp_leduc.yaml"),
    ("nfsp", "bargain", "configs/nfsp_bargain.yaml"),
    ("deep_cfr", None, "configs/deep_cfr.yaml"),
    ("deep_cfr", "leduc_poker", "configs/deep_cfr_leduc.yaml"),
    ("deep_cfr", "bargain", "configs/deep_cfr_bargain.yaml"),
    ("psro", None, "configs/psro.yaml"),
    ("psro", "leduc_poker", "configs/psro_leduc.yaml"),
    ("psro", "bargain", "configs/psro_bargain.yaml"),
    ("ex2psro", None, "configs/ex2psro.yaml"),
    ("ex2psro", "bargain", "configs/ex2psro_bargain.yaml"),
    ("fcp", None, "configs/fcp.yaml"),
])
def test_yaml_configs_equal_the_defaults(algorithm, env, path):
    """Config fields equal the algorithm's defaults for the env; driver options (RunOptions) may follow."""
    from dataclasses import asdict, fields

    from jaxmarl_lab.config import RunOptions

    cfg = jl.default_cfg(algorithm, env=env)
    driver = {f.name for f in fields(RunOptions)}
    written = {k: v for k, v in yaml.safe_load((ROOT / path).read_text()).items() if k not in driver}

    assert written == asdict(cfg.to_config())


def test_default_cfg_aliases_iterations_and_errors():
    cfg = jl.default_cfg("ippo", env="mpe_simple_reference")
    assert (cfg.rollout_len, cfg.ppo_epochs, cfg.clip_param, cfg.entropy_coef, cfg.hidden_dim) == (
        cfg.rollout, cfg.update_epochs, cfg.clip, cfg.ent_coef, cfg.hidden_size)
    cfg.rollout_len, cfg.num_envs, cfg.num_iters, cfg.log_interval, cfg.eval_interval = 128, 4, 30, 8, 10
    config = cfg.to_config()
    assert config.total_timesteps == 30 * 4 * 128 and config.rollout == 128
    assert config.updates_per_chunk == 6 and config.num_updates == 30  # whole chunks dividing num_iters
    assert config.eval_interval == 10 * 4 * 128
    cfg.lr = "1e-3"
    assert cfg.to_config().lr == pytest.approx(1e-3)
    with pytest.raises(AttributeError, match="Did you mean 'clip_param'"):
        cfg.clip_parm = 0.1
    with pytest.raises(ValueError, match="Valid algorithms"):
        jl.default_cfg("ipo")
    with pytest.raises(ValueError, match="Did you mean 'mpe_simple_reference'"):
        jl.default_cfg("ippo", env="mpe_simple_referenc")
    on_bargain = jl.default_cfg("mappo", env="bargain").to_config()
    assert on_bargain.env == "bargain" and on_bargain.hidden_size == mappo.ENV_DEFAULTS["bargain"]["hidden_size"]
    with pytest.raises(ValueError, match="discrete-action"):
        ippo.make_train(ippo.Config(), jl.make("mpe_simple_reference", continuous_actions=True))


# ---- runs ---------------------------------------------------------------------------------------


def test_ippo_cli_smoke_load_policy_and_comm(tmp_path):
    code = ippo.main(["--config", str(ROOT / "configs/ippo_mpe.yaml"), "--num-envs", "8", "--rollout", "25",
                      "--total-timesteps", "800", "--updates-per-chunk", "2", "--eval-games", "50",
                      "--results-dir", str(tmp_path), "--quiet"])
    assert code == 0
    (run_dir,) = (tmp_path / "ippo").iterdir()
    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["kind"] == "team" and "mean_return" in final["summary"] and "mean_success" in final["summary"]
    assert (run_dir / "plots" / "training_curves.png").is_file()
    policy = jl.load_policy(run_dir)
    env = jl.make("mpe_simple_reference")
    result = jl.evaluate(env, policy, 20, jax.random.key(0))
    assert result.returns.shape == (20, 2) and np.isfinite(result.returns).all()
    report = jl.evaluate_comm(run_dir, episodes=50)
    assert 0 <= report.summary["positive_signalling"] <= np.log2(3) + 1e-6
    assert set(report.ablation) == {"zero", "shuffle"}


@pytest.mark.parametrize("env", ["mpe_simple_speaker_listener", "bargain"])
def test_mappo_cli_smoke(tmp_path, env):
    args = ["--env", env, "--num-envs", "8", "--rollout", "16", "--total-timesteps", "256", "--updates-per-chunk",
            "2", "--eval-games", "40", "--results-dir", str(tmp_path), "--quiet", "--agent-id", "true",
            "--share-actor", "false"]
    assert mappo.main(args) == 0
    (run_dir,) = (tmp_path / "mappo").iterdir()
    policy = jl.load_policy(run_dir)
    if env == "bargain":  # the seat is in the observation: one Policy plays both seats
        assert isinstance(policy, jl.Policy)
        assert "selfplay_welfare" in json.loads((run_dir / "final_eval.json").read_text())["summary"]
    else:  # agent-specific actors: one Policy per agent, in env.agents order
        assert isinstance(policy, tuple) and len(policy) == 2
    assert np.isfinite(jl.evaluate(jl.make(env), policy, 10, jax.random.key(1)).returns).all()


def test_cli_errors(capsys):
    assert ippo.main(["--env", "mpe_simple_reference", "--num-minibatches", "7", "--num-envs", "3",
                      "--rollout", "5"]) == 2
    assert "num_minibatches" in capsys.readouterr().err
    assert mappo.main(["--actor-lr", "1"]) == 2
    assert "unknown config key" in capsys.readouterr().err


def test_train_wrapper_learns_simple_reference(tmp_path):
    """IPPO through the tutorial API beats the random team (about -28) within 1.3M env steps."""
    cfg = jl.default_cfg("ippo", env="mpe_simple_reference", results_dir=str(tmp_path), quiet=True)
    cfg.num_iters, cfg.log_interval, cfg.eval_interval, cfg.eval_episodes = 160, 40, 0, 500
    result = jl.train_wrapper(cfg)
    assert result.exit_code == 0 and result.run_dir.is_dir()
    random_team = jl.evaluate(jl.make("mpe_simple_reference"), jl.baseline(jl.make("mpe_simple_reference"), "random"),
                              500, jax.random.key(5))
    random_return = float(random_team.returns.mean())
    learned = result.report["summary"]
    assert learned["mean_return"] > random_return + 20 * learned["mean_return_stderr"]
    assert learned["mean_return"] > -22.0
    rows = [r for r in result.metrics if r.get("loss") is not None]
    assert len(rows) == 160 and rows[-1]["episode_return"] > rows[0]["episode_return"] + 5


def test_mappo_learns_bargain_selfplay(tmp_path):
    """MAPPO self-play on bargain beats random self-play welfare after 400k env steps."""
    args = ["--config", str(ROOT / "configs/mappo_bargain.yaml"), "--num-envs", "64", "--rollout", "32",
            "--num-minibatches", "8", "--total-timesteps", "400000", "--eval-interval", "0",
            "--checkpoint-interval", "0", "--eval-games", "2000", "--results-dir", str(tmp_path), "--quiet"]
    assert mappo.main(args) == 0
    (run_dir,) = (tmp_path / "mappo").iterdir()
    summary = json.loads((run_dir / "final_eval.json").read_text())["summary"]
    env = jl.make("bargain")
    random_welfare = float(jl.evaluate(env, jl.baseline(env, "random"), 2000, jax.random.key(7)).welfare.mean())
    assert summary["selfplay_welfare"] > random_welfare + 5 * summary["selfplay_welfare_stderr"]
    assert summary["selfplay_welfare"] > 1.0
