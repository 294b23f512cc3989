"""LLM policies through JAX host callbacks: model configs, an OpenAI-compatible client with cache,
retries and cost accounting, per-env prompts and parsers, and a loopback server for tests.

    from jaxmarl_lab.llm import llm_policy, LoopbackServer
"""

from jaxmarl_lab.llm.bridge import LLMAct, LLMSession, llm_policy, llm_session
from jaxmarl_lab.llm.client import Completion, LLMClient, LLMError, ResponseCache, UsageTracker, estimate_tokens
from jaxmarl_lab.llm.config import (
    PREDEFINED_MODELS,
    LLMConfig,
    MissingAPIKey,
    format_model_table,
    get_llm_config,
)
from jaxmarl_lab.llm.prompts import EnvPrompts, prompts_for
from jaxmarl_lab.llm.testing import LoopbackServer

__all__ = [
    "PREDEFINED_MODELS", "Completion", "EnvPrompts", "LLMAct", "LLMClient", "LLMConfig", "LLMError", "LLMSession",
    "LoopbackServer", "MissingAPIKey", "ResponseCache", "UsageTracker", "estimate_tokens", "format_model_table",
    "get_llm_config", "llm_policy", "llm_session", "prompts_for",
]
