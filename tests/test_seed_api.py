"""One seed API for every noisy layer (convis.noise.Seeded): ``seed=`` at construction, ``seed(n)``/``set_seed(n)``,
``seed_value``, with the same meaning for the retina, its ganglion spiking layers and the spiking neurons."""
import numpy as np
import pytest
import torch

from convis.filters import spiking
from convis.filters.retina import GanglionSpiking
from convis.noise import Seeded
from convis.retina import Retina


def ganglion(seed=None):
    layer = GanglionSpiking(seed=seed)
    layer.noise_sigma.set(0.3)
    layer.refr_sigma.set(0.002)
    return layer


def lif(seed=None):
    layer = spiking.RefractoryLeakyIntegrateAndFireNeuron(seed=seed)
    layer.noise_sigma.set(0.3)
    layer.refr_sigma.set(0.002)
    return layer


NOISY = {'GanglionSpiking': (ganglion, 90.0),
         'RefractoryLIF': (lif, 1.2),
         'Poisson': (lambda seed=None: spiking.Poisson(seed=seed), 150.0),
         'Retina': (lambda seed=None: Retina(seed=seed), None)}


def stimulus(level):
    rng = np.random.RandomState(0)
    if level is None:
        return 255 * rng.rand(1, 1, 40, 8, 8)
    return level * (0.5 + rng.rand(1, 1, 40, 6, 5))


def spikes(layer, x, dt=40):
    out = layer.run(x, dt=dt)
    return out[0]


@pytest.mark.parametrize('name', sorted(NOISY))
def test_the_seed_api_means_the_same_for_every_noisy_layer(name):
    make, level = NOISY[name]
    x = stimulus(level)
    a = make(seed=5)
    assert isinstance(a, Seeded) and a.seed_value == 5
    first = spikes(a, x)
    assert float(first.sum()) > 0
    assert torch.equal(spikes(make(seed=5), x, dt=13), first)          # same seed, any chunking: the same spikes
    assert not torch.equal(spikes(make(seed=6), x), first)             # another seed: other spikes
    b = make(seed=6)
    assert b.seed(5) is b and b.seed_value == 5                        # seed(n) returns the layer
    assert torch.equal(spikes(b, x), first)
    a.clear_state()                                                    # clear_state keeps the seed
    assert torch.equal(spikes(a, x), first)
    a.push_state()
    again = spikes(a, x)
    a.pop_state()                                                      # the noise's position is a state
    assert torch.equal(spikes(a, x), again)
    assert a.set_seed(6) is a and a.seed_value == 6                    # set_seed is seed
    a.clear_state()
    assert torch.equal(spikes(a, x), spikes(make(seed=6), x))


@pytest.mark.parametrize('name', sorted(NOISY))
def test_no_seed_draws_one_from_the_global_generator(name):
    make, _ = NOISY[name]
    torch.manual_seed(11)
    first = make().seed_value
    torch.manual_seed(11)
    assert make().seed_value == first
    layer = make(seed=3)
    torch.manual_seed(12)
    assert layer.seed() is layer and layer.seed_value != 3 and 0 <= layer.seed_value < 2 ** 63


@pytest.mark.parametrize('name', sorted(NOISY))
@pytest.mark.parametrize('bad', [-1, 1.5, True, 2 ** 63, '3'])
def test_bad_seeds_raise(name, bad):
    make, _ = NOISY[name]
    with pytest.raises(ValueError, match='seed must be a non-negative integer'):
        make(seed=bad)
    with pytest.raises(ValueError, match='seed must be a non-negative integer'):
        make(seed=1).seed(bad)


def test_the_retina_seeds_its_ganglion_layers():
    r = Retina(seed=10)
    assert [r.gang_0_spikes.seed_value, r.gang_1_spikes.seed_value] == [10, 10 + 7919]
    r.seed(2 ** 63 - 1)
    assert r.gang_1_spikes.seed_value == (2 ** 63 - 1 + 7919) % 2 ** 63
