"""Evolving the genomes of parametrised scripted agents (Bucket Brigade's 10-gene heuristic).

A *profile* gives every seat its own params for one shared ``act_fn`` (all seats play the same
kind of scripted agent, each with its own genome). :func:`evaluate_profiles` plays E episodes of
each of P profiles in one jitted, vmapped program and returns the mean return of every seat
[P, N]. :func:`evolve` runs a compact genetic algorithm over genomes in [0, 1]^D, all generations
inside one ``lax.scan``: fitness = the candidate's own mean return in seat 0 with the other seats
drawn per episode from a pool of opponent genomes (the original's V7 protocol). Within a
generation every candidate plays the same games against the same teammates (common random
numbers), so selection compares genomes rather than luck.

GA (per generation): keep the ``elite`` best; fill the rest with children of two tournament
winners (size 3): uniform crossover, then Gaussian mutation (σ = ``mutation``, each gene with
probability ``mutation_rate``), clipped to [0, 1].
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxmarl_lab.evaluation import _play_episode


def _profile_returns(env, act_fn, profile: jax.Array, key: jax.Array, env_params) -> jax.Array:
    """Returns [N] of one episode in which seat i acts with ``profile[i]``."""

    def joint_act(obs, mask, k, episode_key, memory):
        keys = jax.random.split(k, env.num_agents)
        return jax.vmap(act_fn)(profile, obs, mask, keys).astype(jnp.int32), memory

    return _play_episode(env, joint_act, key, env_params)[0]


@partial(jax.jit, static_argnames=("env", "act_fn", "episodes"))
def evaluate_profiles(env, act_fn, profiles: jax.Array, episodes: int, key: jax.Array, env_params=None) -> jax.Array:
    """Mean return of each seat [P, N] over ``episodes`` games of each profile [P, N, D]."""
    env_params = env.default_params if env_params is None else env_params
    keys = jax.random.split(key, episodes)
    per_game = jax.vmap(lambda profile: jax.vmap(
        lambda k: _profile_returns(env, act_fn, profile, k, env_params))(keys))(profiles)  # [P, E, N]
    return per_game.mean(axis=1)


@dataclass
class EvolutionResult:
    best_genome: np.ndarray  # [D] the best of the last generation (elites are re-evaluated every generation)
    best_fitness: float  # its fitness in the last generation's games
    best_per_generation: np.ndarray  # [G] best fitness of each generation
    mean_per_generation: np.ndarray  # [G] mean fitness of each generation

    def save(self, directory: str | Path, gene_names: tuple[str, ...] | None = None, **info) -> Path:
        """best_genome.json and fitness_curve.png in ``directory``."""
        from matplotlib.figure import Figure

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        genome = [float(x) for x in self.best_genome]
        record = {"genome": genome, "fitness": self.best_fitness,
                  "best_per_generation": [float(x) for x in self.best_per_generation],
                  "mean_per_generation": [float(x) for x in self.mean_per_generation], **info}
        if gene_names:
            record["genes"] = dict(zip(gene_names, genome, strict=True))
        (out / "best_genome.json").write_text(json.dumps(record, indent=2))
        fig = Figure(figsize=(5, 3.4))
        ax = fig.subplots()
        generations = np.arange(1, len(self.best_per_generation) + 1)
        ax.plot(generations, self.best_per_generation, label="best")
        ax.plot(generations, self.mean_per_generation, label="population mean")
        ax.set_xlabel("generation")
        ax.set_ylabel("fitness (own mean return)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "fitness_curve.png", dpi=110)
        return out


def evolve(env, act_fn, opponent_genomes: jax.Array, key: jax.Array, *, population: int = 64,
           generations: int = 50, episodes: int = 20, elite: int = 4, mutation: float = 0.1,
           mutation_rate: float = 0.3, dim: int | None = None, env_params=None) -> EvolutionResult:
    """Evolve seat 0's genome against teammates drawn per episode from ``opponent_genomes`` [K, D]."""
    opponent_genomes = jnp.asarray(opponent_genomes, jnp.float32)
    dim = dim or int(opponent_genomes.shape[-1])
    if not 0 < elite < population:
        raise ValueError(f"elite must be in 1..population-1, got {elite} (population {population})")
    if population < 2 or generations < 1 or episodes < 1:
        raise ValueError("population >= 2, generations >= 1 and episodes >= 1 are required")
    run = _evolution_program(env, act_fn, population, generations, episodes, elite, dim)
    env_params = env.default_params if env_params is None else env_params
    best, best_fit, best_curve, mean_curve = jax.device_get(
        run(opponent_genomes, key, jnp.float32(mutation), jnp.float32(mutation_rate), env_params))
    return EvolutionResult(np.asarray(best), float(best_fit), np.asarray(best_curve), np.asarray(mean_curve))


@functools.lru_cache(maxsize=16)
def _evolution_program(env, act_fn, population, generations, episodes, elite, dim):
    """The whole evolution as one jitted program (cached per static setting)."""
    num_seats = env.num_agents

    def fitness(genomes, opponents, key, env_params):  # [P, D] -> [P]
        # common random numbers: every candidate meets the same teammates in the same games
        k_team, k_games = jax.random.split(key)
        picks = jax.random.randint(k_team, (episodes, num_seats - 1), 0, opponents.shape[0])
        keys = jax.random.split(k_games, episodes)

        def one(genome):
            def game(pick, kg):
                profile = jnp.concatenate([genome[None], opponents[pick]], axis=0)
                return _profile_returns(env, act_fn, profile, kg, env_params)[0]

            return jax.vmap(game)(picks, keys).mean()

        return jax.vmap(one)(genomes)

    def tournament(key, scores):
        entrants = jax.random.randint(key, (3,), 0, population)
        return entrants[jnp.argmax(scores[entrants])]

    def generation(genomes, key, opponents, mutation, mutation_rate, env_params):
        k_fit, k_parents, k_cross, k_mut, k_where = jax.random.split(key, 5)
        scores = fitness(genomes, opponents, k_fit, env_params)
        order = jnp.argsort(-scores)
        children = population - elite
        parent_keys = jax.random.split(k_parents, 2 * children).reshape(children, 2)
        parents = jax.vmap(jax.vmap(lambda k: tournament(k, scores)))(parent_keys)  # [C, 2]
        take_first = jax.random.bernoulli(k_cross, 0.5, (children, dim))
        kids = jnp.where(take_first, genomes[parents[:, 0]], genomes[parents[:, 1]])
        noise = mutation * jax.random.normal(k_mut, kids.shape)
        kids = jnp.clip(kids + noise * jax.random.bernoulli(k_where, mutation_rate, kids.shape), 0.0, 1.0)
        genomes = jnp.concatenate([genomes[order[:elite]], kids])  # genomes[0]: this generation's best
        return genomes, (scores.max(), scores.mean())

    def program(opponents, key, mutation, mutation_rate, env_params):
        k_init, k_gens = jax.random.split(key)
        genomes = jax.random.uniform(k_init, (population, dim))
        step = partial(generation, opponents=opponents, mutation=mutation, mutation_rate=mutation_rate,
                       env_params=env_params)
        genomes, (best_curve, mean_curve) = jax.lax.scan(step, genomes, jax.random.split(k_gens, generations))
        return genomes[0], best_curve[-1], best_curve, mean_curve

    return jax.jit(program)
