"""Loaders for the paper's eight real datasets, one module per publisher layout (issue 3)."""
