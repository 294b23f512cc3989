"""LangMARL's Monte-Carlo TextGrad trainer for Pistonball: per-piston natural-language policies, an
LLM critic, textual gradients and a textual-gradient-descent step per iteration (spec part B).

    python algos/textgrad_pistonball.py --paradigm central_credit --num_iterations 5 \\
        --trajectories_per_iteration 3 --num_pistons 20 --agent_type llm --model gpt-4o-mini

Iteration k: load the policies of iteration k from ``policy.json``; play ``trajectories_per_iteration``
episodes with them (one vmapped rollout, :class:`~jaxmarl_lab.pistonball_episodes.EpisodeGenerator`;
episodes already on disk are reused); criticise each episode and attach textual gradients by
paradigm; one TGD call per piston rewrites its text; save the texts as iteration k + 1 with the
iteration's stats.

Paradigms (how the critique reaches each piston):

* ``independent`` — one critique per piston per episode, about that piston; its feedback (one
  backward call) goes to that piston only; several episodes' feedback is summarised (one call).
* ``central_global`` — one team critique per episode; the same feedback goes to every piston.
* ``central_credit`` — one critique per episode that must contain a ``[PISTON_i EVALUATION]``
  section per piston; each piston receives its own section (parsing cascade below); no summary.

Credit parsing cascade (``parse_credit_sections``): ``[PISTON_i EVALUATION]`` markers → ``**piston_i**:``
→ ``piston_i:`` → if fewer than half are found, a numbered list ``i. ...`` / ``i) ...`` → missing
pistons take a ``[LEFT|MIDDLE|RIGHT PISTONS EVALUATION]`` section of their third → whatever is still
missing gets the whole response prefixed ``[Global feedback - specific evaluation not found]``.

Fixed from the original (spec B10): API keys are never blanked; the critic's context states the
real piston count and ball radius and one consistent piece of advice (pistons right of the ball
rise, pistons left of it retract); the actor sees our local observation; velocities are px/s;
rule agents are trainable (a text's ``k = ...`` / ``tau = ...`` sets that piston's rule).

Outputs: ``<experiments_dir>/<exp_name>/config.json``, ``status.json``, ``iteration_<k>/episode_<j>/...``,
``iteration_<k>/textgrad_evaluations.txt``, ``iteration_<k>/textgrad_log.jsonl`` and, for
``central_credit``, ``iteration_<k>/credit_assignment_responses.txt``; policies in ``--policy_path``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from jaxmarl_lab.llm import LLMClient, LLMConfig, format_model_table, get_llm_config
from jaxmarl_lab.llm.config import PREDEFINED_MODELS
from jaxmarl_lab.pistonball_episodes import EpisodeGenerator
from jaxmarl_lab.textgrad import TGD, TextLoss, Variable, summarize_gradients

PARADIGMS = ("independent", "central_global", "central_credit")
DEFAULT_POLICY = "The piston adjusts its vertical position cooperatively to push the ball toward the left boundary."
GLOBAL_FALLBACK = "[Global feedback - specific evaluation not found]"


# ---- configuration --------------------------------------------------------------------------
@dataclass
class TrainingConfig:
    """Settings of a run (spec B8). LLM configs accept a predefined name, a dict or a JSON path."""

    exp_name: str = "pistonball_exp"
    paradigm: str = "central_global"
    policy_path: str = "./policies/policy.json"
    experiments_dir: str = "./experiments"
    num_iterations: int = 5
    trajectories_per_iteration: int = 3
    model: str = "gpt-4o-mini"
    llm_config: Any = None
    episode_llm_config: Any = None
    textgrad_llm_config: Any = None
    base_url: str | None = None
    api_key_env: str | None = None
    num_pistons: int = 20
    max_cycles: int = 125
    frame_size: tuple = (64, 64)          # accepted for compatibility; our pistons read vector observations
    stack_size: int = 4
    continuous: bool = False
    agent_type: str = "llm"
    action_mode: str = "discrete"
    rule_k: float = 0.1
    rule_tau: float = 4.0
    log_level: str = "INFO"
    start_iteration: int = 0
    seed: int = 0
    save_gif: bool = True
    cache_dir: Any = None                  # LLM response cache (None: ~/.cache/jaxmarl_lab/llm; false: off)
    max_concurrency: int = 8
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.paradigm not in PARADIGMS:
            raise ValueError(f"paradigm must be one of {PARADIGMS}, got {self.paradigm!r}")
        if self.trajectories_per_iteration < 1:
            raise ValueError("trajectories_per_iteration must be at least 1")
        if self.agent_type not in ("llm", "rule"):
            raise ValueError(f"agent_type must be 'llm' or 'rule', got {self.agent_type!r}")

    def resolve_llm(self, which: str | None = None) -> LLMConfig:
        """``<which>_llm_config`` > ``llm_config`` > ``model`` (predefined, else a bare OpenAI model)."""
        spec = getattr(self, f"{which}_llm_config") if which else None
        spec = spec if spec is not None else self.llm_config
        if spec is None:
            spec = self.model if self.model in PREDEFINED_MODELS else {"name": self.model,
                                                                       "model_string": self.model}
        return get_llm_config(spec, base_url=self.base_url, api_key_env_var=self.api_key_env)

    def to_json(self, path: str | Path) -> None:
        data = dataclasses.asdict(self)
        for name in ("llm_config", "episode_llm_config", "textgrad_llm_config"):
            if isinstance(data[name], LLMConfig):
                data[name] = data[name].to_dict()
            elif isinstance(data[name], dict):
                data[name] = {k: v for k, v in data[name].items() if k != "api_key"}   # never write keys
        Path(path).write_text(json.dumps(data, indent=2))

    @classmethod
    def from_json(cls, path: str | Path) -> TrainingConfig:
        """A config from JSON (the original's format) or YAML (``configs/textgrad_pistonball.yaml``)."""
        text = Path(path).read_text()
        data = yaml.safe_load(text) if str(path).endswith((".yaml", ".yml")) else json.loads(text)
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown TrainingConfig key(s) {unknown} in {path}")
        if "frame_size" in data:
            data["frame_size"] = tuple(data["frame_size"])
        return cls(**data)


# ---- policy.json ----------------------------------------------------------------------------
class PolicyManager:
    """``policy.json``: ``{current_iteration, num_agents, policies: {iteration_k: {timestamp,
    agent_policies: {piston_i: {policy}}, training_stats}}}`` (spec B4); legacy ``team_policy``."""

    def __init__(self, path: str | Path, num_agents: int, default_text: str = DEFAULT_POLICY):
        self.path, self.num_agents, self.default_text = Path(path), int(num_agents), default_text
        self.data = self._load()

    def _load(self) -> dict:
        if not self.path.is_file():
            return {"current_iteration": 0, "num_agents": self.num_agents, "policies": {}}
        data = json.loads(self.path.read_text())
        if "team_policy" in data and "policies" not in data:                   # legacy: one text for all
            text = data["team_policy"].get("policy", self.default_text)
            data = {"current_iteration": 0, "num_agents": self.num_agents,
                    "policies": {"iteration_0": {"timestamp": _now(), "training_stats": None,
                                                 "agent_policies": self._all(text)}}}
        return data

    def _all(self, text: str) -> dict:
        return {f"piston_{i}": {"policy": text} for i in range(self.num_agents)}

    def texts(self, iteration: int) -> dict:
        """The policies of ``iteration``, else of ``iteration - 1``, else of ``current_iteration``."""
        policies = self.data["policies"]
        for key in (f"iteration_{iteration}", f"iteration_{iteration - 1}",
                    f"iteration_{self.data.get('current_iteration', 0)}"):
            if key in policies:
                found = policies[key]["agent_policies"]
                return {f"piston_{i}": found.get(f"piston_{i}", {"policy": self.default_text})
                        for i in range(self.num_agents)}
        return self._all(self.default_text)

    def save(self, iteration: int, texts: dict, stats: dict | None) -> None:
        self.data["policies"][f"iteration_{iteration}"] = {"timestamp": _now(), "agent_policies": texts,
                                                           "training_stats": stats}
        self.data["current_iteration"] = max(self.data.get("current_iteration", 0), iteration)
        self.data["num_agents"] = self.num_agents
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2))


