"""Loaders for the paper's eight real datasets, one module per publisher layout (issue 3).

Importing this package registers: chexpert, chestx14, montgomery, shenzhen, bach, eyepacs,
ichallenge_amd, ichallenge_pm. Each reads the files exactly as the publisher ships them under
``data_root/<spec.folder>``; nothing is converted or copied.
"""
from . import bach, chestx14, chexpert, eyepacs, ichallenge, nlm_tb  # noqa: F401  (registration)

NAMES = ("chexpert", "chestx14", "montgomery", "shenzhen", "bach", "eyepacs", "ichallenge_amd", "ichallenge_pm")
