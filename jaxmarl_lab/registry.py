"""Environment registry: ``make(name, **kwargs)`` and ``list_envs()``.

Entries are "module:Class" strings imported on first use, so importing ``jaxmarl_lab`` stays
cheap and an env module can import ``jaxmarl_lab`` without a cycle.
"""

from __future__ import annotations

import difflib
import importlib
import inspect

from jaxmarl_lab.env import Env

_REGISTRY: dict[str, tuple[str, dict]] = {
    "bargain": ("envs.bargain:Bargain", {}),
    # two item types with one unit each, values 1..3, two rounds: small enough for exact NashConv
    "bargain_tiny": ("envs.bargain:Bargain", {"quantities": (1, 1), "value_range": (1, 3), "num_rounds": 2}),
    "kuhn_poker": ("envs.poker:KuhnPoker", {}),
    "leduc_poker": ("envs.poker:LeducPoker", {}),
    "bucket_brigade": ("envs.bucket_brigade:BucketBrigade", {}),
    "therapy": ("envs.therapy:Therapy", {}),
    "pistonball": ("envs.pistonball:Pistonball", {}),
    "mpe_simple_reference": ("envs.mpe:MPE", {"scenario": "simple_reference"}),
    "mpe_simple_reference_muted": ("envs.mpe:MPE", {"scenario": "simple_reference", "mute": True}),
    "mpe_simple_speaker_listener": ("envs.mpe:MPE", {"scenario": "simple_speaker_listener"}),
    "mpe_simple_spread": ("envs.mpe:MPE", {"scenario": "simple_spread"}),
}


def register(name: str, entry_point: str, **default_kwargs) -> None:
    """Register an env under ``name``; ``entry_point`` is "module:Class"."""
    if name in _REGISTRY:
        raise ValueError(f"env {name!r} is already registered")
    _REGISTRY[name] = (entry_point, dict(default_kwargs))


def list_envs() -> list[str]:
    """Names accepted by :func:`make`."""
    return sorted(_REGISTRY)


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def env_class(name: str) -> type[Env]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown env {name!r}.{_suggest(name, _REGISTRY)} Valid envs: {', '.join(list_envs())}")
    module_name, class_name = _REGISTRY[name][0].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def valid_kwargs(cls: type) -> list[str]:
    """Static options an env's constructor accepts by keyword."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.name != "self" and p.kind in named]


def make(name: str, **kwargs) -> Env:
    """Build a registered env with its static options; unknown names or keywords list the valid ones."""
    cls = env_class(name)
    allowed = valid_kwargs(cls)
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        hint = _suggest(unknown[0], allowed)
        raise TypeError(
            f"unknown keyword(s) {', '.join(map(repr, unknown))} for env {name!r}.{hint} "
            f"Valid keywords: {', '.join(allowed) if allowed else '(none)'}"
        )
    return cls(**{**_REGISTRY[name][1], **kwargs})
