"""to_pettingzoo: every registered env passes PettingZoo's parallel_api_test; numpy in, numpy out."""

import warnings

import numpy as np
import pytest
from pettingzoo.test import parallel_api_test

from jaxmarl_lab import list_envs, make, to_pettingzoo


@pytest.mark.parametrize("name", list_envs())
def test_parallel_api_test_passes(name):
    env = to_pettingzoo(name, render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(env, num_cycles=max(200, make(name).max_steps + 5))
    complaints = [str(w.message) for w in caught if "agent" in str(w.message).lower()]
    assert not complaints, complaints  # e.g. "Live agent was not given reward"
    obs, infos = env.reset(seed=3)
    frame = env.render()
    assert isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3
    first = env.possible_agents[0]
    space = env.observation_space(first)
    assert space.contains(obs[first]), (name, obs[first])
    assert "action_mask" in infos[first]


def test_episode_matches_the_jax_env_and_rejects_illegal_actions():
    import jax

    env = to_pettingzoo("bargain")
    obs, infos = env.reset(seed=0)
    jax_env = make("bargain")
    jax_obs, _ = jax_env.reset(jax.random.split(jax.random.key(0))[1])
    np.testing.assert_allclose(obs["player_0"]["observation"], np.asarray(jax_obs[0]))
    mover = next(a for a in env.agents if infos[a]["action_mask"].any())
    waiting = next(a for a in env.agents if a != mover)
    assert not infos[waiting]["action_mask"].any()  # turn-based: the other player has no move
    illegal = np.flatnonzero(infos[mover]["action_mask"] == 0)
    if illegal.size:
        with pytest.raises(ValueError, match="illegal action"):
            env.step({mover: int(illegal[0]), waiting: 0})
    with pytest.raises(ValueError, match="must be an int"):
        env.step({mover: 999, waiting: 0})
    with pytest.raises(ValueError, match="unknown or finished"):
        env.step({"nobody": 0})
    total = dict.fromkeys(env.possible_agents, 0.0)
    while env.agents:  # play the first legal action until the game ends
        actions = {a: int(np.argmax(infos[a]["action_mask"])) for a in env.agents}
        obs, rewards, terminations, truncations, infos = env.step(actions)
        for a, r in rewards.items():
            total[a] += r
    assert all(terminations.values()) or all(truncations.values())
    assert env.agents == [] and all(np.isfinite(list(total.values())))
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


def test_unknown_env_and_bad_render_mode():
    with pytest.raises(ValueError):
        to_pettingzoo("no_such_env")
    with pytest.raises(ValueError, match="render_mode"):
        to_pettingzoo("kuhn_poker", render_mode="human")
