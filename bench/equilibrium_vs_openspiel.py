"""NashConv reached after fixed wall-clock budgets: our NFSP and Deep CFR against OpenSpiel's.

    python bench/equilibrium_vs_openspiel.py                         # Kuhn and Leduc, 60 s and 300 s
    python bench/equilibrium_vs_openspiel.py --games kuhn_poker --budgets 30 120 600

Every learner runs in this process, one after another, for the largest budget; at each budget
its current average policy is evaluated with the exact NashConv (the evaluation time is not
counted; compilation and every other part of training is). Rows:

* ``ours nfsp`` / ``ours deep_cfr``: ``algos/nfsp.py`` and ``algos/deep_cfr.py`` with their
  per-game defaults (``ENV_DEFAULTS``), chunk by chunk.
* ``openspiel nfsp (jax)``: ``open_spiel.python.jax.nfsp`` with the settings of OpenSpiel's Kuhn
  example (hidden [128], η 0.1, ε 0.06 → 0.001, SGD 0.01, learn every 64 steps), episode by episode.
  Its supervised update is skipped while the reservoir does not exist yet: OpenSpiel 2.0.2 creates
  it at the first best-response step and crashes if a learning step comes first (seen on Leduc).
* ``openspiel deep_cfr (jax)``: ``open_spiel.python.jax.deep_cfr.DeepCFRSolver`` iteration by
  iteration (its own loop), the strategy network trained at each budget.
* ``openspiel cfr (c++)``: tabular CFR from ``pyspiel`` for reference (exact tables, no function
  approximation, full tree walks).

NashConv values of our policies come from ``jaxmarl_lab.game_theory.nash_conv``; OpenSpiel's from
``open_spiel.python.algorithms.exploitability.nash_conv`` (the two agree to 1e-6, see the tests).
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import numpy as np


class Clock:
    """Wall time that can be paused while evaluating."""

    def __init__(self):
        self.spent, self.started = 0.0, time.perf_counter()

    def pause(self) -> float:
        self.spent += time.perf_counter() - self.started
        return self.spent

    def resume(self) -> None:
        self.started = time.perf_counter()

    @property
    def now(self) -> float:
        return self.spent + time.perf_counter() - self.started


def run_ours(algorithm: str, game: str, budgets: list[float]) -> list[float]:
    import jaxmarl_lab as jl
    from jaxmarl_lab.game_theory import nash_conv

    module = __import__(f"algos.{algorithm}", fromlist=["Config"])
    config = module.Config(**{**module.ENV_DEFAULTS.get(game, {}), "env": game})
    env = jl.make(game)
    results, clock = [], Clock()
    init, train_chunk = module.make_train(config, env)
    runner, chunk = jax.jit(init)(jax.random.key(0)), jax.jit(train_chunk)
    for budget in budgets:
        while clock.now < budget:
            runner, metrics = chunk(runner)
            jax.block_until_ready(metrics)
        clock.pause()
        results.append(nash_conv(env, module.make_policy(config, env, runner.params)).nash_conv)
        clock.resume()
    return results


def run_openspiel_nfsp(game_name: str, budgets: list[float]) -> list[float]:
    from open_spiel.python import policy, rl_environment
    from open_spiel.python.algorithms import exploitability
    from open_spiel.python.jax import nfsp

    environment = rl_environment.Environment(game_name)
    size = environment.observation_spec()["info_state"][0]
    actions = environment.action_spec()["num_actions"]
    agents = [nfsp.NFSP(p, size, actions, [128], reservoir_buffer_capacity=2_000_000, anticipatory_param=0.1,
                        batch_size=128, rl_learning_rate=0.01, sl_learning_rate=0.01, min_buffer_size_to_learn=1000,
                        learn_every=64, optimizer_str="sgd", allow_checkpointing=False,
                        replay_buffer_capacity=200_000, epsilon_start=0.06, epsilon_end=0.001)
              for p in range(2)]
    for agent in agents:  # OpenSpiel 2.0.2 bug: _learn() fails while no best-response step has filled the reservoir
        agent._learn = (lambda a, learn: lambda: None if a._reservoir_buffer is None else learn())(agent, agent._learn)

    class Average(policy.Policy):
        def __init__(self):
            super().__init__(environment.game, [0, 1])

        def action_probabilities(self, state, player_id=None):
            player = state.current_player()
            legal = state.legal_actions(player)
            step = rl_environment.TimeStep(
                observations={"info_state": [state.information_state_tensor(p) for p in range(2)],
                              "legal_actions": [state.legal_actions(p) for p in range(2)],
                              "current_player": player, "serialized_state": ""},
                rewards=None, discounts=None, step_type=None)
            with agents[player].temp_mode_as(nfsp.MODE.AVERAGE_POLICY):
                probs = agents[player].step(step, is_evaluation=True).probs
            return {a: float(probs[a]) for a in legal}

    results, clock = [], Clock()
    for budget in budgets:
        while clock.now < budget:
            time_step = environment.reset()
            while not time_step.last():
                player = time_step.observations["current_player"]
                time_step = environment.step([agents[player].step(time_step).action])
            for agent in agents:
                agent.step(time_step)
        clock.pause()
        results.append(exploitability.nash_conv(environment.game, policy.tabular_policy_from_callable(
            environment.game, Average().action_probabilities)))
        clock.resume()
    return results


def run_openspiel_deep_cfr(game_name: str, budgets: list[float]) -> list[float]:
    import pyspiel
    from open_spiel.python import policy
    from open_spiel.python.algorithms import exploitability
    from open_spiel.python.jax import deep_cfr

    game = pyspiel.load_game(game_name)
    # the settings of OpenSpiel's deep_cfr example, except a smaller strategy-network budget per evaluation
    solver = deep_cfr.DeepCFRSolver(game, policy_network_layers=(32, 32), advantage_network_layers=(16, 16),
                                    num_traversals=40, learning_rate=1e-3, batch_size_advantage=128,
                                    batch_size_strategy=1024, memory_capacity=int(1e7),
                                    policy_network_train_steps=400, advantage_network_train_steps=20)
    results, clock = [], Clock()
    for budget in budgets:
        while clock.now < budget:
            for p in range(2):
                for _ in range(solver._num_traversals):
                    solver._traverse_game_tree(solver._root_node, p)
                solver._reinitialize_advantage_network(p)
                solver._learn_advantage_network(p)
            solver._iteration += 1
        solver._learn_strategy_network()  # counted: it makes the policy
        clock.pause()
        table = policy.tabular_policy_from_callable(game, solver.action_probabilities)
        results.append(exploitability.nash_conv(game, table))
        solver._reinitialize_policy_network()
        solver._cached_policy.clear()
        clock.resume()
    return results


def run_openspiel_cfr(game_name: str, budgets: list[float]) -> list[float]:
    import pyspiel

    game = pyspiel.load_game(game_name)
    solver = pyspiel.CFRSolver(game)
    results, clock = [], Clock()
    for budget in budgets:
        while clock.now < budget:
            for _ in range(10):
                solver.evaluate_and_update_policy()
        clock.pause()
        results.append(pyspiel.nash_conv(game, solver.average_policy()))
        clock.resume()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", nargs="+", default=["kuhn_poker", "leduc_poker"])
    parser.add_argument("--budgets", nargs="+", type=float, default=[60.0, 300.0], help="seconds")
    parser.add_argument("--only", nargs="+", default=None, help="rows to run (e.g. 'ours nfsp')")
    args = parser.parse_args(argv)
    budgets = sorted(args.budgets)
    rows = {
        "ours nfsp": lambda g: run_ours("nfsp", g, budgets),
        "ours deep_cfr": lambda g: run_ours("deep_cfr", g, budgets),
        "openspiel nfsp (jax)": lambda g: run_openspiel_nfsp(g, budgets),
        "openspiel deep_cfr (jax)": lambda g: run_openspiel_deep_cfr(g, budgets),
        "openspiel cfr (c++)": lambda g: run_openspiel_cfr(g, budgets),
    }
    print(f"machine: {platform.processor() or platform.machine()}, jax {jax.__version__} on "
          f"{jax.devices()[0].platform}; NashConv after each wall-clock budget (lower is better)")
    for game in args.games:
        header = f"| {game:<26} |" + "".join(f" {b:>8.0f} s |" for b in budgets)
        print("\n" + header + "\n|" + "-" * 28 + "|" + "-----------|" * len(budgets))
        for name, run in rows.items():
            if args.only and name not in args.only:
                continue
            values = run(game)
            print(f"| {name:<26} |" + "".join(f" {v:>10.4f}|" for v in np.asarray(values)), flush=True)


if __name__ == "__main__":
    main()
