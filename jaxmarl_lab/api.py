"""The config-plus-entrypoint API of the original TorchRL tutorial, for any algorithm and env.

    cfg = jaxmarl_lab.default_cfg("ippo", env="mpe_simple_reference")
    cfg.rollout_len, cfg.num_envs, cfg.num_iters = 128, 4, 50
    result = jaxmarl_lab.train_wrapper(cfg)        # trains, checkpoints, plots; result.run_dir, result.metrics
    report = jaxmarl_lab.evaluate_comm(result.run_dir, episodes=1000)

``default_cfg`` returns a :class:`TrainConfig`: the algorithm's ``Config`` fields (defaults of
``algos/<algorithm>.py``, with the algorithm's ``ENV_DEFAULTS`` for the env, e.g. MAPPO on
``bargain``), the driver options (``results_dir``, ``run_name``, ``quiet``, ``wandb``, ...)
and the tutorial's names as aliases:

=================  =======================================================================
tutorial name      meaning here
=================  =======================================================================
rollout_len        ``rollout`` (env steps per env per iteration)
ppo_epochs         ``update_epochs``
clip_param         ``clip``
entropy_coef       ``ent_coef``
hidden_dim         ``hidden_size``
eval_episodes      ``eval_games``
num_iters          iterations (PPO updates); sets ``total_timesteps = num_iters·num_envs·rollout``
log_interval       iterations per logged chunk (``updates_per_chunk``)
eval_interval      iterations between evaluations (0: only at the end)
=================  =======================================================================

Note the units: in this API ``num_iters``, ``log_interval`` and ``eval_interval`` count
iterations, as in the tutorial; in YAML files and on the command line ``total_timesteps`` and
``eval_interval`` count env steps. Agent order is the env's (``env.agents``).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import pkgutil
from typing import Any

from jaxmarl_lab.config import RunOptions, _field_types, build, coerce
from jaxmarl_lab.training import TrainResult, train

ALIASES = {"rollout_len": "rollout", "ppo_epochs": "update_epochs", "clip_param": "clip", "entropy_coef": "ent_coef",
           "hidden_dim": "hidden_size", "eval_episodes": "eval_games"}
ITERATION_KEYS = ("num_iters", "log_interval", "eval_interval")


def list_algorithms() -> list[str]:
    """Algorithm files under ``algos/`` that the driver can run (they define Config and make_train)."""
    import algos

    names = []
    for info in pkgutil.iter_modules(algos.__path__):
        module = importlib.import_module(f"algos.{info.name}")
        if hasattr(module, "Config") and hasattr(module, "make_train"):
            names.append(info.name)
    return sorted(names)


def _algorithm_module(name: str):
    valid = list_algorithms()
    if name not in valid:
        hint = difflib.get_close_matches(name, valid, n=1)
        raise ValueError(f"unknown algorithm {name!r}.{' Did you mean ' + repr(hint[0]) + '?' if hint else ''} "
                         f"Valid algorithms: {', '.join(valid)}")
    return importlib.import_module(f"algos.{name}")


class TrainConfig:
    """A mutable, validated view of one algorithm's Config plus driver options (see the module docstring)."""

    def __init__(self, algorithm: str, values: dict, options: dict):
        module = _algorithm_module(algorithm)
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "_module", module)
        object.__setattr__(self, "_types", _field_types(module.Config))
        object.__setattr__(self, "_option_types", _field_types(RunOptions))
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_options", {})
        object.__setattr__(self, "_iterations", {})
        for key, value in values.items():  # Config fields, in env steps (eval_interval too)
            if key in self._types:
                self._values[key] = coerce(key, value, self._types[key])
            else:
                setattr(self, key, value)
        for key, value in options.items():
            setattr(self, key, value)

    # ---- attribute access with aliases and validation ---------------------------------------------
    def _valid_keys(self) -> list[str]:
        return sorted(set(self._types) | set(self._option_types) | set(ALIASES) | set(ITERATION_KEYS))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in ITERATION_KEYS:
            return self._iteration_value(name)
        name = ALIASES.get(name, name)
        if name in self._types:
            return self._values.get(name, getattr(self._module.Config, name))
        if name in self._option_types:
            return self._options.get(name, getattr(RunOptions(), name))
        raise AttributeError(f"{self.algorithm} config has no key {name!r}; "
                             f"valid keys: {', '.join(self._valid_keys())}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ITERATION_KEYS:
            value = coerce(name, value, int)
            if value < 0 or (name != "eval_interval" and value < 1):
                raise ValueError(f"{name} must be {'>= 0' if name == 'eval_interval' else '>= 1'}, got {value}")
            self._iterations[name] = value
            return
        key = ALIASES.get(name, name)
        if key in self._types:
            self._values[key] = coerce(key, value, self._types[key])
            if key == "total_timesteps":
                self._iterations.pop("num_iters", None)
            elif key == "updates_per_chunk":
                self._iterations.pop("log_interval", None)
        elif key in self._option_types:
            self._options[key] = coerce(key, value, self._option_types[key])
        else:
            hint = difflib.get_close_matches(name, self._valid_keys(), n=1)
            raise AttributeError(f"{self.algorithm} config has no key {name!r}."
                                 f"{' Did you mean ' + repr(hint[0]) + '?' if hint else ''} "
                                 f"Valid keys: {', '.join(self._valid_keys())}")

    def _iteration_value(self, name: str) -> int:
        if name in self._iterations:
            return self._iterations[name]
        config = self.to_config()
        if name == "num_iters":
            return config.num_updates
        if name == "log_interval":
            return config.updates_per_chunk
        return config.eval_interval // config.steps_per_update

    # ---- resolution -------------------------------------------------------------------------------
    def to_config(self):
        """The algorithm's frozen Config (iteration counts converted to env steps)."""
        values = dict(self._values)
        steps_per_iter = build(self._module.Config, values).steps_per_update
        iters = self._iterations
        if "num_iters" in iters:
            if "total_timesteps" in self._types:
                values["total_timesteps"] = iters["num_iters"] * steps_per_iter
            else:  # algorithms budgeted in iterations (deep_cfr)
                values["num_iterations"] = iters["num_iters"]
        if "log_interval" in iters or "num_iters" in iters:
            chunk = iters.get("log_interval", values.get("updates_per_chunk", self._module.Config.updates_per_chunk))
            if "num_iters" in iters:  # whole chunks: the largest chunk <= log_interval that divides num_iters
                chunk = max(c for c in range(1, min(chunk, iters["num_iters"]) + 1) if iters["num_iters"] % c == 0)
            values["updates_per_chunk"] = chunk
        if "eval_interval" in iters:
            values["eval_interval"] = iters["eval_interval"] * steps_per_iter
        return build(self._module.Config, values)

    def to_options(self) -> RunOptions:
        return build(RunOptions, dict(self._options))

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self.to_config()), **{k: self._iteration_value(k) for k in ITERATION_KEYS},
                **{f"run.{k}": v for k, v in dataclasses.asdict(self.to_options()).items()}}

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"TrainConfig({self.algorithm!r}, {body})"


