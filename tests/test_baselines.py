"""Documented behaviour of the bargaining baselines (shared/specs/bargain.md §3)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import bargain_state, play

import jaxmarl_lab as jl

ACCEPT, WALK = 80, 81
NAMES = ["random", "greedy", "always_walk", "fair_split", "tough", "soft"]


def act(policy, obs, mask, key=0):
    return int(policy(obs, mask, jax.random.key(key)))


def test_all_baselines_listed(env):
    assert jl.list_baselines(env) == NAMES


def test_random_vs_random_welfare_is_one(env):
    result = jl.evaluate(env, jl.baseline(env, "random"), 20_000, jax.random.key(0))
    welfare = result.welfare
    se = welfare.std(ddof=1) / np.sqrt(welfare.size)
    assert abs(welfare.mean() - 1.00) < 4 * se
    assert 0.3 < result.accept_rate < 0.7 and abs(result.accept_rate + result.walk_rate - 1) < 1e-6


def test_random_is_uniform_over_legal(env):
    policy = jl.baseline(env, "random")
    obs, state = env.reset(jax.random.key(0))
    mask = env.action_mask(state)[0]
    actions = jax.vmap(lambda k: policy(obs[0], mask, k))(jax.random.split(jax.random.key(1), 81_000))
    counts = np.bincount(np.asarray(actions), minlength=82)
    assert counts[ACCEPT] == 0 and counts[:80].min() > 0 and counts[WALK] > 0
    # each of the 81 legal actions: expected 1000, sd ~31.4
    assert np.abs(counts[np.asarray(mask)] - 1000).max() < 5 * 31.4
    # final decision: ACCEPT or WALK 50/50
    _, state = bargain_state(env, [[10, 20, 30], [30, 20, 10]], [50, 100])
    last = play(env, state, [1, 2, 3, 4, 5])[-1]
    obs, mask = last[0][1], env.action_mask(last[1])[1]
    actions = jax.vmap(lambda k: policy(obs, mask, k))(jax.random.split(jax.random.key(2), 10_000))
    frac_accept = float((np.asarray(actions) == ACCEPT).mean())
    assert set(np.unique(np.asarray(actions)).tolist()) == {ACCEPT, WALK} and abs(frac_accept - 0.5) < 0.03


def test_greedy_vs_greedy_always_walks(env):
    result = jl.evaluate(env, jl.baseline(env, "greedy"), 5000, jax.random.key(1))
    assert result.walk_rate == 1.0
    assert (result.lengths == 2).all()  # P1 offers nothing, P2 walks
    # P2-greedy accepts an offer worth at least its outside offer, P1-greedy keeps everything
    greedy = jl.baseline(env, "greedy")
    obs, state = bargain_state(env, [[10, 20, 30], [30, 20, 10]], [50, 100])
    assert act(greedy, obs[0], env.action_mask(state)[0]) == 0
    after = play(env, state, [35])[0]  # P2 would get (3,2,1): worth 140 >= 100
    assert act(greedy, after[0][1], env.action_mask(after[1])[1]) == ACCEPT
    _, rich = bargain_state(env, [[10, 20, 30], [30, 20, 10]], [50, 141])
    after = play(env, rich, [35])[0]
    assert act(greedy, after[0][1], env.action_mask(after[1])[1]) == WALK


def test_always_walk_ends_every_game_at_once(env):
    result = jl.evaluate(env, jl.baseline(env, "always_walk"), 3000, jax.random.key(2))
    assert (result.lengths == 1).all() and result.walk_rate == 1.0
    mixed = jl.evaluate(env, [jl.baseline(env, "random"), jl.baseline(env, "always_walk")], 3000, jax.random.key(3))
    assert mixed.accept_rate == 0.0 and mixed.lengths.max() <= 2


def test_fair_split_p1_offers_split_closest_to_half_of_own_m(env):
    policy = jl.baseline(env, "fair_split")
    keys = jax.random.split(jax.random.key(4), 300)
    obs, states = jax.vmap(env.reset)(keys)
    masks = jax.vmap(env.action_mask)(states)
    actions = np.asarray(jax.vmap(lambda o, m, k: policy(o[0], m[0], k))(obs, masks, keys))
    table = env.offer_table
    for values, max_value, a in zip(np.asarray(states.values), np.asarray(states.max_value), actions, strict=True):
        share_given = (table * values[0]).sum(axis=1)
        distance = np.abs(share_given / max_value[0] - 0.5)
        assert distance[a] <= distance.min() + 1e-12  # float ties differ only by rounding
        # ties (common: n and q - n give the same distance) go to the first index
        assert a == int(np.argmin(np.abs(2 * share_given - int(max_value[0]))))


def test_fair_split_p2_threshold(env):
    policy = jl.baseline(env, "fair_split")
    obs, state = bargain_state(env, [[10, 20, 30], [30, 20, 10]], [50, 299])
    after = play(env, state, [35])[0]  # worth 140 to P2 (M 300): 0.467 >= 0.4 -> accept (ignores outside 299)
    assert act(policy, after[0][1], env.action_mask(after[1])[1]) == ACCEPT
    after = play(env, state, [22])[0]  # (2,1,0): worth 80 < 120 -> walk
    assert act(policy, after[0][1], env.action_mask(after[1])[1]) == WALK
    strict = jl.baseline(env, "fair_split", accept_threshold=0.5)
    after = play(env, state, [35])[0]
    assert act(strict, after[0][1], env.action_mask(after[1])[1]) == WALK


@pytest.mark.parametrize("values, p1_index, p2_index", [
    ([5, 50, 60], 10, 69), ([50, 5, 60], 2, 77), ([50, 60, 5], 1, 78)])
def test_tough_offers_one_unit_of_least_valued_item(env, values, p1_index, p2_index):
    tough = jl.baseline(env, "tough")
    obs, state = bargain_state(env, [values, values], [10, 10])
    assert act(tough, obs[0], env.action_mask(state)[0]) == p1_index
    after = play(env, state, [35])[0]
    assert act(tough, after[0][1], env.action_mask(after[1])[1]) == p2_index  # never accepts
    last = play(env, state, [1, 2, 3, 4, 5])[-1]
    assert act(tough, last[0][1], env.action_mask(last[1])[1]) == WALK


def test_soft_accepts_any_offer(env):
    soft = jl.baseline(env, "soft")
    obs, state = env.reset(jax.random.key(0))
    first = np.asarray(jax.vmap(lambda k: soft(obs[0], env.action_mask(state)[0], k))(
        jax.random.split(jax.random.key(1), 2000)))
    assert first.max() < 80 and len(np.unique(first)) > 60
    result = jl.evaluate(env, [jl.baseline(env, "random"), soft], 2000, jax.random.key(5))
    assert result.accept_rate > 0.95  # only P1's rare first-move WALK (1/81) escapes


def test_baseline_errors(env):
    with pytest.raises(ValueError, match="Valid baselines: random, greedy"):
        jl.baseline(env, "gredy")
    with pytest.raises(TypeError, match="accept_threshold"):
        jl.baseline(env, "fair_split", threshold=0.3)


def test_policies_work_inside_jit_vmap_scan(env):
    policy = jl.baseline(env, "fair_split")

    @jax.jit
    def many(params, obs, mask, keys):
        def body(carry, k):
            return carry, policy.act(params, obs, mask, k)

        return jax.lax.scan(body, 0, keys)[1]

    obs, state = env.reset(jax.random.key(0))
    out = many(policy.params, obs[0], env.action_mask(state)[0], jax.random.split(jax.random.key(0), 5))
    assert out.shape == (5,) and len(set(np.asarray(out).tolist())) == 1
    leaves = jax.tree_util.tree_leaves(policy)
    assert len(leaves) == 1 and jnp.asarray(leaves[0]).dtype == jnp.float32
