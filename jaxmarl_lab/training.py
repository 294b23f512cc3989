"""The training driver every ``algos/*.py`` file hands its ``make_train`` to.

``run_algorithm`` turns an algorithm's ``Config`` into a CLI (``jaxmarl_lab.config``), creates or
resumes a run directory (``jaxmarl_lab.results``), then loops jitted ``train_chunk`` calls on
the host: a tqdm bar with env-steps/s and the headline metric, one ``metrics.csv`` row per
update (plus wandb/TensorBoard when asked), evaluation every ``eval_interval`` env steps with
a ``best`` checkpoint, periodic ``step_<n>`` checkpoints, and at the end a ``final`` checkpoint,
``final_eval.json``, plots and the run's status. Ctrl-C (after the current chunk; twice: at once)
or ``--stop-at-step`` saves a checkpoint and marks the run ``interrupted``; ``--resume-from RUN_DIR``
continues it exactly. ``--num-seeds K`` vmaps K independent runs into the same program.

Contract with the algorithm: ``Config`` has ``env``, ``seed``, ``num_seeds``, ``updates_per_chunk``,
``eval_interval``, ``eval_games``, ``checkpoint_interval`` and the properties ``num_updates`` and
``steps_per_update``; ``make_train(config, env)`` returns ``init(key)`` and ``train_chunk(runner)``
whose runner has ``.params`` and ``.update``; ``make_policy(config, env, params)`` returns a Policy.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxmarl_lab.checkpoint import latest_step_checkpoint, restore_checkpoint, save_checkpoint
from jaxmarl_lab.config import ConfigError, RunOptions, build, parse_args, to_dict
from jaxmarl_lab.distributed import to_host
from jaxmarl_lab.evaluation import report_for
from jaxmarl_lab.game_theory import supports_exact_evaluation
from jaxmarl_lab.logger import MetricsLogger
from jaxmarl_lab.plots import plot_nash_conv, plot_training_curves
from jaxmarl_lab.policies import Policy
from jaxmarl_lab.registry import make
from jaxmarl_lab.results import ResultsManager, Run
from jaxmarl_lab.wrappers import with_opponents

#: evaluation metrics where smaller is better (the ``best`` checkpoint minimises them)
LOWER_IS_BETTER = ("nash_conv",)


class _StopRequested(Exception):
    """--stop-at-step reached: leave like an interrupt, resumable."""


class _GracefulInterrupt:
    """Ctrl-C stops the run after the current chunk instead of wherever Python happens to be.

    A KeyboardInterrupt raised inside JAX's compilation or dispatch can leave a lock held, and the
    checkpoint written next then hangs. The first Ctrl-C only sets a flag that the loop checks after
    each chunk; a second one interrupts at once. A launcher that ignores SIGINT is respected.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: stopping after the current chunk and saving a checkpoint (Ctrl-C again to stop at once)",
              file=sys.stderr)

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def __enter__(self) -> _GracefulInterrupt:
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _crossed(interval: int, before: int, after: int) -> bool:
    """Whether a multiple of ``interval`` env steps lies in (before, after]; never for interval 0."""
    return bool(interval) and after // interval > before // interval


def _seed_slice(tree, index: int | None):
    return tree if index is None else jax.tree_util.tree_map(lambda x: x[index], tree)


def _flat_rows(metrics: dict, num_seeds: int) -> list[dict]:
    """Per-update rows from chunk metrics ([K] or [S, K]): seed means plus ``key/seed<i>`` columns."""
    if num_seeds == 1:
        steps = len(next(iter(metrics.values())))
        return [{k: float(v[i]) for k, v in metrics.items()} for i in range(steps)]
    steps = next(iter(metrics.values())).shape[1]
    rows = []
    for i in range(steps):
        row = {k: float(np.mean(v[:, i])) for k, v in metrics.items()}
        row.update({f"{k}/seed{s}": float(v[s, i]) for k, v in metrics.items() for s in range(num_seeds)})
        rows.append(row)
    return rows


