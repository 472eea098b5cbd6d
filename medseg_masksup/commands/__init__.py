"""One module per ``medseg-masksup`` command, each exposing ``main(argv) -> int``."""
