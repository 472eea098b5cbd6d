"""``python -m data_scripts <dataset> --src DIR --out DIR``."""

from data_scripts.cli import main

raise SystemExit(main(prog="python -m data_scripts"))
