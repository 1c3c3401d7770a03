"""A user's own compiled loop (convis.compiled): an adapting leaky integrate-and-fire layer whose C loop
(tests/data/adapting_lif.c) is built and called the way convis builds its own, held against its torch loop."""
import os
import shutil
import stat

import pytest
import torch

import convis
from convis import compiled, native

C_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'adapting_lif.c')
DECLARATIONS = '''
void adapting_lif_f64(int64_t P, int64_t T, int64_t Q, const double *input, double *v, double *a,
                      double *spikes, double em, double ea, double v_rest, double v_th, double v_reset, double b);
'''


class AdaptingLIF(convis.Layer):
    """An adapting leaky integrate-and-fire neuron at every pixel, stepped with exponential Euler.

    .. math::

        \\tau_m \\frac{dv}{dt} = -(v - v_{rest}) - a + I, \\qquad \\tau_a \\frac{da}{dt} = -a, \\qquad
        v \\geq v_{th} \\Rightarrow \\text{spike}, v \\leftarrow v_{reset}, a \\leftarrow a + b

    Over a step of ``dt`` seconds ``I`` and ``a`` are held at their values from its start:
    ``v <- v_inf + (v - v_inf) exp(-dt/tau_m)`` with ``v_inf = v_rest - a + I``, ``a <- a exp(-dt/tau_a)``, then
    the threshold.  The input ``I`` (current times membrane resistance), ``v`` and ``a`` are in mV; the output
    is the spikes (0 or 1 per step), with the input's shape.  States ``v`` and ``a`` (``[batch, channel, x, y]``)
    start at ``v_rest`` and 0.  ``library`` is the :func:`convis.compiled.load` of ``adapting_lif.c``: its loop
    runs float64 CPU input without autograd; otherwise (or with ``library=None``) the torch loop runs.
    """

    def __init__(self, library=None):
        super().__init__()
        self.library = library
        self.tau_m = convis.Parameter(0.02, doc='membrane time constant', unit='s', bounds=(1e-5, None))
        self.tau_a = convis.Parameter(0.2, doc='time constant of the adaptation current', unit='s',
                                      bounds=(1e-5, None))
        self.v_rest = convis.Parameter(-70.0, doc='resting potential', unit='mV')
        self.v_th = convis.Parameter(-50.0, doc='threshold', unit='mV')
        self.v_reset = convis.Parameter(-65.0, doc='potential after a spike', unit='mV')
        self.b = convis.Parameter(2.0, doc='increment of the adaptation current per spike', unit='mV')
        self.register_state('v', None)
        self.register_state('a', None)

    def forward(self, x):
        shape = x[:, :, 0].shape
        if self.v is None or self.v.shape != shape:
            self.v = torch.full(shape, float(self.v_rest), dtype=x.dtype, device=x.device)
            self.a = torch.zeros(shape, dtype=x.dtype, device=x.device)
        dt = self.resolution.dt
        em = torch.exp(-dt / self.tau_m.to(x.dtype))
        ea = torch.exp(-dt / self.tau_a.to(x.dtype))
        fast = (self.library is not None and x.device.type == 'cpu' and x.dtype == torch.float64
                and not torch.is_grad_enabled())
        return (self.compiled_loop if fast else self.torch_loop)(x, em, ea)

    def _constants(self, x):
        return [p.to(x.dtype) for p in (self.v_rest, self.v_th, self.v_reset, self.b)]

    def torch_loop(self, x, em, ea):
        v_rest, v_th, v_reset, b = self._constants(x)
        v, a, spikes = self.v, self.a, []
        for k in range(x.shape[2]):
            v_inf = (v_rest - a) + x[:, :, k]
            v = v_inf + (v - v_inf) * em
            a = a * ea
            spike = v >= v_th
            v = torch.where(spike, v_reset, v)
            a = torch.where(spike, a + b, a)
            spikes.append(spike)
        self.v, self.a = v, a
        return torch.stack(spikes, dim=2).to(x.dtype)

    def compiled_loop(self, x, em, ea):
        n, c, t, h, w = x.shape
        inp = x.detach().contiguous().reshape(n * c, t, h * w)
        v = self.v.detach().reshape(n * c, h * w).clone()
        a = self.a.detach().reshape(n * c, h * w).clone()
        spikes = torch.empty_like(inp)
        p = compiled.pointer
        self.library.adapting_lif_f64(n * c, t, h * w, p(inp), p(v), p(a), p(spikes), float(em), float(ea),
                                      *[float(q) for q in self._constants(x)])
        self.v, self.a = v.reshape(n, c, h, w), a.reshape(n, c, h, w)
        return spikes.reshape(n, c, t, h, w)


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """An empty cache folder; compiling allowed; no library opened yet."""
    folder = tmp_path / 'cache'
    monkeypatch.setenv('CONVIS_CACHE_DIR', str(folder))
    monkeypatch.delenv('CONVIS_NO_COMPILE', raising=False)
    monkeypatch.setattr(compiled, '_LIBRARIES', {})
    monkeypatch.setattr(native, '_WARNED', set())
    return folder


