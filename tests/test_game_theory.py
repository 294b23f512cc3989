"""Kuhn and Leduc against OpenSpiel (every history), exact NashConv against OpenSpiel's, the tiny
bargain's exact evaluation, and the replay/reservoir buffers."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pyspiel
import pytest
from open_spiel.python import policy as openspiel_policy
from open_spiel.python.algorithms import exploitability

import jaxmarl_lab as jl
from jaxmarl_lab import game_theory as gt
from jaxmarl_lab.buffers import Replay, Reservoir
from jaxmarl_lab.networks import actor_critic_policy, make_network


def _walk(env, step, game_state, state, obs, seen):
    """Compare our state with OpenSpiel's at every node below ``game_state``."""
    seen[0] += 1
    if game_state.is_terminal():
        assert bool(state.done)
        np.testing.assert_allclose(np.asarray(state.rewards), game_state.returns())
        return
    assert not bool(state.done)
    for p in range(2):
        expected = np.asarray(game_state.information_state_tensor(p), np.float32)
        np.testing.assert_array_equal(np.asarray(obs[p]), expected, err_msg=f"{game_state.history()} player {p}")
    mover = game_state.current_player()
    legal = np.zeros(env.num_actions, bool)
    legal[game_state.legal_actions()] = True
    mask = np.asarray(env.action_mask(state))
    np.testing.assert_array_equal(mask[mover], legal)
    assert not mask[1 - mover].any()
    for action in game_state.legal_actions():
        child = game_state.clone()
        child.apply_action(action)
        if child.is_chance_node():  # Leduc's public card: ours was dealt at reset
            child.apply_action(int(state.cards[2]))
        joint = np.zeros(2, np.int32)
        joint[mover] = action
        next_obs, next_state, *_ = step(jax.random.key(0), state, jnp.asarray(joint))
        _walk(env, step, child, next_state, next_obs, seen)


@pytest.mark.parametrize("name, num_deals, expected_nodes", [("kuhn_poker", 6, 54), ("leduc_poker", 12, None)])
def test_every_history_matches_openspiel(name, num_deals, expected_nodes):
    """Information-state tensors, legal actions and payoffs equal OpenSpiel's at every node of the
    game tree (all Kuhn deals; 12 random Leduc deals with every public card)."""
    env, game = jl.make(name), pyspiel.load_game(name)
    step, deal = jax.jit(env.step), jax.jit(env.deal)
    deals = list(itertools.permutations(range(env.deck_size), env.cards_dealt))
    rng = np.random.default_rng(0)
    chosen = [deals[i] for i in rng.choice(len(deals), num_deals, replace=False)]
    seen = [0]
    for cards in chosen:
        game_state = game.new_initial_state()
        game_state.apply_action(cards[0])
        game_state.apply_action(cards[1])
        obs, state = deal(jnp.asarray(cards))
        _walk(env, step, game_state, state, obs, seen)
    assert seen[0] == (expected_nodes or seen[0]) and seen[0] > num_deals
    assert env.obs_shape == tuple(game.information_state_tensor_shape())
    assert env.num_actions == game.num_distinct_actions()


def test_reset_deals_like_openspiel():
    """Deals are uniform over ordered distinct cards (OpenSpiel's chance), and illegal actions are
    played as call/check."""
    env = jl.make("leduc_poker")
    _, states = jax.vmap(env.reset)(jax.random.split(jax.random.key(3), 30_000))
    cards = np.asarray(states.cards)
    assert (cards[:, 0] != cards[:, 1]).all() and (cards[:, 2] != cards[:, :2].T).all()
    counts = np.bincount(cards[:, 2], minlength=6)
    assert np.abs(counts / 30_000 - 1 / 6).max() < 0.012
    _, state = env.reset(jax.random.key(0))
    _, after, *_ = env.step(jax.random.key(0), state, jnp.array([0, 0]))  # fold is illegal with no bet
    assert int(after.history[0, 0]) == 1 and not bool(after.done)


@pytest.mark.parametrize("name, uniform_nash_conv", [("kuhn_poker", 0.9166666667), ("leduc_poker", 4.7472222222)])
def test_nash_conv_matches_openspiel(name, uniform_nash_conv):
    env, game = jl.make(name), pyspiel.load_game(name)
    tree = gt.game_tree(env)
    uniform = gt.nash_conv(env, jl.baseline(env, "random"), tree=tree).nash_conv
    assert uniform == pytest.approx(exploitability.nash_conv(game, openspiel_policy.UniformRandomPolicy(game)),
                                    abs=1e-6)
    assert uniform == pytest.approx(uniform_nash_conv, abs=1e-6)
    # a fixed random tabular policy, converted from OpenSpiel's table
    table = openspiel_policy.TabularPolicy(game)
    weights = np.random.default_rng(1).random(table.action_probability_array.shape) * table.legal_actions_mask
    table.action_probability_array = weights / weights.sum(axis=1, keepdims=True)
    ours = gt.nash_conv(env, gt.from_openspiel_policy(game, table), tree=tree).nash_conv
    assert ours == pytest.approx(exploitability.nash_conv(game, table), abs=1e-6)
    # a neural policy (random weights), converted the other way
    network = make_network("mlp_actor", env.num_actions, hidden_size=16, num_layers=1)
    params = network.init(jax.random.key(2), jnp.zeros(env.obs_shape))
    policy = actor_critic_policy({"name": "mlp_actor", "num_actions": env.num_actions, "hidden_size": 16,
                                  "num_layers": 1}, params, seat_slot=env.seat_slot)
    ours = gt.nash_conv(env, policy, tree=tree).nash_conv
    assert ours == pytest.approx(exploitability.nash_conv(game, gt.to_openspiel_policy(game, policy)), abs=1e-6)


