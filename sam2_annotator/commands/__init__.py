"""CLI subcommands, one module each (see :mod:`sam2_annotator.cli`)."""
