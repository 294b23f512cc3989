"""envs/mpe.py against PettingZoo's mpe2 (v3): step-by-step parity from copied reset states."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmarl_lab as jl
from envs.mpe import MPEState

MPE2_MODULES = {"simple_reference": "simple_reference_v3", "simple_speaker_listener": "simple_speaker_listener_v4",
                "simple_spread": "simple_spread_v3"}
EPISODES = 200


def mpe2_state(scenario, world):
    """Our state from an mpe2 world (goal[i] = the landmark agent i must reach)."""
    entities = world.agents + world.landmarks
    landmark = lambda entity: world.landmarks.index(entity)
    if scenario == "simple_reference":
        goal = [landmark(world.agents[1].goal_b), landmark(world.agents[0].goal_b)]
    elif scenario == "simple_speaker_listener":
        goal = [landmark(world.agents[0].goal_b)] * 2
    else:
        goal = [0] * len(world.agents)
    return MPEState(p_pos=np.stack([e.state.p_pos for e in entities]).astype(np.float32),
                    p_vel=np.stack([e.state.p_vel for e in entities]).astype(np.float32),
                    c=np.stack([a.state.c for a in world.agents]).astype(np.float32),
                    goal=np.asarray(goal, np.int32), step=np.int32(0))


def stack(states):
    return jax.tree_util.tree_map(lambda *x: jnp.asarray(np.stack(x)), *states)


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
@pytest.mark.parametrize("scenario", list(MPE2_MODULES))
def test_parity_with_mpe2(scenario, continuous):
    module = importlib.import_module(f"mpe2.{MPE2_MODULES[scenario]}")
    reference = module.parallel_env(max_cycles=25, continuous_actions=continuous)
    env = jl.make(f"mpe_{scenario}", continuous_actions=continuous)
    rng = np.random.default_rng(0)
    starts, actions, observations, rewards, lengths, step_states = [], [], [], [], [], []
    for episode in range(EPISODES):
        obs, _ = reference.reset(seed=episode)
        starts.append(mpe2_state(scenario, reference.unwrapped.world))
        first = [obs[a] for a in reference.agents]
        episode_actions, episode_obs, episode_rewards = [], [], []
        steps = 0
        while reference.agents:
            step_states.append(mpe2_state(scenario, reference.unwrapped.world).replace(step=np.int32(steps)))
            joint = {a: reference.action_space(a).sample() for a in reference.agents}
            if continuous:
                joint = {a: rng.uniform(0, 1, reference.action_space(a).shape).astype(np.float32) for a in joint}
            obs, reward, terminated, truncated, _ = reference.step(joint)
            steps += 1
            row = [np.asarray(joint[a]) for a in env.agents]
            width = env.action_space().shape[0] if continuous else None
            episode_actions.append(np.stack([np.pad(r, (0, width - r.shape[0])) for r in row]) if continuous
                                   else np.asarray(row, np.int32))
            episode_obs.append([np.asarray(obs[a]) for a in env.agents])
            episode_rewards.append([reward[a] for a in env.agents])
            assert not any(terminated.values())
        lengths.append(steps)
        actions.append(np.stack(episode_actions))
        observations.append(episode_obs)
        rewards.append(np.asarray(episode_rewards))
        if episode == 0:  # the first observation of the copied state matches too
            ours = np.asarray(env._observations(jax.tree_util.tree_map(jnp.asarray, starts[0])))
            for i, size in enumerate(env.obs_sizes):
                np.testing.assert_allclose(ours[i, :size], first[i], atol=1e-5)
    assert set(lengths) == {25}

    @jax.jit
    def rollout(state, episode_actions):
        def body(state, action):
            obs, state, reward, done, info = env.step(jax.random.key(0), state, action)
            return state, (obs, reward, done, info["truncated"])

        return jax.lax.scan(body, state, episode_actions)[1]

    def check(obs, reward, atol):
        np.testing.assert_allclose(reward, np.stack(rewards), atol=atol)
        for i, size in enumerate(env.obs_sizes):
            expected = np.stack([[step[i] for step in episode] for episode in observations])
            np.testing.assert_allclose(obs[:, :, i, :size], expected, atol=atol)
            assert not obs[:, :, i, size:].any()

    # every single step from mpe2's own state: equal within 1e-5 for all scenarios
    one_step = jax.jit(jax.vmap(lambda s, a: env.step(jax.random.key(0), s, a)))
    states = stack(step_states)
    obs, _, reward, done, info = jax.device_get(one_step(states, jnp.asarray(np.concatenate(actions))))
    shape = (EPISODES, 25)
    check(obs.reshape(shape + obs.shape[1:]), reward.reshape(shape + reward.shape[1:]), 1e-5)
    assert done.reshape(shape)[:, -1].all() and not done.reshape(shape)[:, :-1].any()

    # whole episodes from the copied reset state. Without contacts float32 stays within 1e-5 of
    # mpe2's float64; simple_spread's stiff contact force (margin 0.001) amplifies the rounding
    # over 25 steps, so its free-running rollouts agree to 1e-3.
    stacked = stack(starts)
    obs, reward, done, truncated = jax.device_get(jax.vmap(rollout)(stacked, jnp.asarray(np.stack(actions))))
    check(obs, reward, 1e-3 if scenario == "simple_spread" else 1e-5)
    assert done[:, -1].all() and not done[:, :-1].any() and truncated[:, -1].all()


@pytest.mark.parametrize("name", ["mpe_simple_reference", "mpe_simple_speaker_listener", "mpe_simple_spread"])
def test_api_conformance(name):
    env = jl.make(name)
    obs, state = jax.jit(env.reset)(jax.random.key(0))
    assert obs.shape == (env.num_agents, env.obs_dim) and obs.dtype == jnp.float32
    mask = env.action_mask(state)
    assert mask.shape == (env.num_agents, env.num_actions) and mask.any(axis=1).all()
    assert env.global_state(state).shape == (sum(env.obs_sizes),)
    venv = jl.VmapEnv(jl.AutoReset(env), 8)
    obs, states = venv.reset(jax.random.key(1))
    actions = jax.vmap(jax.vmap(jl.uniform_legal_action))(jax.random.split(jax.random.key(2), (8, env.num_agents)),
                                                             jax.vmap(env.action_mask)(states))
    obs2, states2, reward, done, info = jax.jit(venv.step)(jax.random.key(3), states, actions)
    assert reward.shape == (8, env.num_agents) and np.isfinite(np.asarray(reward)).all()
    frame = jax.jit(env.render)(state)
    assert frame.dtype == jnp.uint8 and frame.ndim == 3
    result = jl.evaluate(env, jl.Policy(None, lambda p, o, m, k: jl.uniform_legal_action(k, m)), 64,
                         jax.random.key(4))
    assert (result.lengths == 25).all()
    with pytest.raises(ValueError, match="valid scenarios"):
        jl.make(name, scenario="simple_tag")