def test_kuhn_equilibrium_has_zero_nash_conv():
    """The analytic Kuhn equilibrium (α = 0): NashConv 0 and value −1/18 for the first player."""
    game, env = pyspiel.load_game("kuhn_poker"), jl.make("kuhn_poker")
    bet = {"0": 0, "1": 0, "2": 0, "0pb": 0, "1pb": 1 / 3, "2pb": 1, "0p": 1 / 3, "1p": 0, "2p": 1, "0b": 0,
           "1b": 1 / 3, "2b": 1}
    table = openspiel_policy.TabularPolicy(game)
    for key, row in table.state_lookup.items():
        table.action_probability_array[row] = [1 - bet[key], bet[key]]
    result = gt.nash_conv(env, gt.from_openspiel_policy(game, table))
    assert result.nash_conv == pytest.approx(0.0, abs=1e-6)
    assert result.values[0] == pytest.approx(-1 / 18, abs=1e-6)
    # one deviation (K never bets as second player) is exploitable, and the best response finds it
    table.action_probability_array[table.state_lookup["2p"]] = [1.0, 0.0]
    assert gt.nash_conv(env, gt.from_openspiel_policy(game, table)).best_response[0] > -1 / 18 + 1e-3


def test_tiny_bargain_exact_evaluation():
    env = jl.make("bargain_tiny")
    _, _, probs = env.enumerate_deals()
    assert len(probs) == env.num_deals() == 1296 and probs.sum() == pytest.approx(1.0)
    tree = gt.game_tree(env)
    uniform = gt.nash_conv(env, jl.baseline(env, "random"), tree=tree)
    assert uniform.nash_conv > 0.3 and (uniform.gains >= -1e-9).all()
    # exact self-play values match sampled play
    sampled = jl.evaluate(env, jl.baseline(env, "random"), 20_000, jax.random.key(0))
    np.testing.assert_allclose(sampled.mean_returns, uniform.values, atol=4 * sampled.stderr_returns.max())
    # a fair split every time is exploitable by a player who asks for more (it accepts anything)
    with pytest.raises(ValueError, match="too many"):
        jl.make("bargain").enumerate_deals()
    assert not gt.supports_exact_evaluation(jl.make("bargain"))


def test_policy_without_probabilities_is_rejected():
    env = jl.make("bargain_tiny")
    with pytest.raises(ValueError, match="action_probs"):
        gt.nash_conv(env, jl.baseline(env, "greedy"))


def test_replay_is_fifo():
    replay = Replay.create({"x": jnp.zeros(())}, 5)
    replay = replay.add({"x": jnp.arange(4.0)}, jnp.array([True, False, True, True]))
    replay = replay.add({"x": jnp.arange(10.0, 14.0)}, jnp.ones(4, bool))
    assert int(replay.size) == 5
    assert sorted(np.asarray(replay.data["x"]).tolist()) == [3.0, 10.0, 11.0, 12.0, 13.0]  # 0 and 2 overwritten


def test_reservoir_sampling_is_uniform():
    """After 240 offered items (some batch entries invalid, one batch larger than the capacity),
    every item is kept with probability 20/240: chi-square over 4000 independent reservoirs."""
    capacity, runs = 20, 4000
    batches = [np.arange(b * 48, (b + 1) * 48) for b in range(6)]
    valid = [(items % 6 != 5) for items in batches]  # 40 of each 48 are offered

    def fill(key):
        reservoir = Reservoir.create(jnp.zeros((), jnp.int32), capacity)
        for items, ok, k in zip(batches, valid, jax.random.split(key, len(batches)), strict=True):
            reservoir = reservoir.add(k, jnp.asarray(items), jnp.asarray(ok))
        return reservoir.data, reservoir.seen

    data, seen = jax.jit(jax.vmap(fill))(jax.random.split(jax.random.key(0), runs))
    assert (np.asarray(seen) == 240).all()
    data = np.asarray(data)
    assert all(len(set(row)) == capacity for row in data[:50])  # no item stored twice
    offered = np.concatenate([items[ok] for items, ok in zip(batches, valid, strict=True)])
    counts = np.array([(data == item).sum() for item in offered])
    assert counts.sum() == runs * capacity
    expected = runs * capacity / len(offered)
    chi_square = ((counts - expected) ** 2 / expected).sum()
    # 239 degrees of freedom: the 0.999 quantile is about 316
    assert chi_square < 316, chi_square
    never = np.setdiff1d(np.arange(288), offered)
    assert not np.isin(data, never).any()
