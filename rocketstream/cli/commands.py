"""The command registry: each entry adds one subcommand (with its ``handler``) to the parser, one
module per command group."""

from __future__ import annotations

from . import demo, features, info, ingest, predictions, train

REGISTRY = [*info.REGISTER, demo.register, ingest.register, *features.REGISTER, *train.REGISTER,
            *predictions.REGISTER]
