"""--sweep: a grid of hyperparameters x seeds vmapped into one program; each slot equals its own run."""

import json
from pathlib import Path

import numpy as np
import pytest

import jaxmarl_lab as jl
from algos import ppo_bargain
from jaxmarl_lab.sweep import parse_sweep, slot_values

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--config", str(ROOT / "configs/ppo.yaml"), "--num-envs", "32", "--rollout", "8", "--total-timesteps", "512",
        "--updates-per-chunk", "2", "--minibatch-size", "64", "--eval-games", "64", "--eval-interval", "0",
        "--checkpoint-interval", "0", "--quiet", "--hidden-size", "32"]


def test_parse_sweep_grid_and_errors():
    combos = parse_sweep(["lr=1e-4,3e-4", "ent_coef=0,0.01,0.02"], ppo_bargain.Config)
    assert len(combos) == 6 and combos[0] == {"lr": 1e-4, "ent_coef": 0.0} and combos[-1]["ent_coef"] == 0.02
    values = slot_values(combos, 2)
    assert values["lr"].shape == (12,) and values["lr"][:4].tolist() == pytest.approx([1e-4] * 4)
    for bad, match in ((["lr"], "NAME=V1"), (["nope=1"], "not a field"), (["num_envs=8,16"], "only float"),
                       (["lr=a,b"], "numbers"), (["lr=1", "lr=2"], "twice")):
        with pytest.raises(ValueError, match=match):
            parse_sweep(bad, ppo_bargain.Config)


def test_sweep_slots_equal_separate_runs(tmp_path):
    """2 learning rates x 2 seeds in one program; each slot's parameters equal a plain run with that
    learning rate and seed (vmap changes nothing but float reassociation)."""
    sweep_dir = tmp_path / "sweep"
    assert ppo_bargain.main(TINY + ["--results-dir", str(sweep_dir), "--num-seeds", "2", "--sweep", "lr=1e-3,3e-3",
                                    "--sweep", "clip=0.2"]) == 0
    (run_dir,) = (sweep_dir / "ppo_bargain").iterdir()
    results = json.loads((run_dir / "sweep_results.json").read_text())
    assert [r["label"] for r in results["combinations"]] == ["lr=0.001 clip=0.2", "lr=0.003 clip=0.2"]
    assert all(len(r["per_seed"]) == 2 and np.isfinite(r["mean"]) for r in results["combinations"])
    assert jl.Run(run_dir).metadata["sweep"]["seeds_per_combination"] == 2
    header = (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert "loss/seed3" in header or "total_loss/seed3" in header or "/seed3" in header
    for slot, (lr, seed_index) in enumerate([(1e-3, 0), (1e-3, 1), (3e-3, 0), (3e-3, 1)]):
        if slot != 2:  # the third slot (second rate, first seed) checks both the rate and the seed mapping
            continue
        single_dir = tmp_path / f"single{slot}"
        assert ppo_bargain.main(TINY + ["--results-dir", str(single_dir), "--num-seeds", "2", "--lr", str(lr)]) == 0
        (single_run,) = (single_dir / "ppo_bargain").iterdir()
        swept = jl.load_policy(run_dir, seed_index=slot).params
        alone = jl.load_policy(single_run, seed_index=seed_index).params
        import jax

        for a, b in zip(jax.tree_util.tree_leaves(swept), jax.tree_util.tree_leaves(alone), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)


def test_sweep_rejects_bad_fields(tmp_path, capsys):
    assert ppo_bargain.main(TINY + ["--results-dir", str(tmp_path), "--sweep", "num_envs=8,16"]) == 2
    assert "only float fields" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "sweeps").glob("*.yaml")), ids=lambda p: p.stem)
