"""Named chat models reachable through OpenAI-compatible endpoints, and custom configs.

``get_llm_config`` accepts an :class:`LLMConfig`, a name from :data:`PREDEFINED_MODELS`, a dict of
LLMConfig fields, or the path of a JSON file holding one. Keys are read from the environment
variable named in the config at call time, never stored in results or logs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OPENAI_URL = None  # the openai package's default endpoint
GOOGLE_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"
TOGETHER_URL = "https://api.together.xyz/v1"
DEEPSEEK_URL = "https://api.deepseek.com/v1"
OLLAMA_URL = "http://localhost:11434/v1"

#: model-string prefixes of reasoning models: no system role, ``max_completion_tokens``, no temperature
REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


class MissingAPIKey(RuntimeError):
    """The config names an environment variable that is not set."""


@dataclass(frozen=True)
class LLMConfig:
    """How to reach one chat model. Prices are USD per million tokens (for cost accounting)."""

    name: str
    model_string: str
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env_var: str = "OPENAI_API_KEY"
    max_tokens: int = 4096
    temperature: float | None = None          # None: the provider's default
    reasoning_effort: str | None = None       # "low" | "medium" | "high" for reasoning models
    input_price_per_million: float | None = 0.0   # None: unknown to us (costs are then reported as unknown)
    output_price_per_million: float | None = 0.0
    is_multimodal: bool = False
    timeout_s: float = 60.0
    extra_params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_reasoning_model(self) -> bool:
        model = self.model_string.split("/")[-1].lower()
        return model.startswith(REASONING_PREFIXES) or "reasoner" in model or "thinking" in model

    @property
    def is_local(self) -> bool:
        return bool(self.base_url) and any(h in self.base_url for h in ("://localhost", "://127.0.0.1", "://[::1]"))

    def resolve_api_key(self) -> str:
        """The key to send: ``api_key``, else the env var, else a placeholder for local servers."""
        if self.api_key:
            return self.api_key
        value = os.environ.get(self.api_key_env_var, "") if self.api_key_env_var else ""
        if value:
            return value
        if self.is_local:
            return "local"
        raise MissingAPIKey(
            f"model {self.name!r} needs an API key: set the environment variable {self.api_key_env_var} "
            f"(or give api_key / api_key_env_var in the LLM config)")

    @property
    def priced(self) -> bool:
        return self.input_price_per_million is not None and self.output_price_per_million is not None

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """USD for these tokens (0 when the prices are unknown; check :attr:`priced`)."""
        if not self.priced:
            return 0.0
        return (input_tokens * self.input_price_per_million + output_tokens * self.output_price_per_million) / 1e6

    def to_dict(self, include_key: bool = False) -> dict:
        out = dataclasses.asdict(self)
        if not include_key:
            out.pop("api_key")
        return out

    def replace(self, **changes) -> LLMConfig:
        return dataclasses.replace(self, **changes)


def _model(name, model_string, base_url, key_var, max_tokens, price_in, price_out, multimodal=False):
    return LLMConfig(name=name, model_string=model_string, base_url=base_url, api_key_env_var=key_var,
                     max_tokens=max_tokens, input_price_per_million=price_in, output_price_per_million=price_out,
                     is_multimodal=multimodal)


PREDEFINED_MODELS: dict[str, LLMConfig] = {m.name: m for m in [
    _model("gpt-4o", "gpt-4o", OPENAI_URL, "OPENAI_API_KEY", 4096, 5.00, 15.00, True),
    _model("gpt-4o-mini", "gpt-4o-mini", OPENAI_URL, "OPENAI_API_KEY", 4096, 0.15, 0.60, True),
    _model("gpt-5", "gpt-5", OPENAI_URL, "OPENAI_API_KEY", 8192, 10.00, 30.00, True),
    _model("gpt-5.2-pro", "gpt-5.2-pro", OPENAI_URL, "OPENAI_API_KEY", 16384, None, None, True),
    _model("gpt-5.2-thinking", "gpt-5.2", OPENAI_URL, "OPENAI_API_KEY", 16384, None, None, True),
    _model("o1", "o1", OPENAI_URL, "OPENAI_API_KEY", 32768, 15.00, 60.00, True),
    _model("o1-mini", "o1-mini", OPENAI_URL, "OPENAI_API_KEY", 32768, 3.00, 12.00),
    _model("o3", "o3", OPENAI_URL, "OPENAI_API_KEY", 32768, None, None, True),
    _model("gemini-pro", "gemini-1.5-pro", GOOGLE_URL, "GOOGLE_API_KEY", 8192, 1.25, 5.00, True),
    _model("gemini-flash", "gemini-1.5-flash", GOOGLE_URL, "GOOGLE_API_KEY", 8192, 0.075, 0.30, True),
    _model("gemini-2.0-flash", "gemini-2.0-flash", GOOGLE_URL, "GOOGLE_API_KEY", 8192, 0.10, 0.40, True),
    _model("llama-3.1-70b", "meta-llama/llama-3.1-70b-instruct", TOGETHER_URL, "TOGETHER_API_KEY", 4096, 0.88, 0.88),
    _model("llama-3.1-8b", "meta-llama/llama-3.1-8b-instruct", TOGETHER_URL, "TOGETHER_API_KEY", 4096, 0.18, 0.18),
    _model("llama-3.3-70b", "meta-llama/Llama-3.3-70B-Instruct-Turbo", TOGETHER_URL, "TOGETHER_API_KEY", 4096,
           0.88, 0.88),
    _model("qwen-72b", "Qwen/Qwen2.5-72B-Instruct-Turbo", TOGETHER_URL, "TOGETHER_API_KEY", 4096, 1.20, 1.20),
    _model("qwen-7b", "Qwen/Qwen2.5-7B-Instruct-Turbo", TOGETHER_URL, "TOGETHER_API_KEY", 4096, 0.30, 0.30),
    _model("qwen-coder-32b", "Qwen/Qwen2.5-Coder-32B-Instruct", TOGETHER_URL, "TOGETHER_API_KEY", 4096, 0.80, 0.80),
    _model("deepseek-chat", "deepseek-chat", DEEPSEEK_URL, "DEEPSEEK_API_KEY", 4096, 0.14, 0.28),
    _model("deepseek-reasoner", "deepseek-reasoner", DEEPSEEK_URL, "DEEPSEEK_API_KEY", 8192, 0.55, 2.19),
    _model("ollama-llama3", "llama3", OLLAMA_URL, "", 4096, 0.0, 0.0),
    _model("ollama-qwen2", "qwen2", OLLAMA_URL, "", 4096, 0.0, 0.0),
]}

_FIELDS = {f.name for f in dataclasses.fields(LLMConfig)}


def llm_config_from_dict(data: dict) -> LLMConfig:
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ValueError(f"unknown LLM config key(s) {unknown}; allowed: {sorted(_FIELDS)}")
    if "name" not in data and "model_string" not in data:
        raise ValueError("an LLM config needs at least 'model_string' (or 'name')")
    data = dict(data)
    data.setdefault("name", data.get("model_string"))
    data.setdefault("model_string", data["name"])
    return LLMConfig(**data)


def get_llm_config(spec: LLMConfig | str | dict | Path, **overrides) -> LLMConfig:
    """An LLMConfig from a config, a predefined name, a dict of fields or a JSON file path."""
    if isinstance(spec, LLMConfig):
        config = spec
    elif isinstance(spec, dict):
        config = llm_config_from_dict(spec)
    elif isinstance(spec, str | Path) and str(spec) in PREDEFINED_MODELS:
        config = PREDEFINED_MODELS[str(spec)]
    elif isinstance(spec, str | Path) and (str(spec).endswith(".json") or Path(spec).is_file()):
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(f"LLM config file {path} does not exist")
        config = llm_config_from_dict(json.loads(path.read_text()))
    else:
        raise ValueError(f"unknown model {spec!r}: use one of {sorted(PREDEFINED_MODELS)}, a dict of LLMConfig "
                         "fields or a JSON file (see `jaxmarl-lab list-models`)")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return config.replace(**overrides) if overrides else config


def format_model_table() -> str:
    rows = [f"{'name':<18} {'model_string':<42} {'key variable':<17} {'$/M in':>7} {'$/M out':>8}  endpoint"]
    for m in PREDEFINED_MODELS.values():
        price_in, price_out = (f"{m.input_price_per_million:.3g}", f"{m.output_price_per_million:.3g}") if m.priced \
            else ("?", "?")
        rows.append(f"{m.name:<18} {m.model_string:<42} {m.api_key_env_var or '-':<17} "
                    f"{price_in:>7} {price_out:>8}  {m.base_url or 'OpenAI'}")
    rows.append("? = price unknown here: set input/output_price_per_million in a JSON config to count cost")
    return "\n".join(rows)
