"""Environments of jaxmarl_lab, one module each; build them with ``jaxmarl_lab.make(name)``."""
