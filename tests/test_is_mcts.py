"""IS-MCTS (algos/is_mcts.py): worlds, Gumbel root, hand-made best move, jit/vmap, memory in the
evaluation loops, Kuhn improvement over the prior, CLI."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from algos.is_mcts import (
    SearchConfig,
    Worlds,
    _Models,
    compare,
    exact_values,
    run_search,
    sample_worlds,
    search_policy,
    sequential_halving_visits,
)
from jaxmarl_lab.evaluation import evaluate, evaluate_against
from jaxmarl_lab.policies import baseline
from jaxmarl_lab.registry import make

ROOT = Path(__file__).resolve().parents[1]


def _searcher_history(env, seat, steps, key):
    """Play ``steps`` random moves; return the true state and seat ``seat``'s observations so far."""
    obs, state = env.reset(key)
    seen = [obs[seat]]
    random = baseline(env, "random")
    for t in range(steps):
        mask = env.action_mask(state)
        action = jnp.stack([random(obs[p], mask[p], jax.random.fold_in(key, 10 * t + p)) for p in range(2)])
        obs, state, _, done, _ = env.step(jax.random.key(0), state, action)
        assert not bool(done)
        seen.append(obs[seat])
    history = jnp.zeros((env.max_steps + 1, obs.shape[-1])).at[: len(seen)].set(jnp.stack(seen))
    return state, history, len(seen)


def test_sampled_worlds_never_contradict_the_searchers_information():
    env = make("bargain")
    prior = baseline(env, "random")
    models = _Models(prior.act_fn)
    for seat, steps in ((0, 2), (1, 3), (1, 1)):
        state, history, count = _searcher_history(env, seat, steps, jax.random.key(seat + steps))
        worlds = sample_worlds(env, models, {"prior": None}, history, jnp.int32(count), jax.random.key(7), 64)
        assert np.isfinite(np.asarray(worlds.log_weight)).all()  # every deal is consistent with public offers
        assert (np.asarray(worlds.state.values[:, seat]) == np.asarray(state.values[seat])).all()
        assert (np.asarray(worlds.state.outside[:, seat]) == int(state.outside[seat])).all()
        assert np.abs(np.asarray(worlds.obs[:, seat]) - np.asarray(history[count - 1])).max() < 1e-6
        assert (np.asarray(worlds.state.offer) == np.asarray(state.offer)).all()
        assert len(np.unique(np.asarray(worlds.state.values[:, 1 - seat]), axis=0)) > 32  # the opponent varies
    # Leduc after the public card is revealed: own card and public card are kept, the opponent's differs
    env = make("leduc_poker")
    obs, state = env.deal(jnp.array([0, 3, 4]))
    history = [obs[1]]
    for action in (1, 1):  # check, check: round 2, public card revealed
        obs, state, *_ = env.step(jax.random.key(0), state, jnp.array([action, action]))
        history.append(obs[1])
    history = jnp.zeros((env.max_steps + 1, obs.shape[-1])).at[:3].set(jnp.stack(history))
    worlds = sample_worlds(env, _Models(baseline(env, "random").act_fn), {"prior": None}, history, jnp.int32(3),
                           jax.random.key(1), 64)
    cards = np.asarray(worlds.state.cards)
    assert (cards[:, 1] == 3).all() and (cards[:, 2] == 4).all()
    assert set(cards[:, 0]) == {0, 1, 2, 5}


