"""The ``sweeper`` command line (click). Only click is imported up front: each command imports
what it needs, and the read-only ones (``list``, ``status``, ``show``, ``export``, ``logs``,
``plot``, ``stop``, ``sync``, ``validate``, ``plan``, ``convert``) never import Ray."""

from sweeper.cli._main import main

__all__ = ["main"]
