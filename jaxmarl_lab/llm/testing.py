"""A loopback OpenAI-compatible chat server for tests and demos (no network, no key).

    with LoopbackServer(lambda messages: "Action: 1") as server:
        client = LLMClient(server.config(), cache_dir=False)

It serves ``POST /v1/chat/completions`` (with ``usage`` counts: whitespace-separated words) and
``GET /v1/models`` on 127.0.0.1, answers with ``respond(messages)``, records every request body in
``server.requests`` and can fail the first ``fail_first`` requests with ``fail_status`` (to exercise
retries).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from jaxmarl_lab.llm.config import LLMConfig


class LoopbackServer:
    def __init__(self, respond: Callable[[list[dict]], str] | None = None, *, fail_first: int = 0,
                 fail_status: int = 500, delay_s: float = 0.0, model: str = "loopback"):
        self.respond = respond or (lambda messages: "OK")
        self.fail_first, self.fail_status, self.delay_s, self.model = int(fail_first), int(fail_status), delay_s, model
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self) -> LoopbackServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):          # keep test output clean
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path.rstrip("/").endswith("/models"):
                    self._reply(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
                else:
                    self._reply(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self):
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._reply(404, {"error": {"message": f"no route {self.path}"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                status, reply = server._answer(body)
                self._reply(status, reply)

        class Server(ThreadingHTTPServer):
            request_queue_size = 256       # many concurrent clients must not be refused

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True, name="loopback-llm").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- behaviour --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the loopback server is not running; call start() or use it as a context manager")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def config(self, **fields) -> LLMConfig:
        """An LLMConfig pointing at this server (key not needed on loopback)."""
        fields = {"name": self.model, "model_string": self.model, "base_url": self.url, "api_key_env_var": "",
                  "max_tokens": 256, **fields}
        return LLMConfig(**fields)

    def _answer(self, body: dict) -> tuple[int, dict]:
        with self._lock:
            self.requests.append(body)
            failing = len(self.requests) <= self.fail_first
        if self.delay_s:
            time.sleep(self.delay_s)
        if failing:
            return self.fail_status, {"error": {"message": "loopback server: scripted failure"}}
        messages = body.get("messages", [])
        try:
            text = str(self.respond(messages))
        except Exception as error:  # a broken test "model" is a server error, not a crash of the server
            return 500, {"error": {"message": f"respond() raised {type(error).__name__}: {error}"}}
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = len(text.split())
        return 200, {
            "id": f"chatcmpl-loopback-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }


# ---- scripted "models" that read the prompts of jaxmarl_lab.llm.prompts --------------------------
def _number(pattern: str, text: str) -> np.float32 | None:
    found = re.search(pattern, text)
    return None if found is None else np.float32(found.group(1))


def rule_like_pistonball_model(k: float = 1.0, tau: float = 4.0) -> Callable[[list[dict]], str]:
    """Answers a pistonball prompt as the rule policy (spec B4) would, from the numbers printed in
    it, in float32 like :class:`envs.pistonball.RuleAct` (so its decisions are the rule's)."""

    def respond(messages: list[dict]) -> str:
        text = messages[-1]["content"]
        own = _number(r"your height: (\S+) px", text)
        left = _number(r"left neighbour's height: (\S+) px", text)
        right = _number(r"right neighbour's height: (\S+) px", text)
        rel_x = _number(r"x = (\S+) px", text)
        near = rel_x is not None and abs(rel_x) <= np.float32(60.0)
        push = np.float32(k) * -rel_x if near else np.float32(0.0)
        score = push - (own - np.float32(0.5) * (left + right))
        action = 2 if score > tau else 0 if score < -tau else 1
        return f"The score is {float(score):.2f}.\nAction: {action}"

    return respond


def simple_bargainer_model(garbage_every: int = 0) -> Callable[[list[dict]], str]:
    """A bargaining "model": accept an offer worth at least the outside offer, otherwise counter-offer
    (everything in round 1, about half later) while counter-offers are legal, else walk. Every
    ``garbage_every``-th distinct prompt (by hash) gets an unparseable answer (to test the fallback)."""

    def respond(messages: list[dict]) -> str:
        text = messages[-1]["content"]
        if garbage_every and int(hashlib.sha256(text.encode()).hexdigest(), 16) % garbage_every == 0:
            return "Let me think about bananas."
        outside = int(re.search(r"Your outside offer: (\d+)", text).group(1))
        worth = re.search(r"Offer on the table:.*\(worth (\d+) to you\)", text)
        if worth is not None and "ACCEPT" in text.split("Legal moves now:")[1] and int(worth.group(1)) >= outside:
            return "Action: ACCEPT"
        if "OFFER <" in text:
            quantities = [int(q) for q in re.findall(r"(\d+) units? of item", text.split("\n")[1])]
            if "This is round 1 " in text:
                return "I want everything.\nAction: OFFER " + " ".join(str(q) for q in quantities)
            return "Half each.\nAction: OFFER " + " ".join(str((q + 1) // 2) for q in quantities)
        return "Action: WALK"

    return respond