def test_world_weights_follow_the_opponents_observed_offer():
    """With a deterministic fair-split model of P1 (its offer depends on its values), only worlds in
    which P1 would have made the offer on the table keep weight."""
    env = make("bargain")
    fair = baseline(env, "fair_split")
    obs, state = env.deal(jnp.array([[90, 1, 1], [10, 10, 10]]), jnp.array([5, 50]))
    action = fair(obs[0], env.action_mask(state)[0], jax.random.key(0))
    next_obs, *_ = env.step(jax.random.key(0), state, jnp.stack([action, action]))
    history = jnp.zeros((env.max_steps + 1, obs.shape[-1])).at[0].set(obs[1]).at[1].set(next_obs[1])
    worlds = sample_worlds(env, _Models(fair.act_fn), {"prior": fair.params}, history, jnp.int32(2),
                           jax.random.key(3), 256, likelihood_floor=1e-3)
    weights = np.asarray(jax.nn.softmax(worlds.log_weight))
    first_obs, first_state = jax.vmap(env.deal)(worlds.state.values, worlds.state.outside)
    offers = jax.vmap(lambda o, s: fair(o[0], env.action_mask(s)[0], jax.random.key(0)))(first_obs, first_state)
    agrees = np.asarray(offers) == int(action)
    assert 0 < agrees.mean() < 1  # the offer carries information about P1's values
    assert weights[agrees].sum() > 0.99


def test_gumbel_root_with_one_simulation_plays_argmax_of_logits_plus_gumbel():
    env = make("kuhn_poker")
    from jaxmarl_lab.networks import actor_critic_policy

    policy = actor_critic_policy({"name": "mlp", "num_actions": 2, "hidden_size": 16}, None)
    params = policy.act_fn.init_params(jax.random.key(1), env.obs_dim)
    policy = policy.replace(params=params)
    obs, state = env.reset(jax.random.key(0))
    mask = env.action_mask(state)[0]
    config = SearchConfig(num_simulations=1, num_worlds=4, gumbel_scale=1.0)
    models = _Models(policy.act_fn)
    history = jnp.zeros((env.max_steps + 1, env.obs_dim)).at[0].set(obs[0])


    @jax.jit
    def search(key):
        worlds = sample_worlds(env, models, {"prior": params}, history, jnp.int32(1), key, 4)
        return run_search(env, models, config, {"prior": params}, worlds, obs[0], mask, key)

    for seed in range(20):
        key = jax.random.key(seed)
        out = search(key)
        gumbel = jax.random.gumbel(jax.random.split(key, 3)[0], (2,))
        logits = jax.nn.log_softmax(policy.act_fn.logits(params, obs[0], mask))
        assert int(out.action) == int(jnp.argmax(logits + gumbel))


def test_one_world_and_a_deterministic_opponent_find_the_best_offer():
    """P1 facing a greedy P2 (accepts iff the offer is worth its outside offer): the search's offer
    earns exactly the best reward any first move earns (checked by brute force over all offers)."""
    env = make("bargain")
    values, outside = jnp.array([[30, 20, 80], [5, 40, 60]]), jnp.array([100, 170])
    obs, state = env.deal(values, outside)
    greedy = baseline(env, "greedy")
    rewards = []
    for action in range(env.num_offers):
        _, after, _, _, _ = env.step(jax.random.key(0), state, jnp.array([action, 0]))
        o = env._observations(after)
        reply = greedy(o[1], env.action_mask(after)[1], jax.random.key(0))
        _, end, reward, _, _ = env.step(jax.random.key(0), after, jnp.array([0, reply]))
        rewards.append(float(reward[0]))
    best = max(rewards)
    assert best > float(outside[0] / (values[0] * jnp.array([7, 4, 1])).sum())  # an offer beats walking
    config = SearchConfig(num_simulations=600, use_gumbel=True, gumbel_scale=0.0, max_num_considered=82,
                          leaf="rollout")
    models = _Models(baseline(env, "random").act_fn, greedy.act_fn)
    worlds = Worlds(obs[None], jax.tree_util.tree_map(lambda x: x[None], state), jnp.zeros((1,)))
    out = jax.jit(lambda k: run_search(env, models, config, {"prior": None, "opponent": None}, worlds, obs[0],
                                       env.action_mask(state)[0], k))(jax.random.key(0))
    assert rewards[int(out.action)] == best
    assert abs(float(out.root_q[int(out.action)]) - best) < 1e-6


