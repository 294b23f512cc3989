"""Configuration: dataclass defaults < YAML file < command-line flags.

Every algorithm declares a frozen ``Config`` dataclass; :func:`parse_args` turns it into a CLI
where each field is a flag (``num_envs`` → ``--num-envs``), loads ``--config file.yaml`` and
adds the driver's own options (:class:`RunOptions`: resume, wandb, tensorboard, run name, ...).
Unknown keys and values of the wrong type fail with a message naming the valid keys or the
expected type, before anything is compiled.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A bad config key or value."""


@dataclass
class RunOptions:
    """Driver options (not part of the algorithm's math); also accepted as YAML keys."""

    resume_from: str | None = None  # run directory to continue from its latest checkpoint
    results_dir: str = "results"  # root of results/index.json and the run directories
    run_name: str | None = None  # prefix of the run id (default: the algorithm name)
    tags: list[str] = field(default_factory=list)  # free-form labels stored in the index
    wandb: bool = False  # log to Weights & Biases
    wandb_project: str = "jaxmarl_lab"
    wandb_name: str | None = None  # default: the run id
    wandb_tags: list[str] = field(default_factory=list)
    wandb_mode: str | None = None  # online | offline | disabled (default: $WANDB_MODE or online)
    tensorboard: bool = False  # write TensorBoard event files to <run>/tensorboard
    stop_at_step: int = 0  # stop (resumable, status interrupted) once this many env steps are done; 0: never
    quiet: bool = False  # no progress bar
    eval_gif: bool = False  # save one evaluation episode of the final policy as plots/eval_episode.gif
    eval_gif_fps: float = 10.0  # frames per second of that GIF
    devices: int = 1  # split the env batch over this many devices (0: all visible); see jaxmarl_lab.distributed
    coordinator_address: str | None = None  # HOST:PORT of process 0: a multi-process run (jax.distributed)
    num_processes: int = 0  # processes of a multi-process run (0: single process / JAXMARL_NUM_PROCESSES)
    process_id: int = -1  # this process's index in [0, num_processes) (-1: JAXMARL_PROCESS_ID)
    sweep: list[str] = field(default_factory=list)  # NAME=V1,V2,... : a grid vmapped into one program (sweep.py)