def evaluate_seeds(config, env, make_policy, params, key, num_games: int) -> dict:
    """The evaluation report (jaxmarl_lab.evaluation.report_for) of every seed's policy;
    ``summary`` is the mean over seeds."""
    seeds = config.num_seeds
    report_fn = report_for(env)[0]
    # training-only reward terms (e.g. the Therapy env's potential shaping) are off in evaluation
    extra = {"params": env.evaluation_params} if hasattr(env, "evaluation_params") else {}
    reports = [report_fn(env, make_policy(config, env, _seed_slice(params, s if seeds > 1 else None)),
                         num_games, jax.random.fold_in(key, s), **extra) for s in range(seeds)]
    if seeds == 1:
        return reports[0]
    summary = {k: float(np.mean([r["summary"][k] for r in reports])) for k in reports[0]["summary"]}
    for s, r in enumerate(reports):
        summary.update({f"{k}/seed{s}": v for k, v in r["summary"].items()})
    return {**reports[0], "summary": summary, "per_seed": reports}


def _save_policy_params(run: Run, name: str, params) -> None:
    save_checkpoint(run.checkpoints_dir, f"policy_{name}", {"params": params})


@dataclass
class TrainResult:
    """What one training call produced: the exit code, the run (None if it never started) and the
    final evaluation report (None unless the run completed)."""

    exit_code: int
    run: Run | None = None
    report: dict | None = None
    error: str | None = None
    params: object = None  # the final policy parameters (numpy on every process of a multi-process run)

    @property
    def run_dir(self) -> Path | None:
        return None if self.run is None else self.run.path

    @property
    def metrics(self) -> list[dict]:
        """The per-update rows of metrics.csv (plus evaluation rows)."""
        return [] if self.run is None else self.run.read_metrics()


class EpisodeWindow:
    """Running counters logged under the Bucket Brigade trainer's names: ``episode/reward`` and
    ``episode/length`` (this update's episode means), ``train/avg_reward_100ep`` (mean return of
    the last 100 finished episodes, from per-update means and counts), ``train/total_episodes``
    and ``train/steps_per_sec`` (this session)."""

    def __init__(self, size: int = 100):
        self.size, self.total, self.recent = size, 0, []  # recent: [(mean, count)], newest last

    def row(self, row: dict, steps_per_sec: float) -> dict:
        count = int(round(row.get("episodes", 0) or 0))
        out = {"train/steps_per_sec": steps_per_sec}
        self.total += count
        episode_return = row.get("episode_return")
        if count and episode_return is not None and np.isfinite(episode_return):
            self.recent.append((episode_return, count))
            out.update({"episode/reward": row["episode_return"], "episode/length": row.get("episode_length")})
        kept, weight, total = [], 0, 0.0
        for mean, n in reversed(self.recent):
            take = min(n, self.size - weight)
            if take <= 0:
                break
            kept.append((mean, n))
            weight, total = weight + take, total + mean * take
        self.recent = kept[::-1]
        if weight:
            out["train/avg_reward_100ep"] = total / weight
        out["train/total_episodes"] = self.total
        return {k: v for k, v in out.items() if v is not None}


def _shard_over_devices(config, init, chunk, num_devices: int):
    """(place, jitted chunk): the runner's env batch split over a mesh of ``num_devices`` devices,
    parameters replicated (jaxmarl_lab.distributed)."""
    from jaxmarl_lab.distributed import make_mesh, replicated, runner_shardings, to_global

    if not hasattr(config, "num_envs"):
        raise ValueError("--devices splits the env batch: the algorithm's Config needs num_envs")
    mesh = make_mesh(num_devices)
    shapes = jax.eval_shape(init, jax.random.key(0))
    if config.num_seeds > 1:
        shapes = jax.tree_util.tree_map(lambda s: jax.ShapeDtypeStruct((config.num_seeds, *s.shape), s.dtype), shapes)
    shardings = runner_shardings(shapes, mesh, config.num_envs, env_axis=1 if config.num_seeds > 1 else 0)
    jitted = jax.jit(chunk, in_shardings=(shardings,), out_shardings=(shardings, replicated(mesh)))
    return (lambda runner: to_global(runner, shardings)), jitted


def make_env(config):
    """The env a Config trains on: ``make(config.env, **config.env_kwargs)``, with scripted
    ``config.opponents`` in its last seats (see :func:`jaxmarl_lab.wrappers.with_opponents`)."""
    env = make(config.env, **dict(getattr(config, "env_kwargs", None) or {}))
    return with_opponents(env, getattr(config, "opponents", "") or "")