@pytest.fixture
def lib(cache):
    library = compiled.load('adapting_lif', C_FILE, declarations=DECLARATIONS)
    if library is None:
        pytest.fail('adapting_lif.c did not compile: a C compiler (cc) is needed for the test run')
    return library


class Counting:
    """The library, counting the calls of its functions."""

    def __init__(self, library):
        self.library, self.calls = library, 0

    def __getattr__(self, name):
        self.calls += 1
        return getattr(self.library, name)


def stimulus(t=400, seed=3):
    """Input in mV: around the level that fires (v_inf = -70 + I crosses the threshold -50 at I = 20)."""
    gen = torch.Generator().manual_seed(seed)
    return 12.0 + 20.0 * torch.rand(2, 2, t, 5, 7, generator=gen, dtype=torch.float64)


def run(layer, x, dt):
    layer.clear_state()
    spikes = layer.run(x, dt=dt)[0]
    return spikes, layer.v.clone(), layer.a.clone()


def test_the_compiled_loop_equals_the_torch_loop(lib):
    x = stimulus()
    counting = Counting(lib)
    layer = AdaptingLIF(counting).double()
    fast = run(layer, x, 400)
    assert counting.calls == 1
    layer.library = None
    slow = run(layer, x, 400)
    assert counting.calls == 1
    assert torch.equal(fast[0], slow[0])
    assert 0.01 < float(slow[0].mean()) < 0.3                   # it fires, and not at every step
    assert float(slow[2].max()) > 1.0                            # the adaptation grew
    for f, s in zip(fast[1:], slow[1:]):
        assert float((f - s).abs().max()) <= 1e-12 * float(s.abs().max())


def test_adaptation_lengthens_the_intervals(lib):
    """A constant input: each spike raises a, so the intervals between spikes grow."""
    layer = AdaptingLIF(lib).double()
    spikes = layer.run(torch.full((1, 1, 600, 1, 1), 30.0, dtype=torch.float64), dt=600)[0].flatten()
    times = spikes.nonzero().flatten()
    intervals = times[1:] - times[:-1]
    assert len(intervals) > 5 and int(intervals[-1]) > int(intervals[0])


@pytest.mark.parametrize('with_library', [True, False])
def test_chunked_equals_whole(lib, with_library):
    x = stimulus(t=120)
    layer = AdaptingLIF(lib if with_library else None).double()
    whole = run(layer, x, 120)
    for dt in (1, 7, 50):
        chunked = run(layer, x, dt)
        assert all(torch.equal(c, w) for c, w in zip(chunked, whole)), dt


def test_wrong_arguments_raise_type_error(lib):
    x = torch.zeros(1, 4, 3, dtype=torch.float64)
    v, a, s = torch.zeros(1, 3, dtype=torch.float64), torch.zeros(1, 3, dtype=torch.float64), torch.empty_like(x)
    p = compiled.pointer
    good = [1, 4, 3, p(x), p(v), p(a), p(s), 0.9, 0.99, -70.0, -50.0, -65.0, 2.0]
    lib.adapting_lif_f64(*good)
    with pytest.raises(TypeError, match='13 arguments'):
        lib.adapting_lif_f64(*good[:5])
    with pytest.raises(TypeError, match='float'):
        lib.adapting_lif_f64(*good[:4], p(v.float()), *good[5:])      # a float * for a double *
    with pytest.raises(TypeError):
        lib.adapting_lif_f64(*good[:4], v, *good[5:])                  # a tensor, not a pointer
    with pytest.raises(TypeError):
        lib.adapting_lif_f64(*good[:7], 'fast', *good[8:])             # text for a double
    with pytest.raises(AttributeError, match='adapting_lif_f64'):
        lib.adapting_lif_f32


def test_missing_files_and_bad_requests(cache, tmp_path):
    with pytest.raises(FileNotFoundError, match='no C file at .*nowhere.c'):
        compiled.load('nowhere', str(tmp_path / 'nowhere.c'), declarations=DECLARATIONS)
    with pytest.raises(FileNotFoundError, match='no header at'):
        compiled.load('adapting_lif', C_FILE, header=str(tmp_path / 'missing.h'))
    with pytest.raises(TypeError, match='exactly one'):
        compiled.load('adapting_lif', C_FILE)
    with pytest.raises(TypeError, match='exactly one'):
        compiled.load('adapting_lif', C_FILE, declarations=DECLARATIONS, header=C_FILE)
    with pytest.raises(ValueError, match='letters, digits'):
        compiled.load('adapting lif', C_FILE, declarations=DECLARATIONS)
    with pytest.raises(ValueError, match='cannot be read'):
        compiled.load('adapting_lif', C_FILE, declarations='void adapting_lif_f64(int64_t P')


