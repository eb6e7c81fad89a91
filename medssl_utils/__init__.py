"""medssl_utils: the package behind the reproduction of Anton et al. (J. Imaging 2022, 8(12):320)."""
__version__ = "0.1.0"
