"""--devices N: the env batch split over N (forced host) devices gives the single-device result.

The check runs in a subprocess because the number of CPU devices is fixed when JAX starts
(XLA_FLAGS=--xla_force_host_platform_device_count=4)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent('''
    import jax
    import numpy as np

    from algos import ippo, mappo, ppo_bargain
    from jaxmarl_lab.training import _shard_over_devices, make_env

    assert jax.device_count() == 4, jax.devices()
    tiny = {
        "ppo_bargain": (ppo_bargain, dict(num_envs=32, rollout=8, total_timesteps=768, updates_per_chunk=3,
                                          minibatch_size=64, hidden_size=32)),
        "ippo": (ippo, dict(env="mpe_simple_reference", num_envs=8, rollout=25, total_timesteps=600,
                            updates_per_chunk=3)),
        "mappo": (mappo, dict(env="bargain", num_envs=16, rollout=8, total_timesteps=384, updates_per_chunk=3)),
    }
    for name, (module, fields) in tiny.items():
        config = module.Config(**fields)
        env = make_env(config)
        init, chunk = module.make_train(config, env)
        init = jax.jit(init)
        start = init(jax.random.key(0))
        one, _ = jax.jit(chunk)(start)  # the driver's single-device program
        place, sharded_chunk = _shard_over_devices(config, init, chunk, 4)
        four, _ = sharded_chunk(place(start))
        obs = jax.tree_util.tree_leaves(four.obs)[0]
        assert len(obs.sharding.device_set) == 4 and not obs.sharding.is_fully_replicated, name
        leaf = jax.tree_util.tree_leaves(four.params)[0]
        assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 4, name
        for a, b in zip(jax.tree_util.tree_leaves(one.params), jax.tree_util.tree_leaves(four.params), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5, err_msg=name)
        moved = max(float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in
                    zip(jax.tree_util.tree_leaves(start.params), jax.tree_util.tree_leaves(one.params), strict=True))
        assert moved > 0, name  # the chunk really updated the parameters
        print(f"{name}: parameters agree after {config.updates_per_chunk} updates on 1 and 4 devices")
    print("sharding ok")
''')


def test_four_devices_match_one(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    for name in ("ppo_bargain", "ippo", "mappo"):
        assert f"{name}: parameters agree" in proc.stdout
    assert "sharding ok" in proc.stdout


def test_devices_errors(tmp_path, capsys):
    from algos import ppo_bargain

    args = ["--config", str(ROOT / "configs/ppo.yaml"), "--num-envs", "32", "--rollout", "8", "--total-timesteps",
            "256", "--minibatch-size", "64", "--results-dir", str(tmp_path), "--quiet"]
    assert ppo_bargain.main(args + ["--devices", "64"]) == 2  # more devices than visible
    assert "device(s) visible" in capsys.readouterr().err


WORKER = textwrap.dedent('''
    import sys

    import jax
    import numpy as np

    from algos import ppo_bargain
    from jaxmarl_lab.config import parse_args
    from jaxmarl_lab.training import train

    config, options, explicit = parse_args(ppo_bargain.Config, sys.argv[1:])
    result = train("ppo_bargain", ppo_bargain.Config, ppo_bargain.make_train, ppo_bargain.make_policy, config,
                   options, tuple(explicit), **ppo_bargain.DRIVER_KWARGS)
    assert result.exit_code == 0, result.error
    if result.params is None:  # stopped at --stop-at-step
        print("process", jax.process_index(), "stopped")
        sys.exit(0)
    leaves = [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(result.params)]
    np.save(sys.argv[sys.argv.index("--results-dir") + 1] + f"/params_{jax.process_index()}.npy",
            np.concatenate([x.ravel() for x in leaves]))
    print("process", jax.process_index(), "of", jax.process_count(), "devices", jax.device_count(),
          "wrote", result.run is not None)
''')


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_two_processes(args: list[str], env: dict) -> list[str]:
    """Start processes 0 and 1 of one run on 127.0.0.1; their outputs once both exit 0."""
    port = _free_port()
    workers = [subprocess.Popen(
        [sys.executable, "-c", WORKER, *args, "--coordinator-address", f"127.0.0.1:{port}", "--num-processes", "2",
         "--process-id", str(i)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    outputs = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=600)
            outputs.append(out + err[-3000:])
            assert worker.returncode == 0, "\n".join(outputs)
    finally:
        for worker in workers:
            worker.kill()
    return outputs


def test_two_processes_train_stop_and_resume_like_one_process(tmp_path):
    """Two processes on 127.0.0.1 (one CPU device each) train one run through jax.distributed,
    stopping half-way and resuming: they end with the same parameters, only process 0 writes
    results, and the parameters equal one uninterrupted process with the same global batch and key."""
    args = ["--config", str(ROOT / "configs/ppo.yaml"), "--num-envs", "32", "--rollout", "8",
            "--total-timesteps", "768", "--updates-per-chunk", "1", "--minibatch-size", "64", "--eval-games", "40",
            "--eval-interval", "0", "--checkpoint-interval", "512", "--hidden-size", "32", "--quiet"]
    base = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT),  # the resumed launch reuses programs
            "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    base.pop("XLA_FLAGS", None)
    multi_dir = tmp_path / "multi"
    multi_dir.mkdir()
    outputs = _run_two_processes([*args, "--results-dir", str(multi_dir), "--stop-at-step", "512"], base)
    assert all(f"process {i} stopped" in outputs[i] for i in range(2)), outputs
    runs = list((multi_dir / "ppo_bargain").iterdir())
    assert len(runs) == 1  # process 1 wrote nothing into the results directory
    assert [p.name for p in (runs[0] / "checkpoints").iterdir()] == ["step_512"]

    outputs = _run_two_processes([*args, "--results-dir", str(multi_dir), "--resume-from", str(runs[0])], base)
    assert "resumed from checkpoint step_512" in outputs[1], outputs[1]  # both processes read the checkpoint
    assert "process 0 of 2 devices 2 wrote True" in outputs[0], outputs[0]
    assert "process 1 of 2 devices 2 wrote False" in outputs[1], outputs[1]
    assert [p.name for p in (multi_dir / "ppo_bargain").iterdir()] == [runs[0].name]
    assert (runs[0] / "final_eval.json").exists() and (runs[0] / "checkpoints" / "final").is_dir()
    assert (runs[0] / "checkpoints" / "step_768").is_dir()
    p0, p1 = np.load(multi_dir / "params_0.npy"), np.load(multi_dir / "params_1.npy")
    np.testing.assert_array_equal(p0, p1)

    # the same global batch and key in this process, on one device, uninterrupted
    import jax

    from algos import ppo_bargain
    from jaxmarl_lab.config import parse_args
    from jaxmarl_lab.training import make_env

    config, _, _ = parse_args(ppo_bargain.Config, args)
    init, chunk = ppo_bargain.make_train(config, make_env(config))
    runner, chunk = jax.jit(init)(jax.random.key(config.seed)), jax.jit(chunk)
    for _ in range(config.num_updates):
        runner, _ = chunk(runner)
    single = np.concatenate([np.asarray(x, np.float64).ravel() for x in jax.tree_util.tree_leaves(runner.params)])
    np.testing.assert_allclose(p0, single, rtol=2e-4, atol=2e-5)