def test_a_compile_error_carries_the_compilers_message(cache, tmp_path):
    """The C file with one name misspelt: the message names the file, the line and the name."""
    with open(C_FILE) as f:
        lines = f.read().splitlines(True)
    line = next(i for i, text in enumerate(lines) if 'out[q] =' in text)
    lines[line] = lines[line].replace('out[q]', 'output[q]')
    bad = tmp_path / 'misspelt.c'
    bad.write_text(''.join(lines))
    with pytest.raises(compiled.CompileError) as info:
        compiled.load('misspelt', str(bad), declarations=DECLARATIONS)
    message = str(info.value)
    assert '%s:%d' % (bad, line + 1) in message and 'error' in message
    assert 'output' in message and 'undeclared' in message
    assert '.build-' not in message                  # the file names point at the user's folder
    assert not [f for f in os.listdir(cache) if not f.startswith('.')]


def test_definitions_must_match_their_declarations(cache, tmp_path):
    with pytest.raises(compiled.CompileError, match='conflicting types'):
        compiled.load('adapting_lif', C_FILE, declarations=DECLARATIONS.replace('int64_t Q', 'int32_t Q'))
    with pytest.raises(compiled.CompileError, match='not defined.*adapting_lif_f32'):
        compiled.load('adapting_lif', C_FILE, declarations=DECLARATIONS + 'void adapting_lif_f32(int64_t n);')


def test_a_header_file_declares_the_functions(cache, tmp_path):
    header = tmp_path / 'adapting_lif.h'
    header.write_text('#include <stdint.h>\n' + DECLARATIONS)
    library = compiled.load('adapting_lif', C_FILE, header=str(header))
    assert library.functions == ('adapting_lif_f64',)
    x = stimulus(t=60)
    assert torch.equal(run(AdaptingLIF(library).double(), x, 60)[0], run(AdaptingLIF().double(), x, 60)[0])


def test_no_compile_gives_none_and_the_layer_runs_its_torch_loop(cache, monkeypatch):
    x = stimulus(t=100)
    reference = run(AdaptingLIF(compiled.load('adapting_lif', C_FILE, declarations=DECLARATIONS)).double(), x, 30)
    monkeypatch.setenv('CONVIS_NO_COMPILE', '1')
    monkeypatch.setattr(compiled, '_LIBRARIES', {})
    library = compiled.load('adapting_lif', C_FILE, declarations=DECLARATIONS)
    assert library is None
    spikes = run(AdaptingLIF(library).double(), x, 30)[0]
    assert float(spikes.sum()) > 0 and torch.equal(spikes, reference[0])


def test_the_cached_library_is_reused(lib, monkeypatch, tmp_path):
    path = lib.path
    assert os.path.dirname(path) == native.cache_dir()
    mtime = os.stat(path).st_mtime_ns
    builds = []
    build = native._build
    monkeypatch.setattr(native, '_build', lambda *a, **k: (builds.append(a[0]), build(*a, **k)))
    assert compiled.load('adapting_lif', C_FILE, declarations=DECLARATIONS) is lib      # same process
    monkeypatch.setattr(compiled, '_LIBRARIES', {})                                     # as in a new process
    again = compiled.load('adapting_lif', C_FILE, declarations=DECLARATIONS)
    assert again is not lib and again.path == path and builds == []
    assert os.stat(path).st_mtime_ns == mtime
    changed = tmp_path / 'adapting_lif.c'                                               # another source: built
    shutil.copy(C_FILE, changed)
    with open(changed, 'a') as f:
        f.write('/* changed */\n')
    other = compiled.load('adapting_lif', str(changed), declarations=DECLARATIONS)
    assert builds == ['adapting_lif'] and other.path != path


def test_an_unsafe_cached_library_is_refused_and_rebuilt(lib, monkeypatch):
    os.chmod(lib.path, 0o775)
    monkeypatch.setattr(compiled, '_LIBRARIES', {})
    with pytest.warns(RuntimeWarning, match='cached library .* is writable by group'):
        again = compiled.load('adapting_lif', C_FILE, declarations=DECLARATIONS)
    assert again.path == lib.path and stat.S_IMODE(os.stat(lib.path).st_mode) & 0o022 == 0
