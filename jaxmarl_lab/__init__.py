"""jaxmarl_lab: JAX-native multi-agent RL and game theory.

Public names used by algorithms, notebooks and outside scripts::

    env = jaxmarl_lab.make("bargain")
    policy = jaxmarl_lab.baseline(env, "fair_split")
    result = jaxmarl_lab.evaluate(env, policy, 10_000, jax.random.key(0))
    table = jaxmarl_lab.crossplay(env, {"random": ..., "greedy": ...}, 10_000, jax.random.key(0))
"""

from jaxmarl_lab.env import Env, tree_select
from jaxmarl_lab.evaluation import CrossplayResult, EvalResult, crossplay, evaluate, evaluate_params, record_episode
from jaxmarl_lab.policies import Policy, baseline, list_baselines, masked_logits, uniform_legal_action
from jaxmarl_lab.registry import list_envs, make, register
from jaxmarl_lab.results import DEFAULT_METRIC, ResultsManager, Run
from jaxmarl_lab.spaces import Box, Discrete
from jaxmarl_lab.wrappers import AutoReset, EpisodeStats, VmapEnv, Wrapper

__version__ = "0.1.0"


def default_cfg(algorithm: str = "ippo", env: str | None = None, **overrides):
    """The default TrainConfig of an algorithm for an env (see jaxmarl_lab.api)."""
    from jaxmarl_lab.api import default_cfg as _default_cfg

    return _default_cfg(algorithm, env, **overrides)


def train_wrapper(cfg):
    """Train a TrainConfig with the shared driver; returns a TrainResult (see jaxmarl_lab.api)."""
    from jaxmarl_lab.api import train_wrapper as _train_wrapper

    return _train_wrapper(cfg)


def evaluate_comm(run_or_policy, episodes: int = 1000, **kwargs):
    """Task success and communication statistics of a trained team (see jaxmarl_lab.comm)."""
    from jaxmarl_lab.comm import evaluate_comm as _evaluate_comm

    return _evaluate_comm(run_or_policy, episodes, **kwargs)


def load_policy(run_dir, checkpoint: str = "final", seed_index: int = 0, sample: bool = True) -> Policy:
    """The trained policy of a run directory as a jittable Policy (see jaxmarl_lab.training.load_policy)."""
    from jaxmarl_lab.training import load_policy as _load_policy  # orbax is imported only when needed

    return _load_policy(run_dir, checkpoint, seed_index, sample)


def llm_policy(env, llm_config, policy_texts=None, **kwargs) -> Policy:
    """A jittable Policy asking a chat model for each action through one host call per step
    (see jaxmarl_lab.llm.bridge)."""
    from jaxmarl_lab.llm import llm_policy as _llm_policy  # the openai client is imported only when needed

    return _llm_policy(env, llm_config, policy_texts, **kwargs)


def to_pettingzoo(env, params=None, render_mode=None, mask_in_observation=None, **kwargs):
    """A PettingZoo ``ParallelEnv`` (numpy in, numpy out) of a registered env name or an env
    (see jaxmarl_lab.pz_adapter; needs ``pip install pettingzoo``)."""
    try:
        from jaxmarl_lab.pz_adapter import to_pettingzoo as _to_pettingzoo
    except ImportError as error:  # pettingzoo is an optional dependency
        raise ImportError(f"to_pettingzoo needs PettingZoo: pip install 'jaxmarl_lab[pettingzoo]' ({error})") from error
    return _to_pettingzoo(env, params, render_mode, mask_in_observation, **kwargs)


__all__ = [
    "llm_policy", "AutoReset", "Box", "default_cfg", "evaluate_comm", "train_wrapper",
    "CrossplayResult", "DEFAULT_METRIC", "Discrete", "Env", "EpisodeStats", "EvalResult", "evaluate_params",
    "Policy", "ResultsManager", "Run", "VmapEnv", "Wrapper", "baseline", "crossplay", "evaluate", "list_baselines",
    "list_envs", "load_policy", "make",
    "masked_logits", "record_episode", "register", "to_pettingzoo", "tree_select", "uniform_legal_action",
]