def test_sequential_halving_schedule():
    targets = sequential_halving_visits(4, 16)
    assert len(targets) == 16 and targets[0] == 0
    assert list(targets[:4]) == [0, 0, 0, 0]  # every considered action is visited before any twice
    assert list(sequential_halving_visits(1, 5)) == [0, 1, 2, 3, 4]


def test_search_policy_is_jittable_vmaps_and_beats_the_uniform_prior_on_kuhn():
    """Search over a uniform prior (opponent modelled as the fixed uniform opponent, sampled at its
    nodes) earns much more than the prior against it and comes close to the exact best-response
    value (0.5 as P1, 0.417 as P2; the prior earns +0.125 and -0.125)."""
    env = make("kuhn_poker")
    uniform = baseline(env, "random")
    searched = search_policy(env, uniform, 50, opponent_model=uniform, num_worlds=8)
    result = evaluate_against(env, searched, {"uniform": uniform}, 1000, jax.random.key(0))
    earned = [float(result["uniform"][s].returns[:, s].mean()) for s in range(2)]
    exact = exact_values(env, uniform, uniform)
    prior_mean = (exact["value_as_p1"] + exact["value_as_p2"]) / 2  # 0: the game is symmetric in value
    best_mean = (exact["best_response_as_p1"] + exact["best_response_as_p2"]) / 2
    assert np.mean(earned) > prior_mean + 0.3
    assert abs(np.mean(earned) - best_mean) < 0.1  # ~4 standard errors of 2 x 1000 games
    # vmapped over games: a per-game call agrees with the batched one
    obs, state = jax.vmap(env.reset)(jax.random.split(jax.random.key(1), 4))
    masks = jax.vmap(env.action_mask)(state)
    memory = searched.act_fn.initial_memory(searched.params)
    keys = jax.random.split(jax.random.key(2), 4)
    act = jax.jit(jax.vmap(lambda o, m, k: searched.act_fn(searched.params, o, m, k, memory=memory)[0]))
    batched = act(obs[:, 0], masks[:, 0], keys)
    single = [int(searched.act_fn(searched.params, obs[i, 0], masks[i, 0], keys[i], memory=memory)[0])
              for i in range(4)]
    assert [int(a) for a in batched] == single


def test_search_policy_plays_in_self_play_evaluation_with_memory():
    env = make("bargain_tiny")
    searched = search_policy(env, baseline(env, "fair_split"), 8, num_worlds=4, leaf="rollout")
    result = evaluate(env, searched, 64, jax.random.key(0))
    assert result.returns.shape == (64, 2)
    assert (result.lengths >= 1).all() and np.isfinite(result.returns).all()


def test_cli_smoke(tmp_path):
    out = tmp_path / "search.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "algos" / "is_mcts.py"), "--env", "kuhn_poker", "--prior", "baseline:random",
         "--opponent-model", "matched", "--opponents", "baseline:random", "--num-simulations", "16",
         "--num-worlds", "4", "--num-games", "200", "--no-progress", "--output", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["overall"]["difference"] > 0  # search (modelling uniform as uniform) beats the uniform prior
    assert data["opponent_model"] == "each opponent itself"
    assert "exact" in data and data["exact"]["random"]["best_response_as_p1"] == 0.5
    assert "| random | P1 |" in proc.stdout


def test_compare_pairs_games_on_the_same_deals():
    """Search and raw play the same deals and keys (common random numbers), also when each opponent
    gets its own search: a 'search' that is the raw policy itself differs by exactly zero."""
    env = make("bargain")
    raw = baseline(env, "random")
    opponents = {"greedy": baseline(env, "greedy"), "soft": baseline(env, "soft")}
    for searched in (raw, {"greedy": raw, "soft": raw}):
        result = compare(env, searched, raw, opponents, 64, jax.random.key(0), batch_size=64, progress=False)
        assert len(result["rows"]) == 4
        assert all(row["difference"] == 0.0 and row["difference_stderr"] == 0.0 for row in result["rows"])
        assert result["overall"]["raw"] == result["overall"]["search"]
