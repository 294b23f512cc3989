"""Single-file, runnable training programs (``python algos/<name>.py --config configs/<name>.yaml``)."""
