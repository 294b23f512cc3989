"""Bucket Brigade: rules on hand-made states, statistical parity with the published numbers (spec
bucket_brigade.md §6.1-6.2), scripted agents and the variants."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmarl_lab as jl
from envs.bucket_brigade import (
    BURNING,
    RUINED,
    SAFE,
    SCENARIOS,
    BucketBrigade,
    scenario_params,
    stack_params,
)

REST, WORK = 0, 1


def state_with(env: BucketBrigade, houses, night: int = 0, params=None):
    _, state = env.reset(jax.random.key(0), params)
    return state.replace(houses=jnp.asarray(houses, jnp.int32), night=jnp.asarray(night, jnp.int32))


def actions(env, triples):
    return jnp.asarray(triples, jnp.int32)


def test_ownership_is_house_mod_agents_and_layout_sizes():
    env = BucketBrigade()
    owned = [tuple(np.flatnonzero(env.ownership[i])) for i in range(4)]
    assert owned == [(0, 4, 8), (1, 5, 9), (2, 6), (3, 7)]
    assert env.obs_shape == (42,) and env.num_actions == 40 and env.action_factors == (10, 2, 2)
    assert BucketBrigade(obs_layout="legacy").obs_shape == (36,)
    assert BucketBrigade(scenario="v2_minimal").obs_shape == (34,)
    assert not BucketBrigade(scenario="v2_minimal").ownership[2:].any()  # N > H: agents 2, 3 own nothing
    obs, _ = env.reset(jax.random.key(1))
    np.testing.assert_array_equal(obs[:, -4:], np.eye(4))
    np.testing.assert_allclose(obs[0, 26:38], [0.25, 0.5, 0.02, 100, 100, 20, 0, 40, 0, 0.5, 12, 4])


def test_action_forms_agree():
    env = BucketBrigade()
    state = state_with(env, [BURNING] + [SAFE] * 9, params=env.default_params.replace(rho=jnp.float32(0)))
    flat = env.encode_action(jnp.array([0, 3, 5, 9]), jnp.array([1, 0, 1, 0]), jnp.array([0, 1, 1, 0]))
    triples = jnp.array([[0, 1, 0], [3, 0, 1], [5, 1, 1], [9, 0, 0]])
    key = jax.random.key(2)
    a = env.step(key, state, flat)
    b = env.step(key, state, triples)
    np.testing.assert_array_equal(a[1].last_actions, b[1].last_actions)
    np.testing.assert_allclose(a[2], b[2])
    legacy = env.step(key, state, triples[:, :2])  # signal := mode
    np.testing.assert_array_equal(legacy[1].signals, [1, 0, 1, 0])
    with pytest.raises(ValueError, match="shape"):
        env.step(key, state, jnp.zeros((3,), jnp.int32))


@pytest.mark.parametrize("workers", [0, 1, 2, 4])
def test_extinguish_probability_by_frequency_and_burn_out(workers):
    env = BucketBrigade()
    params = env.default_params.replace(rho=jnp.float32(0.0), kappa=jnp.float32(0.5))
    state = state_with(env, [SAFE, SAFE, SAFE, BURNING] + [SAFE] * 6, params=params)
    act = actions(env, [[3, WORK if i < workers else REST, 0] for i in range(4)])
    n = 20_000
    houses = jax.vmap(lambda k: env.step(k, state, act, params)[1].houses)(jax.random.split(jax.random.key(3), n))
    saved = np.asarray(houses[:, 3] == SAFE)
    assert set(np.unique(np.asarray(houses[:, 3]))) <= {SAFE, RUINED}  # a fire lives exactly one night
    expected = 1 - 0.5 ** workers
    assert abs(saved.mean() - expected) < 4 * np.sqrt(max(expected * (1 - expected), 1e-4) / n)
    assert (np.asarray(houses[:, [0, 1, 2, 4, 5, 6, 7, 8, 9]]) == SAFE).all()


def test_ignition_only_on_safe_houses_including_just_saved():
    env = BucketBrigade()
    params = env.default_params.replace(rho=jnp.float32(1.0), kappa=jnp.float32(1.0))
    state = state_with(env, [BURNING, BURNING, RUINED] + [SAFE] * 7, params=params)
    act = actions(env, [[0, WORK, 1], [9, REST, 0], [9, REST, 0], [9, REST, 0]])
    _, new, *_ = env.step(jax.random.key(4), state, act, params)
    # house 0 saved then re-ignited; house 1 burned out; the ruined house stays ruined
    np.testing.assert_array_equal(new.houses, [BURNING, RUINED, RUINED] + [BURNING] * 7)


def test_rewards_on_a_hand_made_night():
    env = BucketBrigade()  # default: R=P=100, c=0.5, c_rest=0.5, r_own 20, p_own 40
    params = env.default_params.replace(rho=jnp.float32(0.0), kappa=jnp.float32(1.0))
    state = state_with(env, [BURNING, SAFE, RUINED, SAFE, SAFE, BURNING, SAFE, SAFE, SAFE, SAFE], params=params)
    # agent 0 saves house 0 (its own); nobody works house 5 (agent 1's) -> ruined
    act = actions(env, [[0, WORK, 1], [1, REST, 0], [2, WORK, 0], [3, REST, 1]])
    _, new, reward, done, _ = env.step(jax.random.key(5), state, act, params)
    np.testing.assert_array_equal(new.houses, [SAFE, SAFE, RUINED, SAFE, SAFE, RUINED, SAFE, SAFE, SAFE, SAFE])
    team = 100 * 8 / 10 - 100 * 2 / 10
    expected = np.array([-0.5 + 20 + team, 0.5 - 40 + team, -0.5 - 40 + team, 0.5 + team])
    np.testing.assert_allclose(reward, expected, rtol=1e-6)
    assert float(new.team_return) == pytest.approx(expected.sum(), rel=1e-6)
    assert not bool(done)


def test_first_night_save_is_counted():
    env = BucketBrigade()
    params = env.default_params.replace(rho=jnp.float32(0.0), kappa=jnp.float32(1.0))
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(houses=jnp.asarray([SAFE, BURNING] + [SAFE] * 8, jnp.int32))
    act = actions(env, [[1, REST, 0], [1, WORK, 1], [1, REST, 0], [1, REST, 0]])
    _, _, reward, _, _ = env.step(jax.random.key(6), state, act, params)
    assert float(reward[1]) == pytest.approx(-0.5 + 20 + 100)  # own save on night 0 pays r_own


def test_termination_rules():
    rest = actions(BucketBrigade(), [[0, REST, 0]] * 4)
    for termination, expect_some_ruined in (("python", True), ("rust", False)):
        env = BucketBrigade(termination=termination)
        params = env.default_params.replace(rho=jnp.float32(0.0))
        some_ruined = state_with(env, [RUINED] + [SAFE] * 9, night=12, params=params)
        assert bool(env.step(jax.random.key(0), some_ruined, rest, params)[3]) == expect_some_ruined
        too_early = state_with(env, [SAFE] * 10, night=11, params=params)
        assert not bool(env.step(jax.random.key(0), too_early, rest, params)[3])  # t = 11 < T_min
        all_safe = state_with(env, [SAFE] * 10, night=12, params=params)
        assert bool(env.step(jax.random.key(0), all_safe, rest, params)[3])
        all_ruined = state_with(env, [RUINED] * 10, night=12, params=params)
        assert bool(env.step(jax.random.key(0), all_ruined, rest, params)[3])
    capped = BucketBrigade(termination="rust", max_nights=20)
    params = capped.default_params.replace(rho=jnp.float32(0.0))
    state = state_with(capped, [RUINED] + [SAFE] * 9, night=19, params=params)
    _, _, _, done, info = capped.step(jax.random.key(0), state, rest, params)
    assert bool(done) and bool(info["truncated"]) and not bool(info["terminated"])


# ---- statistical parity (spec §6.1, §6.2) ----------------------------------------------------------

#: uniform-random per-night team reward, n = 1000, with the published 95% bootstrap intervals
RANDOM_REFERENCE = {
    "default": (244.86, 257.51), "easy": (352.07, 358.06), "hard": (118.62, 130.63),
    "trivial_cooperation": (399.98, 400.01), "early_containment": (292.88, 301.55),
    "greedy_neighbor": (288.46, 297.13), "sparse_heroics": (240.99, 251.08), "rest_trap": (298.63, 307.07),
    "chain_reaction": (221.96, 232.70), "deceptive_calm": (72.68, 84.49), "overcrowding": (116.93, 123.42),
    "mixed_motivation": (218.83, 229.26), "minimal_specialization": (-93.31, -82.16),
    "positional_default": (244.36, 257.01), "asym_b05_k09_c05": (-83.88, -72.81),
    "asym_b09_k09_c05": (-83.88, -72.81),
}


def test_uniform_random_team_reward_inside_published_intervals_for_every_scenario():
    env = BucketBrigade()  # python rule; every scenario above shares H = 10 and bernoulli mode
    names = list(RANDOM_REFERENCE)
    results = jl.evaluate_params(env, jl.baseline(env, "random"), 4000, jax.random.key(7),
                                 stack_params([scenario_params(n) for n in names]))
    outside = {}
    for name, result in zip(names, results, strict=True):
        lo, hi = RANDOM_REFERENCE[name]
        mean = float(result.outcomes["team_reward_per_step"].mean())
        if not lo <= mean <= hi:
            outside[name] = (round(mean, 2), (lo, hi))
    assert not outside, outside
    nights = results[names.index("default")].outcomes["nights"]
    assert np.median(nights) == 13 and nights.min() == 13  # minimum length T_min + 1


def _team_reward(env, policy, episodes, seed, params=None) -> tuple[float, float]:
    result = jl.evaluate(env, policy, episodes, jax.random.key(seed), params)
    per_step = result.outcomes["team_reward_per_step"]
    return float(per_step.mean()), float(per_step.std(ddof=1) / np.sqrt(len(per_step)))


def test_trivial_cooperation_is_exact():
    env = BucketBrigade(scenario="trivial_cooperation")
    result = jl.evaluate(env, jl.baseline(env, "random"), 1000, jax.random.key(8))
    assert (result.lengths == 13).all()
    per_step = result.outcomes["team_reward_per_step"]
    assert 399.98 <= per_step.mean() <= 400.02
    assert _team_reward(env, jl.baseline(env, "always_rest"), 50, 0)[0] == pytest.approx(402.0)  # 400 + 4 x 0.5


@pytest.mark.parametrize("scenario, name, reference, half_width", [
    ("rest_trap", "specialist", 386.60, 0.43),  # n = 10,000, CI [386.17, 387.03]
    ("minimal_specialization", "specialist", -28.38, 1.38),  # n = 10,000, CI [-29.75, -26.99]
    ("rest_trap", "always_rest", 288.55, None),  # n = 2,000 screen, no interval published
])
def test_scripted_baselines_match_published_numbers(scenario, name, reference, half_width):
    env = BucketBrigade(scenario=scenario)
    mean, stderr = _team_reward(env, jl.baseline(env, name), 10_000, 9)
    reference_se = half_width / 1.96 if half_width else stderr * np.sqrt(10_000 / 2_000)
    assert abs(mean - reference) < 3 * np.hypot(stderr, reference_se), (mean, stderr)


# ---- scripted agents --------------------------------------------------------------------------


def _decisions(env, policy, obs, n=4000, seed=10):
    """(house, mode, signal) of ``n`` independent draws of one policy on one observation."""
    mask = jnp.ones((env.num_actions,), bool)
    acts = jax.vmap(lambda k: policy.act(policy.params, obs, mask, k))(jax.random.split(jax.random.key(seed), n))
    return [np.asarray(x) for x in env.decode_action(acts)]


@pytest.mark.parametrize("archetype, rate", [("free_rider", 0.02), ("firefighter", 0.9), ("hero", 1.0),
                                             ("coordinator", 0.48), ("liar", 0.42)])
def test_simplified_heuristic_work_rates(archetype, rate):
    env = BucketBrigade()
    obs, _ = env.reset(jax.random.key(0))
    _, mode, signal = _decisions(env, jl.baseline(env, archetype, variant="simplified"), obs[1])
    assert abs(mode.mean() - rate) < 4 * np.sqrt(max(rate * (1 - rate), 1e-3) / len(mode))
    honesty = {"free_rider": 0.7, "firefighter": 1.0, "hero": 1.0, "coordinator": 0.9, "liar": 0.1}[archetype]
    assert abs((signal == mode).mean() - honesty) < 0.04


def test_simplified_heuristic_targets_fires():
    env = BucketBrigade()
    _, state = env.reset(jax.random.key(0))
    state = state.replace(houses=jnp.asarray([SAFE] * 6 + [BURNING, SAFE, BURNING, SAFE], jnp.int32))
    obs = env._observations(state, env.default_params)
    house, mode, _ = _decisions(env, jl.baseline(env, "hero"), obs[2])
    assert (mode == WORK).all() and set(np.unique(house)) == {6, 8}  # own house 2 is safe: a random fire
    own_first = [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # always works, own house first
    state = state.replace(houses=state.houses.at[2].set(BURNING))
    obs = env._observations(state, env.default_params)
    house, mode, _ = _decisions(env, jl.baseline(env, "heuristic", genome=own_first), obs[2])
    assert (house == 2).all() and (mode == WORK).all()


def test_full_heuristic_prefers_fires_and_repeats_with_fatigue():
    env = BucketBrigade()
    _, state = env.reset(jax.random.key(0))
    state = state.replace(houses=jnp.asarray([SAFE] * 7 + [BURNING, SAFE, SAFE], jnp.int32))
    obs = env._observations(state, env.default_params)
    hero = jl.baseline(env, "hero", variant="full")
    house, mode, signal = _decisions(env, hero, obs[0])
    assert (mode == WORK).all() and (signal == 1).all()  # intent 1, honest, no exploration
    counts = np.bincount(house, minlength=10)
    assert counts[7] > counts[[1, 2, 3, 4, 5, 6, 8, 9]].max()  # the burning house scores highest (own is 0)
    # fatigue 0.9: after a first night the hero mostly repeats its previous (house, mode)
    later = state.replace(last_actions=state.last_actions.at[0].set(jnp.array([4, REST, 0])),
                          positions=state.positions.at[0].set(4), night=jnp.asarray(3, jnp.int32))
    house, mode, _ = _decisions(env, hero, env._observations(later, env.default_params)[0])
    assert abs(((house == 4) & (mode == REST)).mean() - 0.9) < 0.03


def test_specialist_always_rest_and_evolved():
    env = BucketBrigade()
    _, state = env.reset(jax.random.key(0))
    state = state.replace(houses=jnp.asarray([SAFE] * 4 + [BURNING, BURNING, SAFE, SAFE, BURNING, SAFE], jnp.int32))
    obs = env._observations(state, env.default_params)
    spec = jl.baseline(env, "specialist")
    chosen = [env.decode_action(spec(obs[i], jnp.ones(40, bool), jax.random.key(i))) for i in range(4)]
    assert [(int(h), int(m)) for h, m, _ in chosen] == [(4, WORK), (5, WORK), (2, REST), (3, REST)]
    house, mode, signal = _decisions(env, jl.baseline(env, "always_rest"), obs[3], n=50)
    assert (mode == REST).all() and (signal == 0).all() and (house == 3).all()
    evolved = jl.baseline(env, "evolved")
    np.testing.assert_allclose(evolved.params[:3], [0.372, 0.074, 0.0])
    with pytest.raises(ValueError, match="no evolved V7 genome"):
        jl.baseline(env, "evolved", scenario="minimal_specialization")
    with pytest.raises(ValueError, match="10 genes"):
        jl.baseline(env, "heuristic", genome=[0.5] * 9)
    with pytest.raises(ValueError, match="identity"):
        jl.baseline(BucketBrigade(obs_layout="legacy"), "specialist")


# ---- variants ---------------------------------------------------------------------------------


def test_continuous_extinguish_and_snapshot_spread():
    env = BucketBrigade(scenario="default_continuous")
    params = env.default_params.replace(rho=jnp.float32(0.0), beta=jnp.float32(0.0))
    state = state_with(env, [BURNING, SAFE, SAFE, BURNING] + [SAFE] * 6, params=params)
    act = actions(env, [[0, WORK, 1], [0, WORK, 1], [3, WORK, 1], [9, REST, 0]])
    _, new, *_ = env.step(jax.random.key(0), state, act, params)
    assert int(new.houses[0]) == SAFE  # 2 workers x sigma 0.5 = 1.0
    assert int(new.houses[3]) == BURNING and float(new.fire_progress[3]) == pytest.approx(0.5)  # no burn-out
    params = params.replace(beta=jnp.float32(1.0))
    _, spread, *_ = env.step(jax.random.key(0), state, actions(env, [[9, REST, 0]] * 4), params)
    np.testing.assert_array_equal(spread.houses, [BURNING, BURNING, BURNING, BURNING, BURNING] + [SAFE] * 4
                                  + [BURNING])  # one ring of neighbours per night, no cascade


def test_adjacent_only_and_distance_cost():
    env = BucketBrigade(scenario="positional_default", adjacent_only=True)  # homes 0, 3, 5, 8; alpha 0.1
    params = env.default_params.replace(rho=jnp.float32(0.0))
    state = state_with(env, [SAFE] * 10, params=params)
    act = actions(env, [[5, WORK, 0], [4, WORK, 0], [5, REST, 0], [8, REST, 0]])
    _, new, reward, *_ = env.step(jax.random.key(0), state, act, params)
    np.testing.assert_array_equal(new.positions, [0, 4, 5, 8])  # agent 0's far target replaced by home
    np.testing.assert_allclose(reward[:2], [-0.5 + 100, -0.5 - 0.1 + 100], rtol=1e-6)


def test_two_phase_night_is_two_steps():
    env = BucketBrigade(two_phase=True)
    assert env.obs_shape == (42 + 5,)
    params = env.default_params.replace(rho=jnp.float32(0.0))
    state = state_with(env, [SAFE] * 10, params=params)
    round1 = actions(env, [[0, WORK, 1], [0, WORK, 0], [0, WORK, 1], [0, WORK, 0]])
    obs, mid, reward, done, _ = env.step(jax.random.key(0), state, round1, params)
    np.testing.assert_array_equal(mid.round1_signals, [1, 0, 1, 0])
    assert float(jnp.abs(reward).sum()) == 0 and int(mid.night) == 0 and not bool(done)
    np.testing.assert_array_equal(mid.positions, state.positions)  # nothing else changed
    assert float(obs[0, 42 - 4 + 4]) == 1.0  # phase bit: round 2 next
    obs, end, reward, *_ = env.step(jax.random.key(1), mid, actions(env, [[0, REST, 0]] * 4), params)
    assert int(end.night) == 1 and float(reward[0]) == pytest.approx(0.5 + 100)
    assert float(obs[0, 42 - 4 + 4]) == 0.0  # a round 1 comes next


def test_scenario_pool_samples_per_episode_and_params_vmap():
    pool = ("default", "rest_trap", "hard")
    env = BucketBrigade(scenario_pool=pool)
    kappas = {round(float(env.reset(k)[1].scenario.kappa), 2) for k in jax.random.split(jax.random.key(0), 40)}
    assert kappas == {0.5, 0.95, 0.3}
    with pytest.raises(ValueError, match="static"):
        BucketBrigade(scenario_pool=("default", "v2_minimal"))
    with pytest.raises(ValueError, match="unknown Bucket Brigade scenario"):
        jl.make("bucket_brigade", scenario="rest_trapp")
    assert len(SCENARIOS) == 18


def test_scripted_seats_leave_the_learners_and_redraw_random_genomes():
    env = jl.wrappers.with_opponents(BucketBrigade(), "3")
    assert env.num_agents == 1 and env.agents == ("agent_0",)
    assert [p.name for p in env.seats.values()] == ["random_genome", "random_genome", "firefighter"]
    obs, s1 = env.reset(jax.random.key(0))
    _, s2 = env.reset(jax.random.key(1))
    assert obs.shape == (1, 42) and not np.allclose(s1.seat_params[0], s2.seat_params[0])
    obs, s3, reward, done, info = env.step(jax.random.key(2), s1, jnp.array([env.encode_action(0, 0)]))
    assert reward.shape == (1,) and info["all_rewards"].shape == (4,)
    result = jl.evaluate(env, jl.baseline(BucketBrigade(), "specialist"), 200, jax.random.key(3))
    assert result.returns.shape == (200, 1) and np.isfinite(result.outcomes["team_reward_per_step"]).all()
    with pytest.raises(ValueError, match="no learner"):
        jl.wrappers.with_opponents(BucketBrigade(), "random,random,random,random")


def test_render_and_describe():
    env = BucketBrigade()
    _, state = env.reset(jax.random.key(0))
    state = state.replace(houses=jnp.asarray([SAFE, BURNING, RUINED] + [SAFE] * 7, jnp.int32))
    frame = np.asarray(jax.jit(env.render)(state))
    assert frame.shape == (220, 220, 3) and frame.dtype == np.uint8
    reds = ((frame[..., 0] > 200) & (frame[..., 1] < 80)).sum()
    assert reds > 100  # the burning house is drawn
    assert "houses [.*#......." in env.describe(state)
