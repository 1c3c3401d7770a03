"""Counter-based normal numbers (convis.noise): distribution, independence, chunking, compiled vs torch."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

import convis
from convis import noise


@pytest.fixture
def compiled():
    if noise._native() is None:
        pytest.fail('the generator did not compile: a C compiler (cc) is needed for the test run')


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_the_numbers_are_standard_normal(compiled, dtype):
    z = noise.counter_normals(noise.seed_key(7), 0, 100, 20000, dtype=dtype).double().numpy().ravel()
    assert z.dtype == np.float64 and z.size == 2000000
    se = 1 / math.sqrt(z.size)
    assert abs(z.mean()) < 4 * se
    assert abs(z.std() - 1) < 4 * se
    assert abs(stats.skew(z)) < 4 * math.sqrt(6 / z.size)
    assert abs(stats.kurtosis(z)) < 4 * math.sqrt(24 / z.size)
    assert stats.kstest(z, 'norm').pvalue > 1e-3
    # tails: beyond 3 and 4 standard deviations as often as they should be
    for k in (3.0, 4.0):
        expected = z.size * math.erfc(k / math.sqrt(2))
        assert abs((np.abs(z) > k).sum() - expected) < 5 * math.sqrt(expected)
    assert np.abs(z).max() < (5.8 if dtype == torch.float32 else 6.7)


def test_neighbours_streams_and_seeds_are_uncorrelated(compiled):
    key = noise.seed_key(1)
    z = noise.counter_normals(key, 0, 200, 5000, dtype=torch.float64).numpy()
    pairs = {'next step': (z[:-1], z[1:]), 'next cell': (z[:, :-1], z[:, 1:]),
             'other stream': (z, noise.counter_normals(key, 0, 200, 5000, stream=1, dtype=torch.float64).numpy()),
             'other seed': (z, noise.counter_normals(noise.seed_key(2), 0, 200, 5000, dtype=torch.float64).numpy())}
    for what, (a, b) in pairs.items():
        r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert abs(r) < 4 / math.sqrt(a.size), what
    # and the squares (a dependence that leaves the correlation at 0)
    a, b = pairs['next cell']
    assert abs(np.corrcoef(a.ravel() ** 2, b.ravel() ** 2)[0, 1]) < 4 / math.sqrt(a.size)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_each_number_depends_only_on_its_coordinates(compiled, dtype):
    key = noise.seed_key(3)
    whole = noise.counter_normals(key, 100, 50, 300, stream=2, scale=0.5, dtype=dtype)
    part = noise.counter_normals(key, 117, 20, 120, stream=2, scale=0.5, dtype=dtype)
    assert torch.equal(part, whole[17:37, :120])
    assert torch.equal(noise.counter_normals(key, 100, 50, 300, stream=2, scale=1.0, dtype=dtype) * 0.5, whole)


def test_compiled_and_torch_numbers_agree(compiled):
    key = noise.seed_key(11)
    a = noise.counter_normals(key, 5, 40, 3000, stream=1, scale=0.3, dtype=torch.float32)
    b = noise.counter_normals(key, 5, 40, 3000, stream=1, scale=0.3, dtype=torch.float32, compiled=False)
    assert torch.equal(a, b)
    a = noise.counter_normals(key, 5, 40, 3000, dtype=torch.float64)
    b = noise.counter_normals(key, 5, 40, 3000, dtype=torch.float64, compiled=False)
    ulp = torch.finfo(torch.float64).eps * a.abs().clamp(min=1e-300)
    assert float(((a - b).abs() / ulp).max()) <= 2.0
    assert float((a != b).double().mean()) < 0.05


def test_the_torch_hash_is_the_64_bit_one():
    """The int64 tensor arithmetic wraps like unsigned 64-bit numbers (checked against Python integers)."""
    values = [0, 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 0x0123456789ABCDEF, 0xFEDCBA9876543210]
    as_signed = torch.tensor([noise._signed(v) for v in values], dtype=torch.int64)
    mixed = noise._mix_tensor(as_signed).tolist()
    assert [m & noise._MASK for m in mixed] == [noise._mix(v) for v in values]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match='stream'):
        noise.counter_normals(1, 0, 2, 2, stream=4)
    with pytest.raises(ValueError, match='float32 or float64'):
        noise.counter_normals(1, 0, 2, 2, dtype=torch.float16)


def test_ganglion_noise_does_not_depend_on_chunks_or_pieces_and_follows_the_state():
    x = 60 + 20 * np.random.RandomState(0).rand(130, 6, 7)
    layers = [convis.filters.retina.GanglionSpiking(seed=4) for _ in range(3)]
    whole = layers[0].run(x, dt=130)[0]
    assert float(whole.sum()) > 50
    assert torch.equal(layers[1].run(x, dt=9)[0], whole)
    # the seed travels with the state: another layer continues the same noise
    first = layers[2].run(x[:60], dt=60)[0]
    other = convis.filters.retina.GanglionSpiking(seed=99)
    other.set_state(layers[2].get_state())
    assert torch.equal(torch.cat([first, other.run(x[60:], dt=70)[0]], dim=2), whole)
    # a different seed gives different spikes
    assert not torch.equal(convis.filters.retina.GanglionSpiking(seed=5).run(x, dt=130)[0], whole)


REFERENCE = [(7, 0, 30, 500, 0, 1.0), (123456789, 1000, 20, 333, 3, 0.37)]
"""(seed, first step, steps, cells, stream, scale) of the numbers saved in tests/data/compiled_reference.npz,
written by the C loops convis compiled before its loops moved to numba (revision e08456f)."""


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('compiled', [None, False])
def test_the_numbers_are_bit_for_bit_those_of_the_earlier_c_loop(dtype, compiled):
    import os
    saved = np.load(os.path.join(os.path.dirname(__file__), 'data', 'compiled_reference.npz'))
    for k, (seed, k0, n_t, m, stream, scale) in enumerate(REFERENCE):
        z = noise.counter_normals(noise.seed_key(seed), k0, n_t, m, stream, scale, dtype, compiled=compiled).numpy()
        ref = saved['normals_%s_%d' % ('f32' if dtype == torch.float32 else 'f64', k)]
        if compiled is None or dtype == torch.float32:
            assert np.array_equal(z, ref)
        else:       # torch's float64 square root may differ by one unit in the last place (module docstring)
            assert np.abs(z - ref).max() <= 2 * np.finfo(np.float64).eps * np.abs(ref).max()
