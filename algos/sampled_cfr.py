"""``sampled_cfr``: the original framework's name for its CFR trainer, here real Deep CFR.

    python algos/sampled_cfr.py --config configs/sampled_cfr.yaml   # bargaining, as in the original

Everything (rules, options, results) is ``algos/deep_cfr.py``; runs are recorded as ``sampled_cfr``.
"""

from __future__ import annotations

import sys

from algos.deep_cfr import DRIVER_KWARGS, ENV_DEFAULTS, Config, make_policy, make_train
from algos.deep_cfr import main as _main

__all__ = ["Config", "DRIVER_KWARGS", "ENV_DEFAULTS", "make_policy", "make_train", "main"]


def main(argv: list[str] | None = None) -> int:
    return _main(argv, algorithm="sampled_cfr")


if __name__ == "__main__":
    sys.exit(main())
