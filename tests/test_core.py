"""The shared library: registry, wrappers, evaluate, crossplay, CLI."""

import csv
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmarl_lab as jl
from jaxmarl_lab.cli import main as cli_main


def test_registry_and_make_errors():
    assert "bargain" in jl.list_envs()
    env = jl.make("bargain", num_rounds=2)
    assert env.max_steps == 4
    with pytest.raises(ValueError, match=r"unknown env 'bargian'.*Did you mean 'bargain'.*Valid envs: .*bargain"):
        jl.make("bargian")
    valid = "Valid keywords: quantities, value_range, num_rounds"
    with pytest.raises(TypeError, match=rf"unknown keyword.*'rounds'.*{valid}"):
        jl.make("bargain", rounds=2)


def test_env_equality_shares_compiled_programs():
    assert jl.make("bargain") == jl.make("bargain")
    assert hash(jl.make("bargain")) == hash(jl.make("bargain"))
    assert jl.make("bargain") != jl.make("bargain", num_rounds=2)


def test_episode_stats_wrapper_matches_evaluate():
    env = jl.make("bargain")
    num_envs, steps = 64, 60
    venv = jl.VmapEnv(jl.EpisodeStats(jl.AutoReset(env)), num_envs)
    policy = jl.baseline(env, "greedy")

    @jax.jit
    def run(key):
        obs, state = venv.reset(key)

        def body(carry, k):
            obs, state = carry
            mask = venv.action_mask(state)
            action = jax.vmap(jax.vmap(policy))(obs, mask, jax.random.split(k, (num_envs, 2)))
            obs, state, reward, done, info = venv.step(k, state, action)
            return (obs, state), (reward, done, info["returned_episode_returns"], info["returned_episode_length"])

        return jax.lax.scan(body, (obs, state), jax.random.split(key, steps))[1]

    rewards, dones, episode_returns, episode_lengths = jax.device_get(run(jax.random.key(0)))
    # greedy vs greedy: P1 offers nothing, P2 walks -> every episode is 2 steps long
    assert dones.sum() == num_envs * steps // 2
    assert (episode_lengths[dones] == 2).all()
    # the returned episode return equals the reward of the final step (nothing before it)
    np.testing.assert_allclose(episode_returns[dones], rewards[dones], atol=1e-6)
    assert (rewards[~dones] == 0).all()


def test_evaluate_validates_policies():
    env = jl.make("bargain")
    rand = jl.baseline(env, "random")
    with pytest.raises(ValueError, match="one Policy for every seat or a sequence of 2"):
        jl.evaluate(env, [rand], 10, jax.random.key(0))
    result = jl.evaluate(env, [rand, rand], 10, jax.random.key(0))
    assert result.returns.shape == (10, 2) and result.lengths.shape == (10,)
    assert 0.0 <= result.accept_rate <= 1.0
    with pytest.raises(AttributeError):
        result.nonexistent_rate  # noqa: B018


def test_evaluate_chunking_is_exact_and_deterministic():
    env = jl.make("bargain")
    rand = jl.baseline(env, "random")
    a = jl.evaluate(env, rand, 1000, jax.random.key(3), batch_size=300)
    b = jl.evaluate(env, rand, 1000, jax.random.key(3), batch_size=300)
    assert a.returns.shape == (1000, 2)
    np.testing.assert_array_equal(a.returns, b.returns)