def _now() -> str:
    return datetime.now(UTC).isoformat()


# ---- critic prompts (spec B5, with the B10 defects fixed) --------------------------------------
def game_context(num_pistons: int, continuous: bool) -> str:
    actions = ("a number in [-1, 1] per cycle (positive = up, up to 4 px)" if continuous
               else "0 = RETRACT_DOWN (4 px), 1 = STAY, 2 = PUSH_UP (4 px) per cycle")
    return (f"Pistonball: {num_pistons} pistons in a row (piston_0 is leftmost, next to the goal) share one "
            "reward. The team must move a ball of radius 40 px to the LEFT wall as fast as possible; every "
            "cycle costs a small time penalty. Pistons only move vertically, between heights 0 and 64 px; "
            f"actions: {actions}. The ball rolls down slopes: pistons to the RIGHT of the ball should rise and "
            "pistons to the LEFT of it should retract, so that the surface under the ball slopes down to the "
            "left. Pistons the ball has not reached yet should stay low until it comes near; each piston only "
            "sees its neighbours' heights and the ball when it is within its 3-column window.")


def piston_group(i: int, n: int) -> str:
    region = "left" if i < n / 3 else "middle" if i < 2 * n / 3 else "right"
    return f"piston_{i} (position {i}/{n - 1}, {region} region)"


