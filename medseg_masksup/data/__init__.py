"""Data: the datalist schema and its splits, preprocessing, transforms, the embedded synthetic set."""
