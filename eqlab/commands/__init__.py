"""The ``eqlab`` commands that need only the engine (the CLI entry point adds ``serve`` and ``demo``)."""
