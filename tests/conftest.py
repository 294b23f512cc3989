import os

# No persistent XLA compilation cache here: it saved no measurable time (tests/test_therapy.py ran
# 127 s with it, 130 s without) and loading cached CPU executables is a crash risk we do not need.
os.environ.setdefault("WANDB_MODE", "offline")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import jaxmarl_lab as jl  # noqa: E402


@pytest.fixture(scope="session")
def env():
    return jl.make("bargain")


def bargain_state(env, values, outside):
    """A fresh game with chosen private values and outside offers (spec test vectors)."""
    _, state = env.reset(jax.random.key(0))
    values = np.asarray(values, np.int32)
    max_value = (values * np.asarray(env.quantities)).sum(axis=1).astype(np.float32)
    state = state.replace(values=jax.numpy.asarray(values), max_value=jax.numpy.asarray(max_value),
                          outside=jax.numpy.asarray(np.asarray(outside, np.int32)))
    return env._observations(state), state


def play(env, state, moves):
    """Apply the mover's actions in order; returns the list of (obs, state, reward, done) after each."""
    out = []
    for a in moves:
        action = np.full((2,), -7, np.int32)  # the non-mover's entry must be ignored
        action[int(state.player)] = a
        obs, state, reward, done, info = env.step(jax.random.key(1), state, action)
        out.append((obs, state, np.asarray(reward), bool(done)))
    return out
