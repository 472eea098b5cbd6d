"""Training wing: recipe pieces the bundle assembles (augmentation, learning-rate schedule)."""