def critic_prompt(paradigm: str, trajectory: str, num_pistons: int, continuous: bool, piston: int | None = None) -> str:
    context = game_context(num_pistons, continuous)
    if paradigm == "independent":
        return (f"{context}\n\nEvaluate the behaviour of {piston_group(piston, num_pistons)}, one cooperative "
                "piston of the team, in the episode below: the timing and direction of its moves relative to the "
                "ball, and its coordination with its neighbours. Say what it should do differently.\n\n"
                f"{trajectory}")
    if paradigm == "central_global":
        return (f"{context}\n\nAssess the TEAM in the episode below: progress towards the goal, the shape of the "
                "surface under the ball, how coherent the actions were, and systemic failures. Do not blame "
                f"individual pistons; give team-level advice.\n\n{trajectory}")
    sections = "\n".join(f"[PISTON_{i} EVALUATION]\n- Performance assessment: ...\n- Specific improvements: ..."
                         for i in range(min(num_pistons, 2)))
    return (f"{context}\n\nEvaluate EVERY piston of the team in the episode below separately. For each i from 0 to "
            f"{num_pistons - 1} write exactly one section in this format:\n{sections}\n...\n"
            "Pistons left of the ball should retract (0) and pistons right of it should push up (2); pistons "
            f"that never see the ball should stay low.\n\n{trajectory}")


def format_trajectory(episode: dict, every: int = 10) -> str:
    """Every ``every``-th cycle and the last one: global state, every piston's action, rewards."""
    transitions = episode["transitions"]
    lines = [f"Episode with {episode['num_pistons']} pistons, total reward {episode['total_reward']:.2f}, "
             f"{len(transitions)} cycles."]
    for t in sorted({t for t in range(0, len(transitions), every)} | {len(transitions) - 1}):
        step = transitions[t]
        actions = ", ".join(f"{name}={a['action_name']}" for name, a in step["agents"].items())
        lines += [f"--- cycle {t} ---", step["global_state"]["text"], f"actions: {actions}",
                  f"reward: {step['instant_reward']:.3f}, cumulative: {step['cumulative_reward']:.3f}"]
    lines.append(f"Total reward: {episode['total_reward']:.2f}")
    return "\n".join(lines)


def _split_at(matches: list, text: str) -> dict[int, str]:
    """{number in the match: the text up to the next match}; the first match of a number wins."""
    out: dict[int, str] = {}
    for m, nxt in zip(matches, matches[1:] + [None]):  # noqa: B905 - the sentinel makes the lengths equal
        out.setdefault(int(m.group(1)), text[m.end(): nxt.start() if nxt else len(text)].strip())
    return out


def parse_credit_sections(response: str, num_pistons: int) -> tuple[dict[int, str], dict]:
    """Per-piston feedback from a ``central_credit`` critique (cascade in the module docstring)."""
    found = _split_at(list(re.finditer(r"\[PISTON_(\d+) EVALUATION\]", response, flags=re.IGNORECASE)), response)
    counts = {"markers": len(found)}
    for pattern, name in ((r"\*\*piston_(\d+)\*\*\s*:?", "bold"), (r"(?m)^\s*piston_(\d+)\s*:", "plain")):
        if len(found) >= num_pistons:
            break
        hits = list(re.finditer(pattern, response, flags=re.IGNORECASE))
        found = {**_split_at(hits, response), **found}
        counts[name] = len(hits)
    if len(found) < num_pistons / 2:
        hits = list(re.finditer(r"(?m)^\s*(\d+)[.)]\s", response))
        found = {**_split_at(hits, response), **found}
        counts["numbered"] = len(hits)
    groups = {g.lower(): response[m.end():].split("[", 1)[0].strip()
              for g, m in ((m.group(1), m) for m in re.finditer(r"\[(LEFT|MIDDLE|RIGHT) PISTONS EVALUATION\]",
                                                                response, flags=re.IGNORECASE))}
    out, fallback = {}, 0
    for i in range(num_pistons):
        third = "left" if i < num_pistons / 3 else "middle" if i < 2 * num_pistons / 3 else "right"
        if found.get(i):
            out[i] = found[i]
        elif groups.get(third):
            out[i] = groups[third]
        else:
            out[i] = f"{GLOBAL_FALLBACK}\n{response}"
            fallback += 1
    counts.update(parsed=num_pistons - fallback, global_fallback=fallback)
    return out, counts