def test_wandb_sweep_files_name_real_options(path):
    """Every swept parameter is a Config field of the sweep's program, and the command line wandb
    builds (``--name=value``, after the fixed arguments) parses."""
    import importlib

    import yaml

    from jaxmarl_lab.config import parse_args

    sweep = yaml.safe_load(path.read_text())
    assert sweep["method"] in ("grid", "random", "bayes")
    assert sweep["metric"]["name"].startswith("eval/")
    module = importlib.import_module("algos." + Path(sweep["program"]).stem)
    fixed = [a for a in sweep["command"] if not a.startswith("${") and a != "python"]
    assert fixed[:2] == ["--config", fixed[1]] and (ROOT / fixed[1]).is_file()
    wandb_args = []
    for name, spec in sweep["parameters"].items():
        value = spec["values"][0] if "values" in spec else spec["min"]
        wandb_args.append(f"--{name}={value}")
    config, options, explicit = parse_args(module.Config, ["--config", str(ROOT / fixed[1]), *fixed[2:], *wandb_args])
    assert options.wandb is True and set(sweep["parameters"]) <= explicit | {"seed"}
    for name, spec in sweep["parameters"].items():
        expected = spec["values"][0] if "values" in spec else spec["min"]
        assert getattr(config, name) == pytest.approx(expected), name


TINY_SET = ["--set", "num_envs=16", "--set", "rollout=8", "--set", "total_timesteps=256", "--set", "eval_games=32",
            "--set", "eval_interval=0", "--set", "updates_per_chunk=2", "--set", "checkpoint_interval=0",
            "--set", "hidden_size=16"]


def test_sweep_cli_grid_and_bayes_land_in_the_results_index(tmp_path, capsys):
    from jaxmarl_lab.cli import main

    root = str(tmp_path / "results")
    code = main(["sweep", "--algorithm", "ppo_bargain", "--param", "lr=1e-3", "--param", "clip=0.2", "--method",
                 "grid", "--seeds", "0", "1", *TINY_SET, "--set", "minibatch_size=64", "--results-dir", root,
                 "--name", "grid"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| 1 | ppo_bargain | lr=0.001 clip=0.2 |" in out
    (sweep_file,) = (tmp_path / "results" / "sweeps").glob("grid_*.json")
    data = json.loads(sweep_file.read_text())
    (trial,) = data["trials"]
    assert len(trial["runs"]) == 2 and trial["mean"] == pytest.approx(np.mean(trial["scores"]))
    assert trial["std"] == pytest.approx(np.std(trial["scores"], ddof=1))
    index = jl.ResultsManager(root).list_runs()
    assert len(index) == 2 and all(any(tag.startswith("sweep:grid_") for tag in e.get("tags", [])) for e in index)
    code = main(["sweep", "--algorithm", "ppo_bargain", "--param", "lr=1e-4:1e-2:log", "--param", "clip=0.1,0.3",
                 "--method", "bayes", "--num-trials", "2", "--seeds", "3", *TINY_SET, "--set", "minibatch_size=64",
                 "--results-dir", root, "--name", "bayes"])
    assert code == 0
    (bayes_file,) = (tmp_path / "results" / "sweeps").glob("bayes_*.json")
    trials = json.loads(bayes_file.read_text())["trials"]
    assert len(trials) == 2 and all(1e-4 <= t["values"]["lr"] <= 1e-2 and t["values"]["clip"] in (0.1, 0.3)
                                    for t in trials)
    assert main(["sweep", "--algorithm", "ppo_bargain", "--param", "lr=1e-4:1e-2", "--method", "grid",
                 "--results-dir", root]) == 2  # a grid needs values


def test_sweep_cli_compare_algorithms(tmp_path, capsys):
    from jaxmarl_lab.cli import main

    code = main(["sweep", "--compare-algorithms", "ppo_bargain", "mappo", "--seeds", "0", *TINY_SET,
                 "--set", "minibatch_size=64", "--set", "env=bargain", "--results-dir", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "ppo_bargain | defaults" in out or "ppo_bargain |" in out
    assert "mappo |" in out and "selfplay_welfare" in out
