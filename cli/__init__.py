"""The `tfadmm` command line (installed as the `tfadmm_cli` package)."""