# ---- the trainer ----------------------------------------------------------------------------
class MonteCarloTrainer:
    def __init__(self, config: TrainingConfig):
        self.config = config
        self.exp_dir = Path(config.experiments_dir) / config.exp_name
        self.exp_dir.mkdir(parents=True, exist_ok=True)
        config.to_json(self.exp_dir / "config.json")
        self.episode_llm = config.resolve_llm("episode")
        self.textgrad_llm = config.resolve_llm("textgrad")
        self.engine = LLMClient(self.textgrad_llm, cache_dir=config.cache_dir, max_concurrency=config.max_concurrency)
        self.generator = EpisodeGenerator(
            num_pistons=config.num_pistons, max_cycles=config.max_cycles, action_mode=config.action_mode,
            agent_type=config.agent_type, experiments_dir=config.experiments_dir, exp_name=config.exp_name,
            rule_k=config.rule_k, rule_tau=config.rule_tau, seed=config.seed, continuous=config.continuous,
            llm_config=self.episode_llm if config.agent_type == "llm" else None, llm_cache_dir=config.cache_dir,
            max_concurrency=config.max_concurrency)
        self.policies = PolicyManager(config.policy_path, config.num_pistons)
        self.continuous = self.generator.continuous

    # ---- one iteration -------------------------------------------------------------------
    def train_one_iteration(self, iteration: int) -> dict:
        cfg, n = self.config, self.config.num_pistons
        directory = self.exp_dir / f"iteration_{iteration}"
        directory.mkdir(parents=True, exist_ok=True)
        texts = self.policies.texts(iteration)
        if f"iteration_{iteration}" not in self.policies.data["policies"]:
            self.policies.save(iteration, texts, None)
        variables = [Variable(texts[f"piston_{i}"]["policy"], f"Policy for piston_{i}") for i in range(n)]
        engine_before = self.engine.usage.summary()
        episodes = self.episodes(iteration, texts)

        evaluations, credit_log = [], []
        for episode in episodes:
            trajectory = format_trajectory(episode)
            if cfg.paradigm == "independent":
                for i, variable in enumerate(variables):
                    prompt = critic_prompt("independent", trajectory, n, self.continuous, piston=i)
                    evaluations.append(prompt)
                    self.accumulate([variable], prompt)
            elif cfg.paradigm == "central_global":
                prompt = critic_prompt("central_global", trajectory, n, self.continuous)
                evaluations.append(prompt)
                self.accumulate(variables, prompt)
            else:
                prompt = critic_prompt("central_credit", trajectory, n, self.continuous)
                evaluations.append(prompt)
                response = self.engine.complete(prompt).text
                sections, counts = parse_credit_sections(response, n)
                for i, variable in enumerate(variables):
                    variable.add_gradient(sections[i], f"piston_{i} credit assignment feedback")
                credit_log.append({"episode": episode["episode_id"], "prompt": prompt, "response": response,
                                   "feedback": sections, "counts": counts})
        if cfg.paradigm != "central_credit":
            self.summarise(variables)

        updates = TGD(variables, self.engine).step()
        new_texts = {f"piston_{i}": {"policy": v.value} for i, v in enumerate(variables)}
        stats = self.iteration_stats(episodes, engine_before)
        self.write_logs(directory, evaluations, credit_log, updates, stats)
        self.policies.save(iteration + 1, new_texts, stats)
        return stats

    def episodes(self, iteration: int, texts: dict) -> list[dict]:
        """Reuse ``trajectories_per_iteration`` valid episodes on disk, else generate them."""
        directory = self.exp_dir / f"iteration_{iteration}"
        saved = sorted(directory.glob("episode_*/episode.json"), key=lambda p: int(p.parent.name.split("_")[1]))
        loaded = []
        for path in saved[: self.config.trajectories_per_iteration]:
            episode = json.loads(path.read_text())
            if {"episode_id", "total_reward"} <= set(episode) and episode.get("transitions"):
                loaded.append(episode)
        if len(loaded) == self.config.trajectories_per_iteration:
            return loaded
        return self.generator.generate_episodes(self.config.trajectories_per_iteration, iteration, texts,
                                                save_gif=self.config.save_gif)

    def accumulate(self, variables: list[Variable], prompt: str) -> None:
        """Critique (one call) and feedback (one call), copied to every variable in ``variables``."""
        actions = Variable("Actions taken by pistons during episode", "actions of the pistons",
                           predecessors=tuple(variables))
        loss = TextLoss(prompt, self.engine)(actions)
        loss.backward()
        for gradient in actions.gradients:
            for variable in variables:
                variable.add_gradient(gradient.text, f"Gradient feedback: {gradient.context}")

    def summarise(self, variables: list[Variable]) -> None:
        """Summarise each distinct set of ≥ 2 gradients once (one call; shared texts share it)."""
        done: dict = {}
        for variable in variables:
            key = tuple(g.text for g in variable.gradients)
            if len(key) < 2:
                continue
            if key not in done:
                summarize_gradients(variable, self.engine)
                done[key] = list(variable.gradients)
            variable.gradients = list(done[key])

    def iteration_stats(self, episodes: list[dict], engine_before: dict) -> dict:
        rewards = [float(e["total_reward"]) for e in episodes]
        engine = self.engine.usage.summary()
        actors = self.generator.session.stats() if self.generator.session is not None else {}
        tokens_in = engine["input_tokens"] - engine_before["input_tokens"] + sum(
            e["token_stats"]["estimated_tokens_simulation"]["input"] for e in episodes)
        tokens_out = engine["output_tokens"] - engine_before["output_tokens"] + sum(
            e["token_stats"]["estimated_tokens_simulation"]["output"] for e in episodes)
        textgrad_calls = engine["requests"] + engine["cache_hits"] - engine_before["requests"] \
            - engine_before["cache_hits"]
        cost = None
        if self.textgrad_llm.priced and self.episode_llm.priced:
            cost = self.textgrad_llm.cost(engine["input_tokens"] - engine_before["input_tokens"],
                                          engine["output_tokens"] - engine_before["output_tokens"]) + sum(
                self.episode_llm.cost(e["token_stats"]["estimated_tokens_simulation"]["input"],
                                      e["token_stats"]["estimated_tokens_simulation"]["output"]) for e in episodes)
        return {"paradigm": self.config.paradigm, "avg_reward": sum(rewards) / len(rewards), "rewards": rewards,
                "min_reward": min(rewards), "max_reward": max(rewards), "input_tokens": tokens_in,
                "output_tokens": tokens_out, "total_tokens": tokens_in + tokens_out, "cost_usd": cost,
                "textgrad_queries": textgrad_calls,
                "actor_queries": sum(e["token_stats"]["total_gpt_queries"] for e in episodes),
                "actor_parse_failures": actors.get("parse_failures", 0)}

    def write_logs(self, directory: Path, evaluations: list[str], credit_log: list[dict], updates: list[dict],
                   stats: dict) -> None:
        parts = [f"===== critic prompt {j} =====\n{p}" for j, p in enumerate(evaluations)]
        parts.append(f"===== summary =====\nparadigm: {stats['paradigm']}\ncritic prompts: {len(evaluations)}\n"
                     f"TextGrad queries: {stats['textgrad_queries']}\ntokens in/out: {stats['input_tokens']}/"
                     f"{stats['output_tokens']}\ncost (USD): {stats['cost_usd']}")
        (directory / "textgrad_evaluations.txt").write_text("\n\n".join(parts))
        if credit_log:
            blocks = []
            for entry in credit_log:
                feedback = "\n".join(f"--- piston_{i} ---\n{t}" for i, t in entry["feedback"].items())
                blocks.append(f"===== episode {entry['episode']} =====\n--- prompt ---\n{entry['prompt']}\n"
                              f"--- response ---\n{entry['response']}\n--- parsed feedback ---\n{feedback}\n"
                              f"--- parse counts --- {json.dumps(entry['counts'])}")
            (directory / "credit_assignment_responses.txt").write_text("\n\n".join(blocks))
        with open(directory / "textgrad_log.jsonl", "w") as fh:
            for entry in updates:
                fh.write(json.dumps(entry) + "\n")

    # ---- the whole run -------------------------------------------------------------------
    def train_full(self) -> list[dict]:
        """Iterations ``start_iteration .. num_iterations - 1``; status.json says how the run ended."""
        history = []
        self.status("running")
        try:
            for iteration in range(self.config.start_iteration, self.config.num_iterations):
                start = time.perf_counter()
                stats = self.train_one_iteration(iteration)
                history.append(stats)
                print(f"iteration {iteration}: avg reward {stats['avg_reward']:.2f} "
                      f"(min {stats['min_reward']:.2f}, max {stats['max_reward']:.2f}), "
                      f"{stats['total_tokens']} tokens, {time.perf_counter() - start:.1f}s", flush=True)
        except KeyboardInterrupt:
            self.status("interrupted", history)
            raise
        except Exception as error:
            self.status("failed", history, f"{type(error).__name__}: {error}")
            raise
        self.status("completed", history)
        return history

    def status(self, state: str, history: list | None = None, error: str | None = None) -> None:
        (self.exp_dir / "status.json").write_text(json.dumps(
            {"status": state, "time": _now(), "iterations_done": len(history or []), "error": error,
             "actor_usage": self.generator.session.stats() if self.generator.session else None,
             "textgrad_usage": self.engine.usage.summary()}, indent=2))


