import os

import torch

# Two cores on CI: keep torch from oversubscribing when tests run beside the notebooks.
torch.set_num_threads(min(2, os.cpu_count() or 1))