def default_cfg(algorithm: str = "ippo", env: str | None = None, **overrides) -> TrainConfig:
    """The default configuration of ``algorithm`` (a file in ``algos/``) for ``env``.

    Starts from the algorithm's ``Config`` defaults, applies its ``ENV_DEFAULTS[env]`` when it has
    some, sets ``env``, then ``overrides`` (any Config field, alias or driver option).
    """
    module = _algorithm_module(algorithm)
    values = dict(getattr(module, "ENV_DEFAULTS", {}).get(env, {}))
    if env is not None:
        from jaxmarl_lab.registry import list_envs

        if env not in list_envs():
            hint = difflib.get_close_matches(env, list_envs(), n=1)
            raise ValueError(f"unknown env {env!r}.{' Did you mean ' + repr(hint[0]) + '?' if hint else ''} "
                             f"Valid envs: {', '.join(list_envs())}")
        values["env"] = env
    cfg = TrainConfig(algorithm, values, {})
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def train_wrapper(cfg: TrainConfig) -> TrainResult:
    """Train ``cfg`` with the shared driver: results directory, checkpoints, evaluation and the
    loss/return/entropy curves (``<run>/plots/training_curves.png``).

    Returns a :class:`jaxmarl_lab.training.TrainResult` (``run_dir``, ``metrics`` rows, the final
    evaluation ``report``, ``exit_code``). A bad configuration raises ``ValueError``; Ctrl-C saves a
    checkpoint, marks the run interrupted and returns with ``exit_code`` 130.
    """
    module = cfg._module
    config, options = cfg.to_config(), cfg.to_options()
    result = train(cfg.algorithm, module.Config, module.make_train, module.make_policy, config, options,
                   **getattr(module, "DRIVER_KWARGS", {}))
    if result.exit_code == 2:
        raise ValueError(f"{cfg.algorithm}: {result.error}")
    return result
