"""Training: helpers the bundle calls, settings checks, checkpoints and resume, report, tracking, DDP."""
