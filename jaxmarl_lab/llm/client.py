"""A chat client on the ``openai`` package: retries with back-off, bounded concurrency, an on-disk
response cache and token/cost accounting from the API's ``usage`` fields.

The cache key is (model, endpoint, messages, temperature, max tokens, seed): a rerun with the same
seeds is served from disk, makes no HTTP request and returns the same texts.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import openai

from jaxmarl_lab.llm.config import LLMConfig, get_llm_config

Messages = list[dict]
DEFAULT_CACHE_DIR = Path(os.environ.get("JAXMARL_LAB_LLM_CACHE", Path.home() / ".cache" / "jaxmarl_lab" / "llm"))
RETRYABLE = (openai.APIConnectionError, openai.APITimeoutError, openai.RateLimitError, openai.InternalServerError)


class LLMError(RuntimeError):
    """The endpoint could not answer (after retries, or with a non-retryable error)."""


@dataclass(frozen=True)
class Completion:
    text: str
    input_tokens: int
    output_tokens: int
    cached: bool = False
    usage_estimated: bool = False    # the endpoint sent no usage counts; tokens ≈ max(chars/4, words/0.75)


def estimate_tokens(text: str) -> int:
    return int(max(len(text) / 4, len(text.split()) / 0.75))


class UsageTracker:
    """Thread-safe totals: HTTP requests, cache hits, retries, failures, tokens and cost (USD)."""

    def __init__(self, config: LLMConfig):
        self.config = config
        self._lock = threading.Lock()
        self.requests = self.cache_hits = self.retries = self.failures = 0
        self.input_tokens = self.output_tokens = 0
        self.estimated_requests = 0

    def record(self, completion: Completion) -> None:
        with self._lock:
            if completion.cached:
                self.cache_hits += 1
                return
            self.requests += 1
            self.input_tokens += completion.input_tokens
            self.output_tokens += completion.output_tokens
            self.estimated_requests += int(completion.usage_estimated)

    def count(self, name: str) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + 1)

    @property
    def cost_usd(self) -> float | None:
        return self.config.cost(self.input_tokens, self.output_tokens) if self.config.priced else None

    def summary(self) -> dict:
        with self._lock:
            return {"model": self.config.name, "requests": self.requests, "cache_hits": self.cache_hits,
                    "retries": self.retries, "failures": self.failures, "input_tokens": self.input_tokens,
                    "output_tokens": self.output_tokens, "total_tokens": self.input_tokens + self.output_tokens,
                    "estimated_usage_requests": self.estimated_requests, "cost_usd": self.cost_usd}


class ResponseCache:
    """Completions on disk (one SQLite file per directory), shared safely by the client's threads."""

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / "responses.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS completions (key TEXT PRIMARY KEY, value TEXT)")
        self._db.commit()

    @staticmethod
    def key(request: dict) -> str:
        return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM completions WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: dict) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO completions VALUES (?, ?)", (key, json.dumps(value)))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]


class LLMClient:
    """Chat completions for one :class:`LLMConfig` (a predefined name, dict or JSON path works too).

    ``cache_dir=False`` turns the cache off; ``None`` uses ``$JAXMARL_LAB_LLM_CACHE`` or
    ``~/.cache/jaxmarl_lab/llm``. A missing API key raises :class:`MissingAPIKey` here, naming the
    environment variable to set.
    """

    def __init__(self, config: LLMConfig | str | dict, *, cache_dir: str | Path | None | bool = None,
                 max_concurrency: int = 8, max_retries: int = 4, backoff_s: float = 0.5,
                 timeout_s: float | None = None):
        self.config = get_llm_config(config)
        self.max_concurrency = max(1, int(max_concurrency))
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self._openai = openai.OpenAI(base_url=self.config.base_url, api_key=self.config.resolve_api_key(),
                                     timeout=timeout_s or self.config.timeout_s, max_retries=0)
        self.cache = None if cache_dir is False else ResponseCache(DEFAULT_CACHE_DIR if cache_dir in (None, True)
                                                                   else cache_dir)
        self.usage = UsageTracker(self.config)
        self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="llm")

    # ---- requests ---------------------------------------------------------------------------
    def request_kwargs(self, messages: Messages, seed: int | None = None) -> dict:
        """The chat.completions arguments, with the reasoning models' differences applied."""
        config = self.config
        kwargs: dict = {"model": config.model_string}
        if config.is_reasoning_model:
            system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
            rest = [dict(m) for m in messages if m["role"] != "system"]
            if system and rest and rest[0]["role"] == "user":
                rest[0]["content"] = f"{system}\n\n{rest[0]['content']}"
            elif system:
                rest.insert(0, {"role": "user", "content": system})
            kwargs.update(messages=rest, max_completion_tokens=config.max_tokens)
            if config.reasoning_effort:
                kwargs["reasoning_effort"] = config.reasoning_effort
        else:
            kwargs.update(messages=list(messages), max_tokens=config.max_tokens)
            if config.temperature is not None:
                kwargs["temperature"] = config.temperature
        if seed is not None:
            kwargs["seed"] = int(seed)
        kwargs.update(config.extra_params)
        return kwargs

    def complete(self, messages: Messages | str, seed: int | None = None) -> Completion:
        """One completion (from the cache when this exact request was answered before)."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        kwargs = self.request_kwargs(messages, seed)
        key = ResponseCache.key({**kwargs, "base_url": self.config.base_url, "temperature": self.config.temperature})
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            completion = Completion(hit["text"], hit["input_tokens"], hit["output_tokens"], cached=True)
            self.usage.record(completion)
            return completion
        completion = self._send(kwargs)
        if self.cache is not None:
            self.cache.put(key, {"text": completion.text, "input_tokens": completion.input_tokens,
                                 "output_tokens": completion.output_tokens})
        self.usage.record(completion)
        return completion

    def complete_many(self, batch: list[Messages | str], seeds: list[int | None] | None = None) -> list[Completion]:
        """Completions for many prompts, at most ``max_concurrency`` in flight; order is kept."""
        seeds = [None] * len(batch) if seeds is None else list(seeds)
        if len(batch) <= 1:
            return [self.complete(m, s) for m, s in zip(batch, seeds, strict=True)]
        return list(self._pool.map(self.complete, batch, seeds))

    def _send(self, kwargs: dict) -> Completion:
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self.usage.count("retries")
                time.sleep(self.backoff_s * 2 ** (attempt - 1) * (1 + 0.25 * random.random()))
            try:
                response = self._openai.chat.completions.create(**kwargs)
            except RETRYABLE as error:
                last = error
                continue
            except openai.APIStatusError as error:     # 4xx other than 429: retrying will not help
                self.usage.count("failures")
                raise LLMError(f"{self.config.name} at {self.endpoint} refused the request "
                               f"({error.status_code}): {error.message}") from error
            text = (response.choices[0].message.content or "") if response.choices else ""
            usage = response.usage
            if usage is not None and usage.prompt_tokens is not None:
                return Completion(text, int(usage.prompt_tokens), int(usage.completion_tokens or 0))
            prompt = " ".join(str(m.get("content", "")) for m in kwargs["messages"])
            return Completion(text, estimate_tokens(prompt), estimate_tokens(text), usage_estimated=True)
        self.usage.count("failures")
        raise LLMError(f"{self.config.name} at {self.endpoint} did not answer after {self.max_retries + 1} "
                       f"attempts: {type(last).__name__}: {last}") from last

    @property
    def endpoint(self) -> str:
        return self.config.base_url or "api.openai.com"

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self._openai.close()
