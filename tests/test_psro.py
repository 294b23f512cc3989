"""Equilibrium learning II: meta-solvers, mixtures, PSRO, Ex²PSRO, FCP, cross-play and meta-game CLI."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmarl_lab as jl
from jaxmarl_lab import game_theory as gt
from jaxmarl_lab.metagame import analyse, symmetric_metagame

MATCHING_PENNIES = np.array([[1.0, -1.0], [-1.0, 1.0]])
ROCK_PAPER_SCISSORS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
# no pure equilibrium; the unique one is x = (1/2, 1/2), y = (2/5, 3/5)
CYCLIC_A = np.array([[4.0, 0.0], [1.0, 2.0]])
CYCLIC_B = np.array([[1.0, 3.0], [2.0, 0.0]])
COORDINATION = np.array([[2.0, 0.0], [0.0, 1.0]])


# ---- meta-solvers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", ["nash", "replicator", "fictitious_play", "uniform"])
def test_every_solver_finds_the_matching_pennies_equilibrium(solver):
    x, y = gt.meta_solver(solver)(MATCHING_PENNIES, -MATCHING_PENNIES)
    np.testing.assert_allclose(x, [0.5, 0.5], atol=1e-3)
    np.testing.assert_allclose(y, [0.5, 0.5], atol=1e-3)


def test_rock_paper_scissors():
    third = np.full(3, 1 / 3)
    for x in gt.nash_equilibrium(ROCK_PAPER_SCISSORS):
        np.testing.assert_allclose(x, third, atol=1e-9)
    for x in gt.fictitious_play(ROCK_PAPER_SCISSORS, iterations=20_000):
        np.testing.assert_allclose(x, third, atol=0.01)
    replicator = gt.replicator_dynamics(ROCK_PAPER_SCISSORS)
    assert gt.meta_nash_conv(ROCK_PAPER_SCISSORS, -ROCK_PAPER_SCISSORS, *replicator) < 1e-6
    np.testing.assert_allclose(gt.symmetric_nash(ROCK_PAPER_SCISSORS), third, atol=1e-9)


def test_bimatrix_game_with_a_unique_mixed_equilibrium():
    x, y = gt.nash_equilibrium(CYCLIC_A, CYCLIC_B)  # general-sum: Lemke–Howson
    np.testing.assert_allclose(x, [0.5, 0.5], atol=1e-9)
    np.testing.assert_allclose(y, [0.4, 0.6], atol=1e-9)
    fx, fy = gt.fictitious_play(CYCLIC_A, CYCLIC_B, iterations=20_000)
    np.testing.assert_allclose(fx, [0.5, 0.5], atol=0.01)
    np.testing.assert_allclose(fy, [0.4, 0.6], atol=0.01)


def test_coordination_game():
    x, y = gt.nash_equilibrium(COORDINATION, COORDINATION)
    assert gt.meta_nash_conv(COORDINATION, COORDINATION, x, y) < 1e-9
    rx, ry = gt.replicator_dynamics(COORDINATION, COORDINATION)  # from uniform: the payoff-dominant one
    np.testing.assert_allclose(rx, [1, 0], atol=1e-6)
    np.testing.assert_allclose(ry, [1, 0], atol=1e-6)
    # three symmetric equilibria (1,0), (0,1), (1/3, 2/3): the maximum-entropy one is the mixed one
    np.testing.assert_allclose(gt.symmetric_nash(COORDINATION), [1 / 3, 2 / 3], atol=1e-9)


def test_nash_of_random_games_and_of_degenerate_populations():
    rng = np.random.default_rng(0)
    for _ in range(5):
        A, B = rng.normal(size=(6, 5)), rng.normal(size=(6, 5))
        assert gt.meta_nash_conv(A, B, *gt.nash_equilibrium(A, B)) < 1e-7
    # a population with a duplicated policy (PSRO re-adding a response) is degenerate
    A = np.array([[1.0, -1.0, 1.0], [-1.0, 1.0, -1.0], [1.0, -1.0, 1.0]])
    assert gt.meta_nash_conv(A, -A, *gt.nash_equilibrium(A, -A)) < 1e-9
    B = A + 0.5 * (A > 0)
    assert gt.meta_nash_conv(A, B.T, *gt.nash_equilibrium(A, B.T)) < 1e-6


def test_regret_nash_conv_and_welfare_on_hand_made_matrices():
    A = np.array([[3.0, 0.0], [5.0, 1.0]])  # prisoner's dilemma, row player
    B = A.T
    x, y = np.array([1.0, 0.0]), np.array([1.0, 0.0])  # both cooperate
    regret_x, regret_y = gt.strategy_regrets(A, B, x, y)
    np.testing.assert_allclose(regret_x, [0.0, 2.0])
    np.testing.assert_allclose(regret_y, [0.0, 2.0])
    assert gt.meta_nash_conv(A, B, x, y) == pytest.approx(4.0)
    assert gt.meta_nash_conv(A, B, np.array([0.0, 1.0]), np.array([0.0, 1.0])) == pytest.approx(0.0)
    np.testing.assert_allclose(gt.symmetric_regrets(A, np.array([0.5, 0.5])), [-0.75, 0.75])
    payoff = gt.expected_payoffs(np.stack([A, B], axis=-1), np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    np.testing.assert_allclose(payoff, [4.0, 1.5])
    assert gt.utilitarian_welfare(np.array([0.3, 0.5])) == pytest.approx(0.8)
    assert gt.nash_welfare(np.array([0.25, 1.0])) == pytest.approx(0.5)
    assert gt.nash_welfare(np.array([-1.0, 1.0])) == pytest.approx(1e-4)  # floored at 1e-8 per seat
    assert gt.egalitarian_welfare(np.array([0.3, 0.5])) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="valid meta-solvers"):
        gt.meta_solver("linear_program")
    with pytest.raises(ValueError, match="valid"):
        gt.welfare_function("rawlsian")


def test_symmetric_metagame_and_analysis():
    payoffs = np.zeros((2, 2, 2))
    payoffs[..., 0] = [[1.0, 0.0], [2.0, 0.5]]  # seat-0 returns
    payoffs[..., 1] = [[1.0, 2.0], [0.0, 0.5]]  # seat-1 returns: the same game seen from the other seat
    M = symmetric_metagame(payoffs)
    np.testing.assert_allclose(M, [[1.0, 0.0], [2.0, 0.5]])
    result = analyse(payoffs)
    np.testing.assert_allclose(result["probability"], [0.0, 1.0], atol=1e-9)  # the dominant strategy
    np.testing.assert_allclose(result["regret"], [-0.5, 0.0], atol=1e-9)
    np.testing.assert_allclose(result["uniform_score"], [0.5, 1.25])
    assert result["utilitarian_welfare"] == pytest.approx(1.0)
    assert result["nash_welfare"] == pytest.approx(0.5)


# ---- mixtures ------------------------------------------------------------------------------------
def _kuhn_mixture(weights):
    from jaxmarl_lab.networks import make_network
    from jaxmarl_lab.population import mixture_policy, stack_params

    env = jl.make("kuhn_poker")
    kwargs = {"name": "mlp", "num_actions": env.num_actions, "hidden_size": 16, "num_layers": 1}
    network = make_network(**kwargs)
    nets = [jax.tree_util.tree_map(lambda x: 8 * x, network.init(jax.random.key(i), jnp.zeros(env.obs_shape)))
            for i in range(4)]
    components = stack_params([stack_params(nets[:2]), stack_params(nets[2:])])
    return env, kwargs, nets, mixture_policy(kwargs, components, np.asarray(weights, np.float32),
                                             seat_slot=env.seat_slot)


def test_exact_nash_conv_of_a_mixture_equals_openspiel():
    pyspiel = pytest.importorskip("pyspiel")
    from open_spiel.python.algorithms import exploitability, policy_aggregator

    from jaxmarl_lab.networks import actor_critic_policy

    weights = [[0.3, 0.7], [0.6, 0.4]]
    env, kwargs, nets, mixture = _kuhn_mixture(weights)
    ours = gt.nash_conv(env, mixture)
    game = pyspiel.load_game("kuhn_poker")
    single = [gt.to_openspiel_policy(game, actor_critic_policy(kwargs, p, seat_slot=env.seat_slot)) for p in nets]
    aggregated = policy_aggregator.PolicyAggregator(game).aggregate([0, 1], [single[:2], single[2:]], weights)
    assert ours.nash_conv == pytest.approx(exploitability.nash_conv(game, aggregated), abs=1e-6)


def test_mixture_draws_one_component_per_game():
    env, _, _, mixture = _kuhn_mixture([[0.5, 0.5], [0.5, 0.5]])
    exact = gt.nash_conv(env, mixture).values
    result = jl.evaluate(env, mixture, 100_000, jax.random.key(0))
    stderr = result.stderr_returns
    # the exact value is the per-game mixture; drawing per decision plays a different strategy
    assert abs(result.mean_returns[0] - exact[0]) < 4 * stderr[0]


def test_mixture_acting_does_not_copy_the_population_per_game():
    """vmapped over games, a 16-policy mixture needs activations, not one parameter copy per game."""
    from algos import psro
    from jaxmarl_lab.population import MixtureAct

    env, num_games = jl.make("bargain"), 4096
    config = psro.Config(env="bargain", hidden_size=128, max_policies=16)
    act = psro.make_policy(config, env, None).act_fn
    assert isinstance(act, MixtureAct)
    obs, state = env.reset(jax.random.key(0))
    params = act.init_params(jax.random.key(1), obs.shape[-1])
    mask = env.legal_actions(state)
    play = jax.jit(jax.vmap(lambda o, key: act(params, o, mask, key, key)))
    batch = jnp.broadcast_to(obs[0], (num_games,) + obs[0].shape)
    compiled = play.lower(batch, jax.random.split(jax.random.key(2), num_games)).compile()
    param_bytes = sum(x.nbytes for x in jax.tree_util.tree_leaves(params["components"]))
    assert compiled.memory_analysis().temp_size_in_bytes < 0.05 * num_games * param_bytes


# ---- Ex²PSRO pieces ------------------------------------------------------------------------------
def test_kl_term_is_zero_when_the_response_equals_the_exploration_policy():
    from jaxmarl_lab.oracle import kl_to_exploration

    logits = jnp.array([[0.3, -1.0, 2.0], [1.0, 1.0, -3.0]])
    mask = jnp.array([[True, True, False], [True, True, True]])
    log_probs = jax.nn.log_softmax(jnp.where(mask, logits, -1e9))
    weight = jnp.ones(2)
    assert float(kl_to_exploration(jnp.exp(log_probs), log_probs, mask, weight)) == pytest.approx(0.0, abs=1e-7)
    other = jax.nn.log_softmax(jnp.where(mask, logits[::-1], -1e9))
    assert float(kl_to_exploration(jnp.exp(other), log_probs, mask, weight)) > 0.01


def test_adaptive_kl_coefficient():
    from algos.ex2psro import Config, adaptive_kl
    from jaxmarl_lab.oracle import initial_kl_state

    update = adaptive_kl(Config(kl_target=0.01))
    state = update(initial_kl_state(0.1), jnp.asarray(0.05))  # mean KL 0.05 > 2 x target
    assert float(state["kappa"]) == pytest.approx(0.15)
    state = update(initial_kl_state(0.1), jnp.asarray(0.001))  # < target / 2
    assert float(state["kappa"]) == pytest.approx(0.05)
    state = update(initial_kl_state(0.1), jnp.asarray(0.01))  # in band: unchanged
    assert float(state["kappa"]) == pytest.approx(0.1)
    state = initial_kl_state(9.0)
    for _ in range(3):
        state = update(state, jnp.asarray(1.0))
    assert float(state["kappa"]) == pytest.approx(10.0)  # clipped
    assert adaptive_kl(Config(use_adaptive_kl=False)) is None


def test_exploration_experts_are_the_top_k_by_welfare():
    from algos.ex2psro import Config, expert_weights

    payoffs = np.zeros((4, 4, 2))
    payoffs[..., 0] = np.array([0.1, 0.9, 0.5, 0.7])[:, None]  # seat-0 policy i's welfare comes from its row
    w = expert_weights(Config(exploration_top_k=2, welfare_weighted=False), payoffs, seat=0)
    np.testing.assert_allclose(w, [0.0, 0.5, 0.0, 0.5])
    w = expert_weights(Config(exploration_top_k=2, welfare_temperature=0.1), payoffs, seat=0)
    assert w[0] == 0 and w[2] == 0 and w[1] > w[3] > 0 and w.sum() == pytest.approx(1.0)


def test_fcp_pool_sampling():
    from algos.fcp import Config, pool_weights

    default = Config()  # the default config is valid: whole PPO updates per snapshot
    assert default.partner_config().total_timesteps == default.rounds * default.snapshot_interval
    with pytest.raises(ValueError, match="multiple of"):
        Config(snapshot_interval=250_000).partner_config()
    uniform = pool_weights(Config(population_size=3), 12)
    np.testing.assert_allclose(uniform, np.full(12, 1 / 12))
    prioritised = pool_weights(Config(population_size=3, prioritized=True, uniform_prob=0.5, recent_window=2), 12)
    assert prioritised.sum() == pytest.approx(1.0)
    # rounds 2 and 3 (the newest two of four) share the prioritised half
    np.testing.assert_allclose(prioritised[:6], 0.5 / 12)
    np.testing.assert_allclose(prioritised[6:], 0.5 / 12 + 0.5 / 6)


# ---- PSRO on Kuhn, runs, CLIs ---------------------------------------------------------------------
@pytest.mark.slow
def test_psro_reduces_kuhn_nash_conv(tmp_path):
    from algos import psro

    args = ["--num-iterations", "3", "--br-updates", "60", "--payoff-games", "2000", "--results-dir", str(tmp_path),
            "--quiet"]
    one_iteration = psro.Config(br_updates=60).steps_per_update
    assert psro.main(args + ["--stop-at-step", str(one_iteration)]) == 0  # populations are checkpointed ...
    (run_dir,) = list((tmp_path / "psro").iterdir())
    assert jl.Run(run_dir).metadata["status"] == "interrupted"
    assert psro.main(["--resume-from", str(run_dir), "--results-dir", str(tmp_path), "--quiet"]) == 0  # ... resumed
    assert jl.Run(run_dir).metadata["status"] == "completed"
    rows = jl.Run(run_dir).read_metrics()
    curve = [r["eval/nash_conv"] for r in rows if r.get("eval/nash_conv") is not None]
    uniform = gt.nash_conv(jl.make("kuhn_poker"), jl.baseline(jl.make("kuhn_poker"), "random")).nash_conv
    assert len(curve) == 3 and curve[-1] < 0.5 < uniform  # from ~0.92 (a random network) to below 0.5
    iterations = [r for r in rows if r.get("population_size") is not None]
    assert [int(r["population_size"]) for r in iterations] == [2, 3, 4]
    assert all(r["meta_nash_conv"] < 1e-6 for r in iterations)  # the exact meta-solver
    policy = jl.load_policy(run_dir)
    final = json.loads((run_dir / "final_eval.json").read_text())
    assert gt.nash_conv(jl.make("kuhn_poker"), policy).nash_conv == pytest.approx(final["summary"]["nash_conv"],
                                                                                   abs=1e-6)


@pytest.fixture(scope="module")
def bargain_runs(tmp_path_factory):
    """Tiny PSRO, Ex²PSRO and FCP runs on bargain (they check the CLIs and serve as cross-play fixtures)."""
    from algos import ex2psro, fcp, psro

    root = tmp_path_factory.mktemp("bargain_runs")
    tiny = ["--env", "bargain", "--hidden-size", "16", "--br-num-envs", "64", "--br-rollout", "8",
            "--eval-games", "100", "--results-dir", str(root), "--quiet"]
    psro_args = ["--num-iterations", "1", "--br-updates", "2", "--payoff-games", "100", "--max-policies", "4"]
    assert psro.main(tiny + psro_args) == 0
    assert ex2psro.main(tiny + psro_args + ["--num-iterations", "2", "--imitation-samples", "256",
                                            "--welfare-fn", "nash"]) == 0
    assert fcp.main(tiny + ["--population-size", "2", "--partner-timesteps", "4096", "--snapshot-interval", "2048",
                            "--partner-num-envs", "64", "--partner-rollout", "32", "--br-updates", "2",
                            "--prioritized"]) == 0
    return {name: next((root / name).iterdir()) for name in ("psro", "ex2psro", "fcp")}


def test_bargain_runs_record_their_metrics(bargain_runs):
    ex_rows = [r for r in jl.Run(bargain_runs["ex2psro"]).read_metrics() if r.get("population_size") is not None]
    assert len(ex_rows) == 2
    for key in ("equilibrium_welfare", "welfare_improvement", "kl_coef", "br_avg_kl_p0", "br_kl_coef_p1"):
        assert np.isfinite(ex_rows[-1][key]), key
    assert np.isfinite(ex_rows[-1]["imitation_loss_p0"])  # two policies: a real behaviour-cloning step
    fcp_rows = jl.Run(bargain_runs["fcp"]).read_metrics()
    assert [int(r["pool_size"]) for r in fcp_rows if r.get("pool_size") is not None] == [4, 6]
    for name, run_dir in bargain_runs.items():
        final = json.loads((run_dir / "final_eval.json").read_text())
        assert "selfplay_welfare" in final["summary"], name


def test_crossplay_and_metagame_cli(bargain_runs, tmp_path):
    from jaxmarl_lab.cli import main

    out = tmp_path / "xp" / "table.json"
    specs = [f"run:{bargain_runs[name]}" for name in ("psro", "ex2psro", "fcp")]
    code = main(["crossplay", "--env", "bargain", "--policies", *specs, "baseline:random", "baseline:greedy",
                 "--num-games", "200", "--output", str(out), "--quiet"])
    assert code == 0
    data = json.loads(out.read_text())
    assert np.asarray(data["payoff_matrix"]).shape == (5, 5, 2)
    cell = data["detailed_results"]["0_vs_3"]
    for key in ("mean_reward_p0", "std_reward_p1", "mean_welfare", "accept_rate"):
        assert key in cell
    games = np.load(out.with_suffix(".npz"))["returns"]
    assert games.shape == (5, 5, 200, 2)
    np.testing.assert_allclose(games.mean(axis=2), data["payoff_matrix"], atol=1e-5)
    for suffix in (".csv", "_p0.csv", "_p1.csv", "_welfare.csv", ".png"):
        assert (tmp_path / "xp" / f"table{suffix}").exists(), suffix
    assert main(["metagame", str(out), "--bootstrap", "50"]) == 0
    result = json.loads((tmp_path / "xp" / "table_metagame.json").read_text())
    probs = np.array([p["probability"] for p in result["policies"]])
    assert probs.sum() == pytest.approx(1.0) and (probs >= 0).all()
    regrets = np.array([p["regret"] for p in result["policies"]])
    assert regrets.max() < 1e-6  # nobody gains by deviating from the equilibrium
    for p in result["policies"]:
        low, high = p["uniform_score_ci"]
        assert low <= p["uniform_score"] <= high
    eq = result["equilibrium"]
    assert eq["utilitarian_welfare_ci"][0] <= eq["utilitarian_welfare"] <= eq["utilitarian_welfare_ci"][1]
    assert "| policy |" in (tmp_path / "xp" / "table_metagame.md").read_text()
    assert main(["metagame", str(tmp_path / "missing.json")]) != 0


def test_bad_options_fail_clearly(tmp_path, capsys):
    from algos import ex2psro, psro

    assert psro.main(["--meta-solver", "alpharank", "--results-dir", str(tmp_path)]) == 2
    assert "valid meta-solvers" in capsys.readouterr().err
    assert psro.main(["--num-iterations", "40", "--results-dir", str(tmp_path)]) == 2
    assert "max_policies" in capsys.readouterr().err
    assert ex2psro.main(["--welfare-fn", "rawlsian", "--results-dir", str(tmp_path)]) == 2
    assert psro.main(["--num-seeds", "2", "--results-dir", str(tmp_path)]) == 2


def test_crossplay_accepts_a_search_entry(bargain_runs, tmp_path):
    """``search:RUN_DIR:SIMS`` (IS-MCTS over a run's policy) plays in cross-play like any policy."""
    from jaxmarl_lab.cli import main

    out = tmp_path / "search_table.json"
    code = main(["crossplay", "--env", "bargain", "--policies", f"search:{bargain_runs['fcp']}:4", "baseline:greedy",
                 "--num-games", "32", "--output", str(out), "--quiet"])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["policy_names"][0] == f"search:{bargain_runs['fcp'].name}:4"
    payoff = np.asarray(data["payoff_matrix"])
    assert payoff.shape == (2, 2, 2) and np.isfinite(payoff).all() and (payoff > 0).all()
