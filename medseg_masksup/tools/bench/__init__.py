"""``medseg-masksup bench``: training / inference throughput and overheads."""