class RolloutBudget:
    """The driver's step-budget properties for a Config with ``num_envs``, ``rollout``,
    ``total_timesteps`` and ``updates_per_chunk`` (base class of the PPO-family Configs)."""

    @property
    def steps_per_update(self) -> int:
        return self.num_envs * self.rollout

    @property
    def num_updates(self) -> int:
        """Updates of the whole run, rounded up to whole chunks."""
        updates = max(1, -(-self.total_timesteps // self.steps_per_update))
        return -(-updates // self.updates_per_chunk) * self.updates_per_chunk


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def coerce(key: str, value: Any, tp) -> Any:
    """Convert ``value`` (from YAML or a CLI string) to the field type ``tp`` or raise ConfigError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(key, value, arg)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"config key {key!r}: bad value {value!r}")
    if origin is dict or tp is dict:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("{"):
                value = yaml.safe_load(text)
            else:  # k=v,k2=v2 with YAML-typed values
                pairs = [item.split("=", 1) for item in text.split(",") if item]
                if any(len(pair) != 2 for pair in pairs):
                    raise ConfigError(f"config key {key!r} expects a mapping like 'a=1,b=x' or '{{a: 1}}', "
                                      f"got {value!r}")
                value = {k.strip(): yaml.safe_load(v) for k, v in pairs}
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r} expects a mapping, got {value!r}")
        return dict(value)
    if origin in (list, tuple):
        if isinstance(value, str):
            value = yaml.safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
        if not isinstance(value, list | tuple):
            raise ConfigError(f"config key {key!r} expects a list, got {value!r}")
        (inner, *_) = typing.get_args(tp) or (Any,)
        items = [coerce(key, v, inner) if inner is not Any and inner is not Ellipsis else v for v in value]
        return tuple(items) if origin is tuple else items
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"config key {key!r} expects true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"config key {key!r} expects an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                number = float(value.replace("_", ""))
            except ValueError:
                number = None
            if number is not None and number.is_integer():
                return int(number)
        raise ConfigError(f"config key {key!r} expects an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r} expects a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key {key!r} expects a string, got {value!r}")
    if tp is Any:
        return value
    raise ConfigError(f"config key {key!r}: unsupported type {_type_name(tp)}")


def _unknown(keys, valid) -> ConfigError:
    hint = difflib.get_close_matches(keys[0], list(valid), n=1)
    return ConfigError(f"unknown config key(s) {', '.join(map(repr, keys))}."
                       f"{' Did you mean ' + repr(hint[0]) + '?' if hint else ''} Valid keys: {', '.join(valid)}")


def build(cls, values: dict) -> Any:
    """``cls(**values)`` with every value type-checked; unknown keys are an error."""
    types_ = _field_types(cls)
    unknown = [k for k in values if k not in types_]
    if unknown:
        raise _unknown(unknown, list(types_))
    return cls(**{k: coerce(k, v, types_[k]) for k, v in values.items()})


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys to values")
    return data


def to_dict(config) -> dict:
    """Plain dict (tuples as lists) for YAML/JSON/wandb."""
    plain = lambda v: [plain(x) for x in v] if isinstance(v, tuple | list) else (
        {k: plain(x) for k, x in v.items()} if isinstance(v, dict) else v)
    return {k: plain(v) for k, v in dataclasses.asdict(config).items()}


def _flags(name: str) -> list[str]:
    """``--ent-coef``, and ``--ent_coef`` too (wandb sweep agents pass the field names as written)."""
    dashed = "--" + name.replace("_", "-")
    return [dashed] if "_" not in name else [dashed, "--" + name]


def make_parser(config_cls, prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     argument_default=argparse.SUPPRESS, allow_abbrev=False)
    parser.add_argument("--config", help="YAML file with any of the keys below")
    algo = parser.add_argument_group("algorithm (Config fields)")
    for name, tp in _field_types(config_cls).items():
        spec = next(f for f in dataclasses.fields(config_cls) if f.name == name)
        default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
        if tp is bool:  # --flag alone means true; --flag false turns it off
            algo.add_argument(*_flags(name), dest=name, nargs="?", const="true", metavar="BOOL",
                              help=f"default: {default}")
        else:
            algo.add_argument(*_flags(name), dest=name, metavar=_type_name(tp).upper(), help=f"default: {default}")
    run = parser.add_argument_group("run (driver options)")
    for f in dataclasses.fields(RunOptions):
        tp = _field_types(RunOptions)[f.name]
        if tp is bool:
            run.add_argument(*_flags(f.name), dest=f.name, nargs="?", const="true", metavar="BOOL")
        elif f.name == "sweep":  # repeatable: --sweep lr=1e-4,3e-4 --sweep ent_coef=0,0.01
            run.add_argument(*_flags(f.name), dest=f.name, nargs="+", action="extend", metavar="NAME=V1,V2")
        elif typing.get_origin(tp) is list:
            run.add_argument(*_flags(f.name), dest=f.name, nargs="+")
        else:
            run.add_argument(*_flags(f.name), dest=f.name)
    return parser


def parse_args(config_cls, argv: list[str] | None = None, prog: str | None = None,
               description: str | None = None) -> tuple[Any, RunOptions, set[str]]:
    """(config, run options, names of the Config fields given explicitly on the command line)."""
    parser = make_parser(config_cls, prog, description)
    namespace, extra = parser.parse_known_args(argv)
    if extra:
        flags = [a for a in extra if a.startswith("--")] or extra
        valid = sorted(set(_field_types(config_cls)) | set(_field_types(RunOptions)) | {"config"})
        raise _unknown([f.lstrip("-").split("=")[0].replace("-", "_") for f in flags], valid)
    parsed = vars(namespace)
    yaml_values = load_yaml(parsed.pop("config")) if "config" in parsed else {}
    config_keys = set(_field_types(config_cls))
    run_keys = set(_field_types(RunOptions))
    unknown = [k for k in yaml_values if k not in config_keys | run_keys]
    if unknown:
        raise _unknown(unknown, sorted(config_keys) + sorted(run_keys))
    merged = {**yaml_values, **parsed}
    config = build(config_cls, {k: v for k, v in merged.items() if k in config_keys})
    options = build(RunOptions, {k: v for k, v in merged.items() if k in run_keys})
    return config, options, {k for k in parsed if k in config_keys}
