"""Faithfulness of envs/bargain.py to shared/specs/bargain.md §1–§3 (CUDA semantics)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import bargain_state, play

import jaxmarl_lab as jl

VALUES = [[10, 20, 30], [30, 20, 10]]  # M = 180 and 300 (spec §1.7 test vectors)
ACCEPT, WALK = 80, 81


def test_constants(env):
    assert env.num_agents == 2 and env.num_actions == 82 and env.obs_shape == (92,)
    assert env.max_steps == 6
    for index, units in {0: (0, 0, 0), 1: (0, 0, 1), 2: (0, 1, 0), 9: (0, 4, 1), 10: (1, 0, 0),
                         35: (3, 2, 1), 57: (5, 3, 1), 79: (7, 4, 1)}.items():
        assert env.decode_offer(index) == units
        assert env.encode_offer(units) == index


def test_payoff_vector_a_p2_accepts(env):
    _, state = bargain_state(env, VALUES, [50, 100])
    steps = play(env, state, [35, ACCEPT])
    assert not steps[0][3] and steps[1][3]
    np.testing.assert_allclose(steps[1][2], [80 / 180, 140 / 300], atol=1e-6)
    np.testing.assert_allclose(steps[1][2], [0.4444, 0.4667], atol=1e-4)
    assert int(steps[1][1].outcome) == 1


def test_payoff_vector_b_p1_accepts_counter_offer(env):
    _, state = bargain_state(env, VALUES, [50, 100])
    steps = play(env, state, [12, 57, ACCEPT])
    np.testing.assert_allclose(steps[2][2], [40 / 180, 220 / 300], atol=1e-6)
    np.testing.assert_allclose(steps[2][2], [0.2222, 0.7333], atol=1e-4)
    assert [s[3] for s in steps] == [False, False, True]


def test_payoff_vector_c_walk_at_start(env):
    _, state = bargain_state(env, VALUES, [90, 150])
    (obs, state, reward, done), = play(env, state, [WALK])
    assert done and int(state.outcome) == 2
    np.testing.assert_allclose(reward, [0.5, 0.5], atol=1e-6)


def test_observation_vector(env):
    obs0, state = bargain_state(env, VALUES, [50, 100])
    np.testing.assert_allclose(obs0[0, :10], [0.1, 0.2, 0.3, 50 / 180, -1, -1, -1, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(obs0[1, :10], [0.3, 0.2, 0.1, 100 / 300, -1, -1, -1, 0, 0, 1], atol=1e-6)
    steps = play(env, state, [12, 57])
    obs = np.asarray(steps[1][0])
    p1 = obs[0]  # P1 to move after P2 countered (5,3,1)
    np.testing.assert_allclose(p1[4:7], [2 / 7, 1 / 4, 0], atol=1e-6)
    np.testing.assert_allclose(p1[4:7], [0.2857, 0.25, 0.0], atol=1e-4)
    assert p1[7] == 1 and p1[8] == 0.5 and p1[9] == 0
    np.testing.assert_allclose(p1[:4], [0.1, 0.2, 0.3, 50 / 180], atol=1e-6)
    mask = np.asarray(env.action_mask(steps[1][1]))
    np.testing.assert_array_equal(p1[10:], mask[0].astype(np.float32))
    # P2 (not to move) sees its own share of the same offer: n / q
    np.testing.assert_allclose(obs[1, 4:7], [5 / 7, 3 / 4, 1], atol=1e-6)
    assert obs[1, 9] == 1 and not obs[1, 10:].any()


def test_masks_after_0_1_5_counter_offers(env):
    _, state = bargain_state(env, VALUES, [50, 100])
    mask = np.asarray(env.action_mask(state))
    assert mask[0, :80].all() and not mask[0, ACCEPT] and mask[0, WALK] and mask[0].sum() == 81
    assert not mask[1].any()
    steps = play(env, state, [3, 4, 5, 6, 7])
    after_one = np.asarray(env.action_mask(steps[0][1]))
    assert after_one[1].all() and not after_one[0].any()
    after_five = np.asarray(env.action_mask(steps[4][1]))
    assert int(steps[4][1].player) == 1 and int(steps[4][1].round) == 2
    assert after_five[1].tolist() == [False] * 80 + [True, True]
    np.testing.assert_array_equal(env.acting(steps[4][1]), [False, True])


def test_round_sequence_and_at_most_six_decisions(env):
    _, state = bargain_state(env, VALUES, [50, 100])
    rounds, movers = [int(state.round)], [int(state.player)]
    steps = play(env, state, [1, 2, 3, 4, 5])
    for _, after, _, done in steps:
        assert not done
        rounds.append(int(after.round))
        movers.append(int(after.player))
    state = steps[-1][1]
    assert rounds == [0, 0, 1, 1, 2, 2]
    assert movers == [0, 1, 0, 1, 0, 1]
    # the sixth decision may only ACCEPT or WALK; a counter-offer there is a WALK
    (_, final, reward, done), = play(env, state, [10])
    assert done and int(final.outcome) == 2
    np.testing.assert_allclose(reward, [50 / 180, 100 / 300], atol=1e-6)


@pytest.mark.parametrize("bad_action, when", [(82, 0), (-1, 0), (10_000, 1), (ACCEPT, 0), (40, 5)])
def test_invalid_action_is_walk(env, bad_action, when):
    _, state = bargain_state(env, VALUES, [50, 100])
    steps = play(env, state, [1, 2, 3, 4, 5][:when] + [bad_action])
    obs, final, reward, done = steps[-1]
    assert done and int(final.outcome) == 2
    np.testing.assert_allclose(reward, [50 / 180, 100 / 300], atol=1e-6)


def test_every_game_ends_within_six_decisions_even_with_arbitrary_actions(env):
    @jax.jit
    def run(key):
        obs, state = env.reset(key)

        def body(state, k):
            action = jax.random.randint(k, (2,), -3, 90)
            return env.step(k, state, action)[1], state.done

        final, dones = jax.lax.scan(body, state, jax.random.split(key, 6))
        return final.done, final.action_count

    done, counts = jax.vmap(run)(jax.random.split(jax.random.key(3), 4096))
    assert bool(done.all()) and int(counts.max()) <= 5
    legal = jl.evaluate(env, jl.baseline(env, "random"), 4096, jax.random.key(4))
    assert legal.lengths.max() <= 6 and legal.lengths.min() >= 1
    assert (legal.outcomes["accept"] + legal.outcomes["walk"] == 1).all()


def test_reset_statistics(env):
    keys = jax.random.split(jax.random.key(5), 100_000)
    _, states = jax.vmap(env.reset)(keys)
    values = np.asarray(states.values, np.float64)
    assert values.min() == 1 and values.max() == 100
    se = values.std() / np.sqrt(values.size)
    assert abs(values.mean() - 50.5) < 4 * se
    max_value = np.asarray(states.max_value, np.float64)
    np.testing.assert_array_equal(max_value, (values * [7, 4, 1]).sum(axis=-1))
    ratio = np.asarray(states.outside) / max_value
    assert ratio.min() > 0 and ratio.max() <= 1
    assert (np.asarray(states.outside) >= 1).all() and (np.asarray(states.outside) <= max_value).all()
    se = ratio.std() / np.sqrt(ratio.size)
    assert abs(ratio.mean() - 0.50) < 4 * se + 0.5 * np.mean(1 / max_value)  # E[o/M] = 1/2 + E[1/(2M)]
    assert abs(ratio.mean() - (0.5 + 0.5 * np.mean(1 / max_value))) < 4 * se


def test_jit_vmap_match_unbatched_and_same_key_same_trajectory(env):
    policy = jl.baseline(env, "random")
    num_games, horizon = 4, 8
    venv = jl.VmapEnv(jl.AutoReset(env), num_games)

    def rollout(key):
        obs, state = venv.reset(key)
        trajectory = []
        for t in range(horizon):
            k_act, k_step = jax.random.split(jax.random.fold_in(key, t))
            mask = venv.action_mask(state)
            action = jax.vmap(jax.vmap(policy))(obs, mask, jax.random.split(k_act, (num_games, 2)))
            obs, state, reward, done, _ = venv.step(k_step, state, action)
            trajectory.append((obs, reward, done))
        return trajectory

    key = jax.random.key(11)
    eager = rollout(key)
    jitted = jax.jit(rollout)(key)
    again = jax.jit(rollout)(key)
    for a, b, c in zip(eager, jitted, again, strict=True):
        for x, y, z in zip(a, b, c, strict=True):
            np.testing.assert_allclose(x, y, atol=1e-6)
            np.testing.assert_array_equal(y, z)
    # unbatched: game i of the vmapped run equals running env alone with the same per-game keys
    keys = jax.random.split(key, num_games)
    obs1, state1 = env.reset(keys[2])
    obs_b, state_b = venv.reset(key)
    np.testing.assert_array_equal(obs1, obs_b[2])
    action = jnp.asarray([[5, 0]] * num_games, jnp.int32)
    step_keys = jax.random.split(jax.random.key(12), num_games)
    single = jl.AutoReset(env).step(step_keys[2], state1, action[2])
    batched = venv.step(jax.random.key(12), state_b, action)
    np.testing.assert_array_equal(single[0], batched[0][2])
    np.testing.assert_array_equal(single[2], batched[2][2])
    # different keys give different games
    other = jax.jit(rollout)(jax.random.key(12))
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(jitted, other, strict=True))


def test_auto_reset_keeps_final_observation(env):
    wrapped = jl.AutoReset(env)
    obs, state = wrapped.reset(jax.random.key(0))
    walk = jnp.asarray([WALK, WALK], jnp.int32)
    new_obs, new_state, reward, done, info = wrapped.step(jax.random.key(1), state, walk)
    assert bool(done)
    final = np.asarray(info["final_observation"])
    # the final observation belongs to the finished game: same private values, no legal actions
    np.testing.assert_array_equal(final[:, :4], np.asarray(obs)[:, :4])
    assert not final[:, 10:].any()
    # the returned observation starts a new game
    assert not bool(new_state.done) and int(new_state.action_count) == 0
    assert not np.array_equal(np.asarray(new_obs)[:, :3], final[:, :3])
    assert np.asarray(new_obs)[0, 10:].sum() == 81
    assert float(info["final_outcome"]["walk"]) == 1.0
    np.testing.assert_allclose(reward, np.asarray(state.outside) / np.asarray(state.max_value), atol=1e-6)


def test_step_after_end_reemits_terminal_rewards(env):
    _, state = bargain_state(env, VALUES, [50, 100])
    steps = play(env, state, [35, ACCEPT])
    _, again, reward, done, _ = env.step(jax.random.key(0), steps[1][1], jnp.asarray([3, 3]))
    assert bool(done) and int(again.outcome) == 1
    np.testing.assert_allclose(reward, steps[1][2])


def test_action_shape_and_dtype_errors(env):
    _, state = env.reset(jax.random.key(0))
    with pytest.raises(ValueError, match="shape"):
        env.step(jax.random.key(0), state, jnp.zeros((3,), jnp.int32))
    with pytest.raises(ValueError, match="shape"):
        env.step(jax.random.key(0), state, jnp.int32(3))
    with pytest.raises(TypeError, match="integers"):
        env.step(jax.random.key(0), state, jnp.zeros((2,), jnp.float32))
    with pytest.raises(ValueError, match="shape"):
        jax.jit(env.step)(jax.random.key(0), state, jnp.zeros((4, 2), jnp.int32))


def test_global_state_render_describe(env):
    _, state = bargain_state(env, VALUES, [50, 100])
    gs = np.asarray(env.global_state(state))
    assert gs.shape == (17,)
    np.testing.assert_allclose(gs[:6], [0.1, 0.2, 0.3, 0.3, 0.2, 0.1], atol=1e-6)
    np.testing.assert_allclose(gs[6:8], [50 / 180, 100 / 300], atol=1e-6)
    steps = play(env, state, [35, ACCEPT])
    frames = jax.jit(jax.vmap(env.render))(jax.tree_util.tree_map(lambda *x: jnp.stack(x),
                                                                  state, steps[0][1], steps[1][1]))
    frames = np.asarray(frames)
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
    assert not np.array_equal(frames[0], frames[1]) and not np.array_equal(frames[1], frames[2])
    blue, orange = np.array([45, 95, 200]), np.array([230, 120, 30])
    # the offer (3,2,1) to P2: P2's unit squares (orange) appear once an offer is on the table
    assert (frames[1] == orange).all(-1).sum() > (frames[0] == orange).all(-1).sum()
    assert (frames[1] == blue).all(-1).sum() > (frames[0] == blue).all(-1).sum()
    text = env.describe(steps[1][1])
    assert "[10, 20, 30]" in text and "accepted" in text and "0.4444" in text
    assert "P1 gets [4, 2, 0]" in env.describe(steps[0][1])


def test_gif_of_one_game(env, tmp_path):
    from jaxmarl_lab.render import save_gif

    _, state = bargain_state(env, VALUES, [50, 100])
    frames = [env.render(state)] + [env.render(s[1]) for s in play(env, state, [12, 57, ACCEPT])]
    path = save_gif(np.stack(frames), tmp_path / "game.gif")
    import imageio.v2 as imageio

    assert len(imageio.mimread(path)) == 4


def test_small_variant(env):
    tiny = jl.make("bargain", quantities=(1, 1), value_range=(1, 3), num_rounds=2)
    assert tiny.num_actions == 6 and tiny.obs_shape == (14,) and tiny.max_steps == 4
    result = jl.evaluate(tiny, jl.baseline(tiny, "random"), 2000, jax.random.key(0))
    assert result.lengths.max() <= 4
    _, states = jax.vmap(tiny.reset)(jax.random.split(jax.random.key(1), 2000))
    assert set(np.unique(np.asarray(states.values)).tolist()) == {1, 2, 3}
    with pytest.raises(ValueError, match="quantities"):
        jl.make("bargain", quantities=(0, 1))
    with pytest.raises(ValueError, match="num_rounds"):
        jl.make("bargain", num_rounds=0)
