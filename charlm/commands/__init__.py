"""CLI subcommands, one module each; see charlm.cli."""