# ---- CLI ------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", help="a TrainingConfig JSON or YAML file, e.g. configs/textgrad_pistonball.yaml "
                   "(flags given explicitly override it)")
    p.add_argument("--list_models", action="store_true", help="print the predefined models and exit")
    p.add_argument("--exp_name")
    p.add_argument("--paradigm", choices=PARADIGMS)
    p.add_argument("--num_iterations", type=int)
    p.add_argument("--trajectories_per_iteration", type=int)
    p.add_argument("--start_iteration", type=int)
    p.add_argument("--num_pistons", type=int)
    p.add_argument("--max_cycles", type=int)
    p.add_argument("--agent_type", choices=("rule", "llm"))
    p.add_argument("--action_mode", choices=("discrete", "continuous"))
    p.add_argument("--rule_k", type=float)
    p.add_argument("--rule_tau", type=float)
    p.add_argument("--model")
    p.add_argument("--llm_config", help="predefined name or JSON file for every LLM call")
    p.add_argument("--base_url")
    p.add_argument("--api_key_env")
    p.add_argument("--experiments_dir")
    p.add_argument("--policy_path")
    p.add_argument("--log_level")
    p.add_argument("--seed", type=int)
    p.add_argument("--no_gif", action="store_true", help="do not write episode GIFs")
    p.add_argument("--cache_dir", help="LLM response cache (default ~/.cache/jaxmarl_lab/llm)")
    p.add_argument("--no_cache", action="store_true", help="do not read or write the LLM response cache")
    return p


