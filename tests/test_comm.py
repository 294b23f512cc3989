"""Communication metrics on hand-made data and scripted teams with known answers."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmarl_lab as jl
from jaxmarl_lab.comm import (
    causal_influence_bits,
    compare_channel,
    entropy_bits,
    evaluate_comm,
    mutual_information_bits,
)

LOG2_3 = float(np.log2(3))


def test_information_measures_on_exact_counts():
    goals = np.repeat(np.arange(3), 100)
    assert entropy_bits(goals, 3) == pytest.approx(LOG2_3)
    # a message that names the goal carries all of it; a constant message none
    assert mutual_information_bits(goals, goals) == pytest.approx(LOG2_3)
    assert mutual_information_bits(goals * 3 + 1, goals) == pytest.approx(LOG2_3)  # any injective code
    assert mutual_information_bits(np.zeros_like(goals), goals) == pytest.approx(0.0)
    # independent by construction: every (x, y) pair equally often
    x, y = np.meshgrid(np.arange(10), np.arange(5), indexing="ij")
    assert mutual_information_bits(x.ravel(), y.ravel()) == pytest.approx(0.0, abs=1e-12)
    # y = x mod 5 over 10 uniform symbols: I = H(y) = log2 5
    assert mutual_information_bits(np.arange(10), np.arange(10) % 5) == pytest.approx(np.log2(5))
    with pytest.raises(ValueError, match="equal shapes"):
        mutual_information_bits(np.arange(3), np.arange(4))


def test_causal_influence_known_answers():
    ignore = np.full((7, 10, 5), 0.2)  # same move distribution whatever the message
    assert causal_influence_bits(ignore) == pytest.approx(0.0)
    follow = np.broadcast_to(np.eye(5)[np.arange(10) % 5], (7, 10, 5))  # move = symbol mod 5
    assert causal_influence_bits(follow) == pytest.approx(np.log2(5))
    half = np.concatenate([ignore[:1], follow[:1]])  # averaged over states
    assert causal_influence_bits(half) == pytest.approx(np.log2(5) / 2)


@dataclass(frozen=True)
class GoalSpeakerDeafMover:
    """Says its private goal (symbol = goal) but moves right whatever it hears."""

    def __call__(self, params, obs, mask, key):
        return (5 * jnp.argmax(obs[8:11]) + 2).astype(jnp.int32)

    def action_probs(self, params, obs, mask):
        return jax.nn.one_hot(self(params, obs, mask, None), mask.shape[-1])


@pytest.fixture(scope="module")
def reference_env():
    return jl.make("mpe_simple_reference")


def test_speaker_naming_its_goal_and_a_deaf_listener(reference_env):
    report = evaluate_comm(jl.Policy(None, GoalSpeakerDeafMover()), 600, env=reference_env)
    s = report.summary
    # goals are drawn uniformly; the plug-in estimate equals the empirical goal entropy
    assert s["positive_signalling"] == pytest.approx(LOG2_3, abs=0.01)
    assert s["message_entropy"] == pytest.approx(LOG2_3, abs=0.01)
    assert s["causal_influence"] == pytest.approx(0.0, abs=1e-9)  # the listener ignores messages
    assert s["speaker_consistency"] == pytest.approx(0.0, abs=1e-9)  # the move is constant
    assert s["instantaneous_coordination"] == pytest.approx(0.0, abs=1e-9)
    for name in ("zero", "shuffle"):
        assert report.ablation[name]["drop"] == pytest.approx(0.0, abs=1e-6)
    counts = report.symbol_given_goal[0]
    assert (counts[:, 3:] == 0).all() and (np.diag(counts) == counts.sum(axis=1)).all()


def test_random_team_has_no_signal(reference_env):
    report = evaluate_comm(jl.baseline(reference_env, "random"), 2000, env=reference_env)
    s = report.summary
    assert s["message_entropy"] == pytest.approx(np.log2(10), abs=0.01)
    assert s["positive_signalling"] < 0.01  # plug-in bias only: ~ (10-1)(3-1) / (2 n ln 2)
    assert s["causal_influence"] == pytest.approx(0.0, abs=1e-9)  # exact probabilities: uniform
    assert s["success_all_rate"] < 0.01


def test_oracle_communicators_use_the_channel(reference_env):
    report = evaluate_comm(jl.baseline(reference_env, "oracle_communicator"), 1000, env=reference_env)
    s = report.summary
    assert s["positive_signalling"] == pytest.approx(LOG2_3, abs=0.01)
    assert s["success_rate"] > 0.95 and s["final_distance"] < 0.1
    assert s["causal_influence"] > 0.5
    for name in ("zero", "shuffle"):
        assert report.ablation[name]["drop_z"] > 3  # losing the messages costs return
    assert report.ablation["zero"]["drop"] > 10
    assert "positive signalling" in str(report)
    report.to_dict()


def test_evaluate_comm_errors(reference_env):
    with pytest.raises(ValueError, match="no communication channel"):
        spread = jl.make("mpe_simple_spread")
        evaluate_comm(jl.baseline(spread, "random"), 10, env=spread)
    with pytest.raises(ValueError, match="Policies"):
        evaluate_comm((jl.baseline(reference_env, "random"),), 10, env=reference_env)


def test_speaker_listener_links():
    env = jl.make("mpe_simple_speaker_listener")
    report = evaluate_comm(jl.baseline(env, "random"), 200, env=env)
    assert [(link["speaker"], link["listener"]) for link in report.links] == [("speaker_0", "listener_0")]
    assert report.summary["message_entropy"] == pytest.approx(np.log2(3), abs=0.02)
    assert np.isnan(report.links[0]["speaker_consistency"])  # the speaker cannot move


def test_compare_channel_pairs_the_games():
    oracle = jl.baseline(jl.make("mpe_simple_reference"), "oracle_communicator")
    result = compare_channel(oracle, oracle, 300, key=jax.random.key(1))
    assert result["muted_env"] == "mpe_simple_reference_muted"
    assert result["gap"] > 3 and result["gap_z"] > 10  # deafened oracles cannot find their targets
    assert result["gap_stderr"] < result["unpaired_stderr"]  # pairing removes the deal noise
    same = compare_channel(oracle, oracle, 100, muted_env="mpe_simple_reference", key=jax.random.key(2))
    assert same["gap"] == 0 and same["gap_stderr"] == 0