def run_algorithm(algorithm: str, config_cls, make_train, make_policy, argv: list[str] | None = None, *,
                  description: str | None = None, progress_metric: str = "episode_welfare",
                  eval_metric: str | None = None, policy_params=None, host_loop: bool = False) -> int:
    """Parse the CLI, train, evaluate and record one run; returns a process exit code.

    ``eval_metric`` (what the ``best`` checkpoint maximises) defaults to the headline metric of
    the env's evaluation report (``selfplay_welfare`` or ``mean_return``). ``policy_params``
    maps the learner's params to what the saved policy needs (e.g. MAPPO's actor without its
    critic); ``load_policy`` restores those.
    """
    try:
        config, options, explicit = parse_args(config_cls, argv, prog=f"{algorithm}.py", description=description)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return train(algorithm, config_cls, make_train, make_policy, config, options, explicit,
                 progress_metric=progress_metric, eval_metric=eval_metric, policy_params=policy_params,
                 host_loop=host_loop).exit_code


def train(algorithm: str, config_cls, make_train, make_policy, config, options: RunOptions,
          explicit: tuple[str, ...] = (), *, progress_metric: str = "episode_welfare", eval_metric: str | None = None,
          policy_params=None, on_progress: Callable[[Run], None] | None = None,
          host_loop: bool = False) -> TrainResult:
    """Train one run from a resolved ``config`` and driver ``options`` (see :func:`run_algorithm`).

    ``explicit`` names the config fields given on the command line (they override the saved config
    when resuming). ``on_progress(run)`` is called after every evaluation and when the run stops
    (completed or interrupted), e.g. to write a derived progress table. ``host_loop``: the
    algorithm's ``init``/``train_chunk`` are host-side outer loops around their own jitted
    programs (PSRO-style), so the driver does not jit them (one seed per run).
    """
    policy_params = policy_params or (lambda params: params)
    try:
        from jaxmarl_lab.distributed import initialize_distributed

        multi = initialize_distributed(options.coordinator_address, options.num_processes or None,
                                       None if options.process_id < 0 else options.process_id)
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return TrainResult(2, error=str(err))
    main_process = jax.process_index() == 0
    resuming = options.resume_from is not None
    try:
        # every process reads the run it resumes (a shared filesystem, as for any multi-host checkpoint)
        resumed = ResultsManager(options.results_dir).open_run(options.resume_from) if resuming else None
    except (FileNotFoundError, KeyError, ValueError) as err:
        print(f"error: cannot resume {options.resume_from}: {err}", file=sys.stderr)
        return TrainResult(2, error=str(err))
    if multi:
        if options.devices == 1:  # a multi-process run shards over every process's devices
            options = dataclasses.replace(options, devices=0)
        if not main_process:  # only process 0 logs and writes results; the others write to a scratch dir
            import tempfile

            options = dataclasses.replace(options, results_dir=tempfile.mkdtemp(prefix="jaxmarl_worker_"),
                                          quiet=True, wandb=False, tensorboard=False, eval_gif=False)
    try:
        manager = ResultsManager(options.results_dir)
        if resuming:
            saved = resumed.load_config()
            config = build(config_cls, {**saved, **{k: getattr(config, k) for k in explicit}})
            if main_process:
                run = resumed
                run.save_config(to_dict(config))
        env = make_env(config)
        init, train_chunk = make_train(config, env)  # validates the config against the env
        if host_loop and config.num_seeds != 1:
            raise ConfigError(f"{algorithm} runs its outer loop on the host: one seed per run "
                              f"(got num_seeds={config.num_seeds}); start one run per seed")
        combos, base_seeds = [], config.num_seeds
        if options.sweep:
            from jaxmarl_lab.sweep import parse_sweep

            combos = parse_sweep(options.sweep, config_cls)
            if host_loop or resuming or options.devices != 1:
                raise ConfigError("--sweep runs a fresh run on one device (not with --resume-from, --devices or "
                                  f"{algorithm}'s host loop)")
            config = dataclasses.replace(config, num_seeds=base_seeds * len(combos))
    except (ConfigError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return TrainResult(2, error=str(err))

    seeds = config.num_seeds
    place = lambda runner: runner  # noqa: E731 - puts a runner on the mesh (identity on one device)
    if not host_loop:
        chunk = jax.vmap(train_chunk) if seeds > 1 else train_chunk
        init, train_chunk = jax.jit(init), jax.jit(chunk)
        if options.devices != 1:
            try:
                place, train_chunk = _shard_over_devices(config, init, chunk, options.devices)
            except ValueError as err:
                print(f"error: {err}", file=sys.stderr)
                return TrainResult(2, error=str(err))
    elif options.devices != 1:
        print(f"error: {algorithm} runs its outer loop on the host; --devices is not supported", file=sys.stderr)
        return TrainResult(2, error="--devices with a host-loop algorithm")
    if combos:  # every slot (combination, seed) in one vmapped program; swept fields are traced
        from jaxmarl_lab.sweep import slot_values

        values = {k: jnp.asarray(v) for k, v in slot_values(combos, base_seeds).items()}
        swept_chunk = jax.jit(jax.vmap(
            lambda runner, row: make_train(dataclasses.replace(config, **row), env)[1](runner)))
        train_chunk = lambda runner: swept_chunk(runner, values)  # noqa: E731
    if seeds > 1:
        # seeds are initialised one by one and stacked, not vmapped: a vmapped orthogonal initialiser
        # is a batched LAPACK QR, which can deadlock on CPU hosts with few cores
        single_init, seed_keys = init, jax.random.split(jax.random.key(config.seed), base_seeds)
        seed_keys = [seed_keys[slot % base_seeds] for slot in range(seeds)]  # a sweep reuses the seeds
        init = lambda _: jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[single_init(k) for k in seed_keys])
    keys = jax.random.key(config.seed)

    if not resuming or not main_process:  # a worker process of a resumed run logs to its scratch dir
        run = manager.create_run(algorithm, config.env, config.seed, to_dict(config), run_name=options.run_name,
                                 tags=options.tags, num_seeds=seeds)
        if combos:
            run.update_metadata(sweep={"combinations": combos, "seeds_per_combination": base_seeds})
    _, format_report, headline = report_for(env)
    if eval_metric == "nash_conv" and not supports_exact_evaluation(env):
        eval_metric = None  # equilibrium learners on games too large for exact evaluation
    eval_metric = eval_metric or headline
    policy_probe = make_policy(config, env, None)
    probes = policy_probe if isinstance(policy_probe, tuple) else (policy_probe,)
    if all(hasattr(p.act_fn, "spec") for p in probes):
        specs = [p.act_fn.spec() for p in probes]
        run.update_metadata(policy_spec=specs if isinstance(policy_probe, tuple) else specs[0],
                            obs_dim=int(np.prod(env.obs_shape)))
    logger = MetricsLogger(run, config=to_dict(config), wandb=options.wandb, wandb_project=options.wandb_project,
                           wandb_name=options.wandb_name, wandb_tags=options.wandb_tags,
                           wandb_mode=options.wandb_mode, tensorboard=options.tensorboard, resume=resuming)

    with _GracefulInterrupt() as interrupt:
        print(f"{algorithm}: run {run.run_id} -> {run.path}", file=sys.stderr)
        runner = init(keys)
        if resuming:  # every process reads the whole state, then keeps its slice of the env batch
            name = latest_step_checkpoint(resumed.checkpoints_dir)
            if name is None:
                print(f"error: {resumed.path} has no step_<n> checkpoint to resume from", file=sys.stderr)
                return TrainResult(2, run, error=f"{resumed.path} has no step_<n> checkpoint to resume from")
            runner = restore_checkpoint(resumed.checkpoints_dir, name, runner)
            print(f"resumed from checkpoint {name}", file=sys.stderr)
        runner = place(runner)
        run.update_metadata(status="running")

        spu, total_updates = config.steps_per_update, config.num_updates
        if total_updates * spu != getattr(config, "total_timesteps", total_updates * spu):
            print(f"note: total_timesteps {config.total_timesteps:,} rounded up to {total_updates * spu:,} "
                  f"({total_updates} updates of {spu:,} steps, in chunks of {config.updates_per_chunk})",
                  file=sys.stderr)
        update = lambda: int(np.ravel(to_host(runner.update))[0])
        eval_key = jax.random.key(config.seed + 1_000_003)
        sign = -1.0 if eval_metric in LOWER_IS_BETTER else 1.0  # the best checkpoint maximises sign * metric
        best = run.metadata.get("best_eval", {}).get(eval_metric, -sign * np.inf)
        bar = tqdm(total=total_updates * spu, initial=update() * spu, unit="step", unit_scale=True,
                   disable=options.quiet, desc=algorithm, dynamic_ncols=True)
        session_start, session_steps0 = time.perf_counter(), update() * spu
        previous_time = float(run.metadata.get("train_time_s") or 0.0)
        window = EpisodeWindow()
        # the counters continue where the run stopped
        for row in run.read_metrics() if resuming and main_process else ():
            if row.get("env_steps", 0) <= session_steps0 and row.get("episodes") is not None:
                window.row(row, 0.0)

        def record(status: str, error: str | None = None) -> None:
            elapsed = time.perf_counter() - session_start
            steps = update() * spu
            run.finish(status, error=error, total_env_steps=steps, train_time_s=previous_time + elapsed,
                       steps_per_s=(steps - session_steps0) / max(elapsed, 1e-9))

        def checkpoint(name: str, state=None) -> None:
            """Save on process 0 (after gathering a multi-process state: every process calls this)."""
            state = runner if state is None else state
            state = to_host(state) if multi else state
            if main_process:
                save_checkpoint(run.checkpoints_dir, name, state)

        def evaluate_now(final: bool) -> dict | None:
            nonlocal best
            steps = update() * spu
            state = to_host(runner) if multi else runner  # every process takes part in the gather
            if not main_process:
                return None
            report = evaluate_seeds(config, env, make_policy, state.params, jax.random.fold_in(eval_key, steps),
                                    config.eval_games)
            wall = previous_time + time.perf_counter() - session_start
            logger.log(steps, {"env_steps": steps, "eval/time_s": wall,
                               **{f"eval/{k}": v for k, v in report["summary"].items() if "/seed" not in k}})
            score = report["summary"].get(eval_metric)
            if score is not None and sign * score > sign * best:
                best = score
                save_checkpoint(run.checkpoints_dir, "best", state)
                _save_policy_params(run, "best", policy_params(state.params))
                run.update_metadata(best_eval={eval_metric: score, "env_steps": steps})
            if not final:
                bar.write(f"[eval @ {steps:,} steps] {eval_metric} = {score:.4f} (best {best:.4f})")
            if on_progress is not None:
                on_progress(run)
            return report

        try:
            while update() < total_updates:
                before = update() * spu
                try:
                    runner, metrics = train_chunk(runner)
                except jax.errors.ConcretizationTypeError as err:
                    if not combos:
                        raise
                    raise ConfigError(f"cannot sweep {', '.join(combos[0])}: {algorithm} uses it in Python "
                                      f"control flow or for a shape; start one run per value ({err})") from None
                metrics = to_host(metrics)
                steps_now = update() * spu
                rows = _flat_rows(metrics, seeds)
                elapsed = time.perf_counter() - session_start
                speed = (steps_now - session_steps0) / max(elapsed, 1e-9)
                for i, row in enumerate(rows):
                    row_steps = before + (i + 1) * spu
                    logger.log(row_steps, {"env_steps": row_steps, "update": row_steps // spu, **row,
                                           **window.row(row, speed)})
                bar.update(steps_now - bar.n)
                bar.set_postfix({"steps/s": f"{(steps_now - session_steps0) / max(elapsed, 1e-9):,.0f}",
                                 progress_metric: f"{rows[-1].get(progress_metric, float('nan')):.3f}"})
                if _crossed(config.checkpoint_interval, before, steps_now):
                    checkpoint(f"step_{steps_now}")
                if _crossed(config.eval_interval, before, steps_now) and steps_now < total_updates * spu:
                    evaluate_now(final=False)
                if options.stop_at_step and steps_now >= options.stop_at_step and steps_now < total_updates * spu:
                    raise _StopRequested
                interrupt.check()
            bar.close()
            final_state = to_host(runner) if multi else runner
            checkpoint(f"step_{update() * spu}", final_state)
            checkpoint("final", final_state)
            if main_process:
                _save_policy_params(run, "final", policy_params(final_state.params))
                print(f"final evaluation: {config.eval_games} games per matchup ...", file=sys.stderr)
            report = evaluate_now(final=True)
            if not main_process:
                logger.close()
                return TrainResult(0, None, params=policy_params(final_state.params))
            run.write_final_eval(report)
            if combos:
                from jaxmarl_lab.sweep import summarise, write_results

                rows = summarise(report, combos, base_seeds, eval_metric)
                table = write_results(run.path / "sweep_results.json", rows,
                                      lower_is_better=eval_metric in LOWER_IS_BETTER)
                print(table)
            plot_training_curves(run.read_metrics(), run.plots_dir / "training_curves.png")
            plot_nash_conv(run.read_metrics(), run.plots_dir / "nash_conv.png")
            if options.eval_gif:
                _save_eval_gif(run, env, make_policy, config, final_state.params, eval_key, options.eval_gif_fps)
            record("completed")
            logger.close()
            print(format_report(report))
            print(f"\nresults: {run.path} (metrics.csv, final_eval.json, plots/, checkpoints/)")
            return TrainResult(0, run, report, params=policy_params(final_state.params))
        except (KeyboardInterrupt, _StopRequested) as stop:
            bar.close()
            steps = update() * spu
            checkpoint(f"step_{steps}")
            plot_training_curves(run.read_metrics(), run.plots_dir / "training_curves.png")
            record("interrupted")
            logger.close()
            if on_progress is not None:
                on_progress(run)
            why = "stopped at --stop-at-step" if isinstance(stop, _StopRequested) else "interrupted"
            print(f"\n{why} at {steps:,} env steps; checkpoint saved. Continue with:\n"
                  f"  python algos/{algorithm}.py --resume-from {run.path}", file=sys.stderr)
            return TrainResult(0 if isinstance(stop, _StopRequested) else 130, run)
        except ConfigError as err:  # found only once the program is traced (e.g. an unsweepable field)
            bar.close()
            record("failed", error=str(err))
            logger.close()
            print(f"error: {err}", file=sys.stderr)
            return TrainResult(2, run, error=str(err))
        except Exception as err:
            bar.close()
            record("failed", error=f"{type(err).__name__}: {err}")
            logger.close()
            raise


