"""Test settings shared by every test: no progress bars, a fixed seed, the Agg backend."""
import os

os.environ.setdefault('MPLBACKEND', 'Agg')

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import convis  # noqa: E402

convis.base.show_progress = False


@pytest.fixture(autouse=True)
def _seed_and_defaults():
    """Each test starts from the default resolution and a fixed seed."""
    np.random.seed(0)
    torch.manual_seed(0)
    convis.variables.reset_default_resolution()
    yield
    convis.variables.reset_default_resolution()



@pytest.fixture
def one_torch_thread():
    """Runs a test on one thread (torch's and the compiled loops'): small float64 fits are many times faster
    on one thread than on several shared cores."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
