"""Bucket Brigade throughput: env steps/s and genome-profile evaluations/s. Not a test: run by hand.

Ours: ``jit`` + ``lax.scan`` over nights, ``vmap`` over envs, uniformly random (house, mode,
signal) for every agent, auto-reset. Peer (same process): a plain-numpy single env stepped from
Python, written here from the spec the way the original's pure-numpy Python env works (one
game, per-house loops, ``np.random``); the original package is not installable from PyPI, so
this stands in for it (the spec measured the original at 1.4-2.3k single-env steps/s).
Profile evaluations: :func:`jaxmarl_lab.evolution.evaluate_profiles` with the simplified
heuristic, Rust termination rule and the 100-night cap (the evolution/Nash protocol).

    python bench/bucket_brigade_throughput.py [--scenario default] [--batch-sizes 1 1024 16384]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxmarl_lab as jl
from envs.bucket_brigade import ARCHETYPES, SCENARIOS, BucketBrigade, ObsReader, SimplifiedHeuristicAct
from jaxmarl_lab.evolution import evaluate_profiles
from jaxmarl_lab.throughput import best_time


def ours(scenario: str, batch_size: int, steps: int) -> float:
    env = BucketBrigade(scenario=scenario)
    venv = jl.VmapEnv(jl.AutoReset(env), batch_size)

    @jax.jit
    def run(key):
        _, state = venv.reset(key)

        def body(state, key):
            key_act, key_step = jax.random.split(key)
            actions = jax.random.randint(key_act, (batch_size, env.num_agents), 0, env.num_actions)
            return venv.step(key_step, state, actions)[1], None

        state, _ = jax.lax.scan(body, state, jax.random.split(key, steps))
        return state.team_return.sum() + state.houses.sum()  # depends on every night

    return batch_size * steps / best_time(run, jax.random.key(0))


class NumpyBucketBrigade:
    """One game in plain numpy (python termination rule, bernoulli mode), for comparison only."""

    def __init__(self, scenario: str, num_agents: int = 4, seed: int = 0):
        s = SCENARIOS[scenario]
        self.s, self.n, self.h = s, num_agents, s["num_houses"]
        self.rng = np.random.RandomState(seed)
        self.owner = np.arange(self.h) % num_agents
        self.reset()

    def reset(self):
        self.houses = np.where(self.rng.random_sample(self.h) < self.s["rho"], 1, 0)
        self.night = 0
        return self.observe()

    def observe(self):
        return np.concatenate([self.houses, np.zeros(4 * self.n + 12)])

    def step(self, actions):
        s, prev = self.s, self.houses.copy()
        houses = self.houses
        for h in range(self.h):
            if houses[h] == 1:
                k = sum(1 for a in actions if a[1] == 1 and a[0] == h)
                houses[h] = 0 if self.rng.random_sample() < 1 - (1 - s["kappa"]) ** k else 2
        for h in range(self.h):
            if houses[h] == 0 and self.rng.random_sample() < s["rho"]:
                houses[h] = 1
        safe, ruined = (houses == 0).sum(), (houses == 2).sum()
        team = s["team_reward"] * safe / self.h - s["team_penalty"] * ruined / self.h
        rewards = np.zeros(self.n)
        for i, (_, mode, _) in enumerate(actions):
            rewards[i] = team + (-s["work_cost"] if mode else s["rest_reward"])
            for h in range(self.h):
                own = self.owner[h] == i
                if prev[h] != 0 and houses[h] == 0:
                    rewards[i] += s["reward_own"] if own else s["reward_other"]
                if houses[h] == 2:
                    rewards[i] -= s["penalty_own"] if own else s["penalty_other"]
        t, self.night = self.night, self.night + 1
        done = t >= s["min_nights"] and (safe == self.h or ruined == self.h or not (houses == 1).any())
        return self.observe(), rewards, done


def numpy_peer(scenario: str, seconds: float = 3.0) -> float:
    env, rng = NumpyBucketBrigade(scenario), np.random.RandomState(1)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        actions = [(rng.randint(env.h), rng.randint(2), rng.randint(2)) for _ in range(env.n)]
        _, _, done = env.step(actions)
        steps += 1
        if done:
            env.reset()
    return steps / (time.perf_counter() - start)


def profiles_per_second(scenario: str, profiles: int, episodes: int) -> float:
    env = BucketBrigade(scenario=scenario, termination="rust", max_nights=100)
    act = SimplifiedHeuristicAct(ObsReader.of(env))
    pool = jnp.asarray(list(ARCHETYPES.values()))
    picks = jax.random.randint(jax.random.key(0), (profiles, env.num_agents), 0, len(pool))
    genomes = pool[picks]  # [P, N, 10]
    run = lambda key: evaluate_profiles(env, act, genomes, episodes, key)
    return profiles / best_time(run, jax.random.key(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="default")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 1024, 16384])
    parser.add_argument("--steps", type=int, default=200, help="nights per timed scan")
    parser.add_argument("--profiles", type=int, default=256)
    parser.add_argument("--episodes", type=int, default=100, help="games per profile evaluation")
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; scenario {args.scenario}")
    peer = numpy_peer(args.scenario)
    print(f"numpy single env (peer)       {peer:>14,.0f} steps/s")
    for batch in args.batch_sizes:
        rate = ours(args.scenario, batch, args.steps if batch > 1 else 2000)
        print(f"ours, {batch:>6} envs            {rate:>14,.0f} steps/s   {rate / peer:8.1f}x numpy")
    rate = profiles_per_second(args.scenario, args.profiles, args.episodes)
    print(f"genome-profile evaluations ({args.episodes} games each, rust rule, 100-night cap): "
          f"{rate:,.1f} profiles/s = {rate * args.episodes:,.0f} games/s")


if __name__ == "__main__":
    main()