def _save_eval_gif(run: Run, env, make_policy, config, params, key, fps: float) -> None:
    """plots/eval_episode.gif: one episode of the final policy (seed 0 of a multi-seed run)."""
    from jaxmarl_lab.evaluation import record_episode
    from jaxmarl_lab.render import save_gif

    if config.num_seeds > 1:
        params = jax.tree_util.tree_map(lambda x: x[0], params)
    frames, result = record_episode(env, make_policy(config, env, params), key)
    path = save_gif(frames, run.plots_dir / "eval_episode.gif", fps=fps)
    print(f"evaluation episode (return {float(result.returns[0].mean()):.2f}, {int(result.lengths[0])} steps): "
          f"{path}", file=sys.stderr)


def load_policy(run_dir: str | Path, checkpoint: str = "final", seed_index: int = 0,
                sample: bool = True) -> Policy | tuple[Policy, ...]:
    """The trained policy of a run directory as a jittable :class:`Policy` (for evaluate/crossplay),
    or a tuple with one Policy per agent when the run trained agent-specific policies.

    ``checkpoint`` is ``final`` or ``best``; ``seed_index`` picks one seed of a ``--num-seeds`` run;
    ``sample=False`` acts greedily (argmax).
    """
    from jaxmarl_lab.networks import ActorCriticAct
    from jaxmarl_lab.population import MixtureAct

    run = Run(run_dir)
    meta = run.metadata
    spec = meta.get("policy_spec")
    if spec is None:
        raise ValueError(f"{run_dir} has no policy_spec in metadata.json; it was not written by a policy-learning run")
    specs = spec if isinstance(spec, list) else [spec]
    kinds = {"actor_critic": ActorCriticAct, "mixture": MixtureAct}
    unknown = [s.get("kind") for s in specs if s.get("kind") not in kinds]
    if unknown:
        raise ValueError(f"{run_dir}: unknown policy kind {unknown[0]!r} (known: {', '.join(kinds)})")
    acts = [kinds[s["kind"]].from_spec(s, sample=sample) for s in specs]
    act = acts[0]
    template = act.init_params(jax.random.key(0), int(meta["obs_dim"]))
    num_seeds = int(meta.get("num_seeds") or 1)
    if num_seeds > 1:
        template = jax.tree_util.tree_map(lambda x: jnp.stack([x] * num_seeds), template)
    params = restore_checkpoint(run.checkpoints_dir, f"policy_{checkpoint}", {"params": template})["params"]
    if num_seeds > 1:
        params = _seed_slice(params, seed_index)
    name = f"{meta.get('algorithm', 'policy')}:{run.run_id}"
    policies = tuple(Policy(params, a, name) for a in acts)
    return policies if isinstance(spec, list) else policies[0]
