import os

import torch

# Two cores on CI: keep torch from oversubscribing when tests run beside the notebooks.
torch.set_num_threads(min(2, os.cpu_count() or 1))


import pytest  # noqa: E402


@pytest.fixture
def one_thread():
    """Tiny models: one thread is faster than two fighting over small ops, and leaves a core free."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
