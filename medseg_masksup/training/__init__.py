"""Training: helpers the bundle calls, settings checks, checkpoints and resume, report, tracking, DDP, and the
recipe pieces the bundle assembles (augmentation, learning-rate schedule)."""
