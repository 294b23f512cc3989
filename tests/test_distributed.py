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
    import sys
    from pathlib import Path

    import jax
    import numpy as np

    import jaxmarl_lab as jl
    from algos import ippo, mappo, ppo_bargain
    from jaxmarl_lab.training import _shard_over_devices, make_env

    assert jax.device_count() == 4, jax.devices()
    out = Path(sys.argv[1])
    tiny = {
        "ppo_bargain": (ppo_bargain, ["--config", "configs/ppo.yaml", "--num-envs", "32", "--rollout", "8",
                                      "--total-timesteps", "768", "--updates-per-chunk", "3", "--minibatch-size",
                                      "64", "--eval-games", "40", "--eval-interval", "0"]),
        "ippo": (ippo, ["--config", "configs/ippo_mpe.yaml", "--num-envs", "8", "--rollout", "25",
                        "--total-timesteps", "600", "--updates-per-chunk", "3", "--eval-games", "16"]),
        "mappo": (mappo, ["--env", "bargain", "--num-envs", "16", "--rollout", "8", "--total-timesteps", "384",
                          "--updates-per-chunk", "3", "--eval-games", "16"]),
    }
    for name, (module, args) in tiny.items():
        params = []
        for devices in (1, 4):
            results = out / f"{name}_{devices}"
            assert module.main(args + ["--devices", str(devices), "--results-dir", str(results), "--quiet"]) == 0
            (run_dir,) = (results / name).iterdir()
            policy = jl.load_policy(run_dir)
            policies = policy if isinstance(policy, tuple) else (policy,)
            params.append([np.asarray(x) for p in policies for x in jax.tree_util.tree_leaves(p.params)])
        for one, four in zip(*params, strict=True):
            np.testing.assert_allclose(one, four, rtol=2e-4, atol=2e-5, err_msg=name)
        assert max(np.abs(a).max() for a in params[1]) > 0
        print(f"{name}: {len(params[0])} parameter arrays agree")

    # the runner really is split: env-batched leaves over 4 devices, parameters replicated
    config = ppo_bargain.Config(num_envs=32, rollout=8, total_timesteps=768, updates_per_chunk=3,
                                minibatch_size=64)
    env = make_env(config)
    init, chunk = ppo_bargain.make_train(config, env)
    place, train_chunk = _shard_over_devices(config, jax.jit(init), chunk, 4)
    runner = place(jax.jit(init)(jax.random.key(0)))
    runner, _ = train_chunk(runner)
    assert len(runner.obs.sharding.device_set) == 4 and not runner.obs.sharding.is_fully_replicated
    assert runner.obs.addressable_shards[0].data.shape[0] == 8
    leaf = jax.tree_util.tree_leaves(runner.params)[0]
    assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 4
    print("sharding ok")
''')


def test_four_devices_match_one(tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    for name in ("ppo_bargain", "ippo", "mappo"):
        assert f"{name}:" in proc.stdout
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


def test_two_processes_train_together_like_one_process_on_two_devices(tmp_path):
    """Two processes on 127.0.0.1 (one CPU device each) train one run through jax.distributed:
    they end with the same parameters, only process 0 writes results, and the parameters equal a
    single process on two devices with the same global batch and key."""
    args = ["--config", str(ROOT / "configs/ppo.yaml"), "--num-envs", "32", "--rollout", "8",
            "--total-timesteps", "768", "--updates-per-chunk", "3", "--minibatch-size", "64", "--eval-games", "40",
            "--eval-interval", "0", "--checkpoint-interval", "512", "--hidden-size", "32", "--quiet"]
    base = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    base.pop("XLA_FLAGS", None)
    port = _free_port()
    multi_dir = tmp_path / "multi"
    multi_dir.mkdir()
    workers = [subprocess.Popen(
        [sys.executable, "-c", WORKER, *args, "--results-dir", str(multi_dir), "--coordinator-address",
         f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
        cwd=ROOT, env=base, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = []
    try:
        for worker in workers:
            out, err = worker.communicate(timeout=600)
            outputs.append(out + err[-3000:])
            assert worker.returncode == 0, "\n".join(outputs)
    finally:
        for worker in workers:
            worker.kill()
    assert "process 0 of 2 devices 2 wrote True" in outputs[0], outputs[0]
    assert "process 1 of 2 devices 2 wrote False" in outputs[1], outputs[1]
    runs = list((multi_dir / "ppo_bargain").iterdir())
    assert len(runs) == 1  # process 1 wrote nothing into the results directory
    assert (runs[0] / "final_eval.json").exists() and (runs[0] / "checkpoints" / "final").is_dir()
    assert list((runs[0] / "checkpoints").glob("step_*"))
    p0, p1 = np.load(multi_dir / "params_0.npy"), np.load(multi_dir / "params_1.npy")
    np.testing.assert_array_equal(p0, p1)

    single_dir = tmp_path / "single"
    single_dir.mkdir()
    env = {**base, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    proc = subprocess.run([sys.executable, "-c", WORKER, *args, "--results-dir", str(single_dir), "--devices", "2"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(p0, np.load(single_dir / "params_0.npy"), rtol=2e-4, atol=2e-5)