def test_crossplay_structure_and_common_random_numbers(tmp_path):
    env = jl.make("bargain")
    names = ["random", "always_walk", "greedy"]
    result = jl.crossplay(env, {n: jl.baseline(env, n) for n in names}, 500, jax.random.key(0))
    assert result.names == names
    assert result.payoffs.shape == (3, 3, 2) and result.welfare.shape == (3, 3)
    assert result.accept_rate.shape == (3, 3) and result.payoff_stderr.shape == (3, 3, 2)
    # the always_walk row, the always_walk column and greedy-vs-greedy all end in WALK on the same deals
    walk = result.payoffs[1, 1]
    for i, j in [(1, 0), (1, 2), (0, 1), (2, 1), (2, 2)]:
        np.testing.assert_allclose(result.payoffs[i, j], walk, atol=1e-6)
        assert result.walk_rate[i, j] == 1.0
    # the cell equals evaluate() on the same pair up to sampling error
    single = jl.evaluate(env, [jl.baseline(env, "greedy"), jl.baseline(env, "random")], 4000, jax.random.key(9))
    np.testing.assert_allclose(result.payoffs[2, 0], single.mean_returns, atol=4 * 0.02)
    result.save_json(tmp_path / "x.json")
    data = json.loads((tmp_path / "x.json").read_text())
    assert data["policy_names"] == names and np.array(data["payoff_matrix"]).shape == (3, 3, 2)
    assert data["detailed_results"]["2_vs_0"]["row"] == "greedy"
    result.save_csv(tmp_path / "x.csv")
    rows = list(csv.DictReader(open(tmp_path / "x.csv")))
    assert len(rows) == 9 and {"accept_rate", "mean_welfare"} <= set(rows[0])
    table = result.table()
    assert "always_walk" in table and "W=" in table and len(table.splitlines()) == 3 + 3
    with pytest.raises(ValueError, match="two-player"):
        jl.crossplay(_FourSeatView(env), {"r": jl.baseline(env, "random")}, 10, jax.random.key(0))


class _FourSeatView(jl.Wrapper):
    num_agents = 4


def test_cli_baselines(tmp_path, capsys):
    out_json, out_csv = tmp_path / "t.json", tmp_path / "t.csv"
    code = cli_main(["baselines", "--env", "bargain", "--num-games", "300", "--quiet",
                     "--json", str(out_json), "--csv", str(out_csv)])
    assert code == 0
    printed = capsys.readouterr().out
    for name in jl.list_baselines(jl.make("bargain")):
        assert name in printed
    data = json.loads(out_json.read_text())
    assert len(data["policy_names"]) == 6 and data["num_games"] == 300
    assert len(list(csv.DictReader(open(out_csv)))) == 36


def test_cli_bad_input(capsys):
    assert cli_main(["baselines", "--env", "nope", "--num-games", "5", "--quiet"]) == 2
    assert "Valid envs" in capsys.readouterr().err
    assert cli_main(["baselines", "--env-arg", "round=2", "--num-games", "5", "--quiet"]) == 2
    assert "Valid keywords" in capsys.readouterr().err
    assert cli_main(["baselines", "--env-arg", "num_rounds=2", "--policies", "random", "greedy",
                     "--num-games", "50", "--quiet"]) == 0
    assert cli_main(["list-envs"]) == 0
    assert "bargain" in capsys.readouterr().out


def test_record_episode_and_cli_render(tmp_path, capsys):
    env = jl.make("bargain")
    seats = [jl.baseline(env, "fair_split"), jl.baseline(env, "greedy")]
    frames, result = jl.record_episode(env, seats, jax.random.key(0))
    # fair_split offers, greedy (P2) accepts or walks: two steps, three frames, all different
    assert int(result.lengths[0]) == 2 and frames.shape[0] == 3 and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[1], frames[2])
    same = jl.evaluate(env, seats, 1, jax.random.key(0))
    assert same.lengths[0] == 2
    out = tmp_path / "game.gif"
    assert cli_main(["render", "--policies", "fair_split", "greedy", "--out", str(out)]) == 0
    import imageio.v2 as imageio

    assert len(imageio.mimread(out)) == 3 and "3 frames" in capsys.readouterr().out
    assert cli_main(["render", "--policies", "a", "b", "c", "--out", str(out)]) == 2


def test_spaces():
    env = jl.make("bargain")
    space = env.action_space()
    assert space.n == 82 and space.contains(np.int32(81)) and not space.contains(np.int32(82))
    obs, _ = env.reset(jax.random.key(0))
    assert env.observation_space().contains(np.asarray(obs[0]))
    assert 0 <= int(space.sample(jax.random.key(0))) < 82
    assert jnp.asarray(obs).dtype == jnp.float32