# the original CLI's defaults where they differ from TrainingConfig's (spec B8)
CLI_DEFAULTS = {"num_iterations": 10, "num_pistons": 10, "rule_k": 1.0}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_models:
        print(format_model_table())
        return 0
    try:
        base = dataclasses.asdict(TrainingConfig.from_json(args.config)) if args.config else {**CLI_DEFAULTS}
        flags = {k: v for k, v in vars(args).items()
                 if v is not None and k not in ("config", "list_models", "no_gif", "no_cache")}
        if args.no_gif:
            flags["save_gif"] = False
        if args.no_cache:
            flags["cache_dir"] = False
        base.update(flags)
        if isinstance(base.get("frame_size"), list):
            base["frame_size"] = tuple(base["frame_size"])
        config = TrainingConfig(**base)
        trainer = MonteCarloTrainer(config)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        history = trainer.train_full()
    except KeyboardInterrupt:
        print(f"interrupted; status and finished iterations are in {trainer.exp_dir}", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - reported, status.json written, episodes stay on disk
        print(f"error: the run failed ({type(error).__name__}: {error}); see {trainer.exp_dir}/status.json",
              file=sys.stderr)
        return 1
    print(json.dumps([{k: h[k] for k in ("avg_reward", "total_tokens", "cost_usd")} for h in history]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
