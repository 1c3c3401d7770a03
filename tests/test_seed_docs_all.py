"""Every code example of the user documentation runs unchanged and gives sensible results.

The examples of the original toolbox's documentation (usage guide, examples page, PyTorch basics and
extensions, API reference) are written out here, grouped by section, as a user types them.  Examples with a
test of their own are not repeated here:
``test_seed_docs_ln.py`` (optimizers, the fitting quickstart, the LN model, ``MyMemoryConv``, the
``Layer`` subclass, ``SampleGenerator``), ``test_seed_docs_spikes.py`` (the spiking quickstart),
``test_seed_docs_runner.py`` (Runner, ``ImageSequence``, ``VideoReader``, ``InrImageStreamWriter``)
and ``test_seed_docs_plots.py`` (plots, animations, ``OrthographicWrapper``).

The only changes made before running an example: without a GPU, ``.cuda()`` is dropped (and a
``cuda=True`` argument is shown to fail clearly); Python 2 ``print x`` statements become
``print(x)``; names the documents leave undefined (``some_short_input``, ``x, y``, the XML path,
``convis2``) are given values.  ``create_context_O``'s example is Theano code (``T.iscalar``) and has
no counterpart.  Expression statements are evaluated as at a prompt, so their values can be checked.
"""
import ast
import io
import math
import re
import textwrap
from contextlib import redirect_stdout

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import convis
from helpers import reference_path

matplotlib.use('Agg')
CUDA = torch.cuda.is_available()
PRIMATE_XML = reference_path('virtualretina', 'configs', 'EXAMPLE_primate_ParvoMagno.xml')


def example(code):
    """The example ``code`` as it runs: dedented, without the ``>>>`` prompts."""
    code = textwrap.dedent(code).strip('\n')
    return re.sub(r'^(\s*)>>> ?', r'\1', code, flags=re.M)


def without_cuda(code):
    """Drops ``.cuda()`` (and lines that only call it) when there is no GPU."""
    if CUDA:
        return code
    code = re.sub(r'^\s*[\w.]+\.cuda\(\)\s*$\n?', '', code, flags=re.M)
    return code.replace('.cuda()', '')


def python3_prints(code):
    """``print x`` (Python 2) -> ``print(x)``."""
    return re.sub(r'^(\s*)print (?!\()(.+)$', r'\1print(\2)', code, flags=re.M)


def run(code, ns, name='<seed example>'):
    """Runs ``code`` statement by statement in ``ns``; returns the values of its expression statements."""
    results = []
    for node in ast.parse(code).body:
        if isinstance(node, ast.Expr):
            results.append(eval(compile(ast.Expression(node.value), name, 'eval'), ns))
        else:
            exec(compile(ast.Module([node], type_ignores=[]), name, 'exec'), ns)
    return results


@pytest.fixture(autouse=True)
def _figures_and_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plt.close('all')
    yield
    plt.close('all')


def spike_counts(t):
    a = convis.utils.to_numpy(t)
    assert a.min() >= 0 and np.array_equal(a, np.round(a))
    return a


# ---------------------------------------------------------------------------------------------- 000 Usage
RUNNING_A_RETINA = example("""
    import convis
    retina = convis.retina.Retina()
    retina(some_short_input)
    retina.run(some_input,dt=100)
""")


def test_usage_running_a_model():
    some_short_input = 255 * np.random.rand(20, 10, 10)
    some_input = 255 * np.random.rand(300, 10, 10)
    short, long = run(RUNNING_A_RETINA, {'some_short_input': some_short_input, 'some_input': some_input})
    assert isinstance(short, convis.Output) and isinstance(long, convis.Output)
    assert short.keys == long.keys == ['ganglion_spikes_ON', 'ganglion_spikes_OFF']
    assert [tuple(o.shape) for o in short] == [(1, 1, 20, 10, 10)] * 2
    assert [tuple(o.shape) for o in long] == [(1, 1, 300, 10, 10)] * 2
    assert spike_counts(long[0]).sum() > 0 and spike_counts(long[1]).sum() > 0


# ---------------------------------------------------------------------------------------------- 001 Examples
SIMULATOR = [example(code) for code in (
    """
    >>> import convis
    >>> retina = convis.retina.Retina()
    """, """
    >>> retina.parse_config('path/to/config_file.xml')
    """, """
    >>> inp = np.random.randn(2000,50,50)
    """, """
    >>> o = retina.run(inp, dt=500)
    """, """
    >>> o[0] is o.ganglion_spikes_ON
    """, """
    >>> o[1] is o.ganglion_spikes_OFF
    """, """
    >>> convis.plot_5d_time(o[0],mean=(3,4))
    >>> convis.plot_5d_time(o[1],mean=(3,4))
    >>> plt.title('Firing Rates')
    """)]


def test_quickstart_running_convis_as_a_simulator():
    """With a VirtualRetina configuration that has ON and OFF layers (and two more), as the text assumes."""
    ns = {'np': np, 'plt': plt}
    results = [run(code.replace('path/to/config_file.xml', PRIMATE_XML), ns) for code in SIMULATOR]
    assert results[4] == [True] and results[5] == [True]
    retina, o = ns['retina'], ns['o']
    assert retina.resolution.steps_per_second == 200 and retina.resolution.pixel_per_degree == 20
    assert o.keys == ['ganglion_spikes_ON', 'ganglion_spikes_OFF', 'ganglion_spikes_ON_2', 'ganglion_spikes_OFF_3']
    for k, cells in enumerate((223, 223, 130, 130)):
        assert tuple(o[k].shape) == (1, 1, 2000, 1, cells)  # the circular cell arrays of the file
        rate = spike_counts(o[k]).mean() * retina.resolution.steps_per_second
        assert 1 < rate < 200, 'layer %d fires at %g Hz' % (k, rate)
    lines = plt.gca().lines
    assert len(lines) == 2 and plt.gca().get_title() == 'Firing Rates'
    for line, out in zip(lines, o):
        np.testing.assert_allclose(line.get_ydata(), out[0, 0].numpy().mean(axis=(1, 2)), rtol=1e-6)


RUNNING_THE_RETINA = [example(code) for code in (
    """
    import convis
    the_input = convis.samples.moving_bars(2000)
    """, """
    import convis
    m = convis.retina.Retina()
    m.run(the_input)
    """, """
    m.run(the_input,dt=1000) # takes 1000 timesteps at a time
    """)]


def test_running_the_premade_retina_whole_and_in_chunks():
    ns = {}
    _, (whole,), (chunked,) = [run(code, ns) for code in RUNNING_THE_RETINA]
    the_input = ns['the_input']
    assert the_input.shape == (2000, 20, 20)
    for o in (whole, chunked):
        assert o.keys == ['ganglion_spikes_ON', 'ganglion_spikes_OFF']
        assert all(tuple(t.shape) == (1, 1, 2000, 20, 20) for t in o)
    # the second call continues the first one (the state is kept): both layers keep firing at similar rates
    for k in range(2):
        a, b = spike_counts(whole[k]).sum(), spike_counts(chunked[k]).sum()
        assert a > 0 and b > 0 and 0.5 < a / b < 2.0
    # the samples are in [0, 1] while the retina reads luminances in [0, 255] and starts adapted to 127.5:
    # it sees a dark screen, to which the OFF cells answer more than the ON cells (by about 10%: over seeds the
    # ratio of the counts is 1.10 +- 0.03, so the test only asks for more)
    assert the_input.max() <= 1 and ns['m'].resolution.input_luminosity_range == 255
    assert spike_counts(whole[1]).sum() > spike_counts(whole[0]).sum()


# ---------------------------------------------------------------------------------------------- 002 PyTorch
TENSORS = example("""
    >>> a = torch.from_numpy(np.random.randn(10,10,10,10))
    >>> b = torch.DoubleTensor(np.random.randn(10,10,10,10))
    >>> (a + b).mean()
""")

AUTOGRAD = example("""
    >>> a = torch.autograd.Variable(torch.from_numpy(np.random.randn(10,10,10,10)),requires_grad=True)
    >>> b = torch.autograd.Variable(torch.from_numpy(np.random.randn(10,10,10,10)),requires_grad=True)
    >>> c = (a + b).mean()
    >>> c.backward(retain_graph=True) # adds the backpropagated gradient to the gradient buffers
    >>> a.grad
    # tensor of 1s
    >>> b.grad
    # tensor of 1s
""")


def test_pytorch_basics():
    (mean,) = run(TENSORS, {'torch': torch, 'np': np})
    assert mean.dtype == torch.float64 and abs(float(mean)) < 0.1  # 10^4 sums of two unit normals
    ns = {'torch': torch, 'np': np}
    _, grad_a, grad_b = run(AUTOGRAD, ns)
    # the gradient of a mean over 10^4 elements is 1/10^4 everywhere (the comment says "tensor of 1s")
    for g in (grad_a, grad_b):
        assert g.shape == (10, 10, 10, 10) and torch.allclose(g, torch.full_like(g, 1e-4))


FORWARD_SKETCH = example("""
        def forward(self, x):
            if not ... :
                # for the case that we have no input input_state
                # or the input state does not match the shape of x
                self.input_state = torch.autograd.Variable(torch.zeros(...))
                # using eg. the first slice of the input initially
                self.input_state[:,:,-self.filter_length:,:,:] = x[:,:,:self.filter_length,:,:]
            x_pad = torch.cat([self.input_state, x], dim=2) # input padded in time
            self.input_state = x_pad[:,:,-(self.filter_length):,:,:]
            # finally, padding x and y dimension
            x = torch.nn.functional.pad(x,self.kernel_padding, 'replicate')
            return self.conv(x_pad)
""")


def test_extending_conv3d_forward_sketch_carries_its_memory():
    """The sketch (its first branch never runs: ``not ...`` is False) remembers the last frames of each chunk."""
    ns = {'torch': torch}
    run(FORWARD_SKETCH, ns)

    class Sketch(convis.Layer):
        filter_length, kernel_padding = 4, (0, 0, 0, 0, 0, 0)
        forward = ns['forward']

        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv3d(1, 1, (5, 1, 1), bias=False)
            self.input_state = torch.zeros(1, 1, 4, 3, 3)

    layer = Sketch()
    x = torch.randn(1, 1, 30, 3, 3)
    with torch.no_grad():
        whole = layer(x)
        layer.input_state = torch.zeros(1, 1, 4, 3, 3)
        chunks = torch.cat([layer(x[:, :, s:s + 7]) for s in range(0, 30, 7)], dim=2)
        expected = layer.conv(torch.cat([torch.zeros(1, 1, 4, 3, 3), x], dim=2))
    assert whole.shape == (1, 1, 30, 3, 3)
    torch.testing.assert_close(whole, expected)
    torch.testing.assert_close(chunks, whole)


# ---------------------------------------------------------------------------------------------- 004 API: base
OUTPUT_PLOTS = [example("o.plot(mode='lines') # default"), example("o.plot(mode='matshow')"),
                example('o.plot(mode=None)')]


def test_output_plot_modes():
    ns = {'o': convis.filters.Delay(3).run(np.ones((60, 8, 8)), dt=20)}
    (lines,) = run(OUTPUT_PLOTS[0], ns)
    np.testing.assert_array_equal(lines[0].get_ydata(), np.r_[np.zeros(3), np.ones(57)])  # the spatial mean
    plt.figure()
    (image,) = run(OUTPUT_PLOTS[1], ns)
    assert image.get_array().shape == (8, 60 * 9 - 1)
    plt.figure()
    (axes,) = run(OUTPUT_PLOTS[2], ns)
    assert len(axes) == 6  # a line plot and five example frames (plot_tensor)


PREPARE_INPUT = example("""
    import torch
    a_var = torch.autograd.Variable(torch.Tensor(a[None,None,:,:,:]), requires_grad=True).cuda()
    from convis.base import prepare_input
    a_var = prepare_input(a, cuda=True, requires_grad=True)
""")


def test_prepare_input_is_the_documented_short_hand():
    a = np.random.rand(20, 5, 6)
    lines = PREPARE_INPUT.split('\n')
    ns = {'a': a}
    run(without_cuda('\n'.join(lines[:2])), ns)
    long_hand = ns['a_var']
    if CUDA:
        run('\n'.join(lines[2:]), ns)
    else:
        run(lines[2], ns)
        with pytest.raises(RuntimeError, match='no CUDA device'):
            run(lines[3], ns)
        ns['a_var'] = ns['prepare_input'](a, cuda=False, requires_grad=True)
        assert ns['prepare_input'](a, cuda=None).device == torch.device('cpu')  # cuda=None: where it is
    short_hand = ns['a_var']
    assert short_hand.shape == (1, 1, 20, 5, 6) and short_hand.requires_grad and short_hand.dtype == torch.float32
    assert short_hand.device == long_hand.device and torch.equal(short_hand.detach(), long_hand.detach())


RETINA_TREES = example("""
    >>> retina = convis.models.retina()
    >>> print retina.p
    >>> print retina.user_parameters
    >>> print retina.p
    >>> print retina.s
""")
RETINA_TREES_PRINTED = ['Parameters of the model (see also .user_parameters) Choices:',
                        'Parameters of the model that can be set by the user. Choices:',
                        'Modules of the model Choices: _self,',
                        'Current state of the model Choices:']
RETINA_CHOICES = {'gang_0_spikes', 'gang_1_spikes', 'gang_0_input', 'gang_1_input', 'bipolar', 'opl'}
RETINA_PATHS = [example(code) for code in (
    """
    >>> retina.p.bipolar.g_leak # the g_leak Parameter
    """, """
    >>> retina.p._all.bipolar_g_leak # lists everything in a flat list
    >>> retina.p._search.leak.bipolar_g_leak # found one result
    """)]


def test_models_retina_makes_the_retina_model():
    ns = {'convis': convis}
    run(RETINA_TREES.split('\n')[0], ns)
    assert isinstance(ns['retina'], convis.retina.Retina)


def test_layer_trees_of_the_retina():
    """The trees of the example (the retina made with ``convis.retina.Retina()``, see the test above) print
    what the documentation shows (:data:`RETINA_TREES_PRINTED`, each title and its choices on one line)."""
    retina = convis.retina.Retina()
    ns = {'convis': convis, 'retina': retina}
    out = io.StringIO()
    with redirect_stdout(out):
        run(python3_prints('\n'.join(RETINA_TREES.split('\n')[1:])), ns)
    printed = out.getvalue().strip().split('\n')
    assert printed[0] == 'Parameters of the model (see also .user_parameters)'
    assert printed[2].startswith('Parameters of the model that can be set by the user')
    for line in printed[1::2]:
        assert line.startswith('Choices: ') and set(line[9:].split(', ')) == RETINA_CHOICES
    # the document prints retina.p a second time where it shows the modules: that is retina.m
    assert repr(retina.m) == ('Modules of the model\n'
                              'Choices: _self, opl, bipolar, gang_0_input, gang_0_spikes, gang_1_input, gang_1_spikes')
    assert printed[6] == 'Current state of the model'
    shown = [printed[0:2], printed[2:4], repr(retina.m).split('\n'), printed[6:8]]
    for lines, documented in zip(shown, RETINA_TREES_PRINTED):
        title, choices = documented.split(' Choices:')
        assert lines[0] == title.rstrip('.') and lines[1].startswith('Choices:' + choices), (lines, documented)
    # "<tab complete>": what IPython offers is dir()
    assert RETINA_CHOICES <= set(dir(retina.p)) and 'g_leak' in dir(retina.p.bipolar)
    assert 'bipolar_g_leak' in dir(retina.p._search.leak)
    (g_leak,) = run(RETINA_PATHS[0], ns)
    flat, found = run(RETINA_PATHS[1], ns)
    assert g_leak is flat is found is retina.bipolar.g_leak
    assert float(g_leak) == 50.0 and g_leak.unit == 'Hz'
    # assigning to a leaf sets the value in place
    retina.p.bipolar.g_leak = 20.0
    assert float(retina.bipolar.g_leak) == 20.0


OPTIMIZER_TAB = example('>>> m.set_optimizer.<then press tab> ASGD Adadelta Adagrad Adam ...')
OPTIMIZE = [example(code) for code in (
    """
    >>> model.set_optimizer(torch.optim.SGD(model.parameters(),lr=0.01))
    >>> model.optimize(x,y, dt=100)
    """, """
    >>> model.set_optimizer.SGD(lr=0.01) # uses optimizers from torch.optim
    >>> model.optimize(x,y, dt=100)
    """)]


def test_set_optimizer_and_optimize_examples():
    m = convis.models.LN()
    assert {'ASGD', 'Adadelta', 'Adagrad', 'Adam'} <= set(dir(m.set_optimizer))
    goal = convis.models.LN((5, 3, 3))
    goal.conv.set_weight(np.random.randn(5, 3, 3) * 0.3)
    x = 0.05 * np.random.randn(300, 8, 8)  # the loss is a sum over 6400 values per chunk: lr=0.01 needs small x
    y = goal.run(x)[0]
    model = convis.models.LN((5, 3, 3))
    ns = {'model': model, 'torch': torch, 'x': x, 'y': y}
    first = [run(OPTIMIZE[0], ns)[1] for _ in range(3)]
    assert isinstance(model._optimizer, torch.optim.SGD) and model._optimizer.defaults['lr'] == 0.01
    second = [run(OPTIMIZE[1], ns)[1] for _ in range(3)]
    losses = [np.sum(v) for v in first + second]
    assert all(len(v) == 3 for v in first + second)  # one loss per chunk of 100 frames
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < 0.5 * losses[0]


def test_documented_layer_methods():
    """get/set_parameters, requires_grad_, push/pop/store/retrieve_all and the impulse plots, as 004 lists them."""
    m = convis.models.LN((5, 3, 3))
    m.conv.set_weight(np.random.rand(5, 3, 3))
    params = m.get_parameters()
    assert list(params) == ['conv.weight'] and isinstance(params['conv.weight'], np.ndarray)
    m.push_all()
    m.store_all('fitted')
    m.set_parameters({'conv_weight': np.zeros((1, 1, 5, 3, 3))})  # the flat name of .p._all works too
    assert float(m.conv.weight.detach().abs().sum()) == 0
    with pytest.warns(UserWarning, match='not set'):
        m.set_parameters({}, warn=True)
    m.pop_all()
    np.testing.assert_array_equal(m.conv.weight.detach().numpy(), params['conv.weight'])
    m.set_parameters({'conv.weight': np.ones((1, 1, 5, 3, 3))})
    m.retrieve_all('fitted')
    m.retrieve_all('fitted')  # the entry is kept
    np.testing.assert_array_equal(m.conv.weight.detach().numpy(), params['conv.weight'])
    assert m.requires_grad_(False) is m and not m.conv.weight.requires_grad
    m.requires_grad_(True)
    o = m.plot_impulse(shp=(50, 9, 9), dt=20)
    assert tuple(o[0].shape) == (1, 1, 50, 9, 9)
    np.testing.assert_allclose(plt.gca().lines[0].get_ydata()[:5], params['conv.weight'][0, 0, ::-1, 1, 1], rtol=1e-5)
    o = m.plot_impulse_space(shp=(1, 9, 9), dt=500)
    np.testing.assert_allclose(o[0][0, 0, 0, 3:6, 3:6].numpy(), params['conv.weight'][0, 0, -1, ::-1, ::-1],
                               rtol=1e-5)


# ---------------------------------------------------------------------------------------------- 004 API: variables
VIRTUAL_PARAMETER = example("""
    a = VirtualParameter(float,value=0.1)
    b = VirtualParameter(int,value=0)
    v = VirtualParameter(convis2.numerical_filters.exponential_filter_5d).set_callback_arguments(tau=a,n=b)
    a.set(0.01) # updating this parameter causes the function of v to be reevaluated
    plot(v.get()[0,:,0,0,0])
    b.set(2) # the function is reevaluated again
    plot(v.get()[0,:,0,0,0])
""")


def test_virtual_parameter_example():
    """``convis2`` (a name from an older version of the package) is ``convis``."""
    ns = {'VirtualParameter': convis.variables.VirtualParameter, 'convis2': convis, 'plot': plt.plot}
    run(VIRTUAL_PARAMETER, ns)
    exp = convis.numerical_filters.exponential_filter_5d
    first, second = plt.gca().lines
    # kernels are [batch, channel, time, x, y] now: [0,:,0,0,0] (time in the older layout) is the first tap
    assert first.get_ydata().tolist() == [exp(tau=0.01, n=0)[0, 0, 0, 0, 0]]
    assert second.get_ydata().tolist() == [exp(tau=0.01, n=2)[0, 0, 0, 0, 0]]
    assert float(ns['a']) == 0.01 and float(ns['b']) == 2
    v = ns['v'].get()
    np.testing.assert_array_equal(v, exp(tau=0.01, n=2))  # v was re-evaluated after each set
    assert v.shape[:2] == (1, 1) and v.shape[2] > 70 and np.argmax(v[0, 0, :, 0, 0]) > 0  # a cascade peaks later
    ns['a'].set(0.005)
    assert ns['v'].get().shape[2] < v.shape[2]  # a faster filter is shorter


OX_TREE = [example(code) for code in (
    """
    >>> p = convis.variables.create_Ox_from_torch_iterator_dicts(retina.named_parameters())
    # the same as:
    >>> p = Ox(**dict_with_dots_to_hierarchical_dict(dict(retina.named_parameters())))
    """, """
    >>> p.bipolar.g_leak
    """, """
    >>> p._all # lists everything with underscore
    """, """
    >>> p._search.g_leak.bipolar_g_leak
    """)]


def test_ox_trees_from_named_parameters():
    """The names the docstring uses unqualified are those of its module, ``convis.variables`` (and ``Ox``)."""
    retina = convis.retina.Retina()
    ns = dict(vars(convis.variables), convis=convis, Ox=convis.o.Ox, retina=retina)
    lines = OX_TREE[0].split('\n')
    run(lines[0], ns)
    p1 = ns['p']
    run('\n'.join(lines[1:]), ns)
    p2 = ns['p']
    named = dict(retina.named_parameters())
    for p in (p1, p2):
        ns['p'] = p
        (g_leak,) = run(OX_TREE[1], ns)
        (flat,) = run(OX_TREE[2], ns)
        (found,) = run(OX_TREE[3], ns)
        assert g_leak is found is retina.bipolar.g_leak
        # lossless: every parameter is in the flat list, under its dotted name with '_'
        assert sorted(flat._keys()) == sorted(n.replace('.', '_') for n in named)
        assert all(flat[n.replace('.', '_')] is v for n, v in named.items())
        assert set(dir(p)) >= {'opl', 'bipolar', 'gang_0_input', 'gang_1_spikes'}
    nested = convis.variables.dict_with_dots_to_hierarchical_dict({'opl.a.x': 1, 'opl.a.y': 2, 'opl': 3, '': 4})
    assert nested == {'opl': {'a': {'x': 1, 'y': 2}, '_self': 3}, '_self': 4}


# ---------------------------------------------------------------------------------------------- 004 API: utils
MAKE_TENSOR_5D = [('1d: t[None,None,:,None,None]', (7,), (1, 1, 7, 1, 1)),
                  ('2d: t[None,None,None,:,:]', (7, 8), (1, 1, 1, 7, 8)),
                  ('3d: t[None,None,:,:,:]', (6, 7, 8), (1, 1, 6, 7, 8)),
                  ('4d: t[None,:,:,:,:]', (5, 6, 7, 8), (1, 5, 6, 7, 8)),
                  ('5d: t', (4, 5, 6, 7, 8), (4, 5, 6, 7, 8)),
                  ('6d and more: selects the first element of t until t has 5 dimensions', (1, 1, 5, 6, 7, 8),
                   (1, 5, 6, 7, 8))]
EXTEND_TO_MATCH = example("""
    >>> a = convis.utils.extend_to_match(a,b)
    >>> b = convis.utils.extend_to_match(b,a)
""")


def test_make_tensor_5d_rules():
    for rule, shape, result in MAKE_TENSOR_5D:
        for t in (np.random.rand(*shape), torch.rand(shape)):
            out = convis.utils.make_tensor_5d(t)
            assert type(out) is type(t) and tuple(out.shape) == result
            np.testing.assert_array_equal(np.asarray(out).ravel(), np.asarray(t).ravel())
    # "the first element", also of a longer axis, as documented (a model's run refuses such input instead)
    t = np.random.rand(2, 1, 5, 6, 7, 8)
    np.testing.assert_array_equal(convis.utils.make_tensor_5d(t), t[0])


def test_extend_to_match_example():
    a0 = np.random.rand(1, 1, 10, 4, 6)
    b0 = np.random.rand(1, 1, 20, 8, 4)
    ns = {'convis': convis, 'a': a0, 'b': b0}
    run(EXTEND_TO_MATCH, ns)
    a, b = ns['a'], ns['b']
    assert a.shape == b.shape == (1, 1, 20, 8, 6)
    # time is aligned at the beginning, space centred
    np.testing.assert_array_equal(a[:, :, :10, 2:6, :], a0)
    np.testing.assert_array_equal(b[:, :, :, :, 1:5], b0)
    d = convis.utils.subtract_tensors(a0, b0)
    assert d.shape == (1, 1, 20, 8, 6)
    np.testing.assert_allclose(d[0, 0, 0, 2:6, 1:5], a0[0, 0, 0, :, 1:5] - b0[0, 0, 0, 2:6, :])


def test_resolution_settings():
    """``set_steps_per_second`` / ``set_pixel_per_degree`` change the default scaling, from the next chunk on."""
    lp = convis.filters.TemporalLowPassFilterRecursive(tau=0.01)
    impulse = np.zeros(200)
    impulse[0] = 1.0
    convis.set_steps_per_second(1000)
    at_1000 = lp.run(impulse)[0].numpy().ravel()
    convis.set_steps_per_second(100)
    lp.clear_state()
    at_100 = lp.run(impulse)[0].numpy().ravel()
    # tau = 10 ms: 10 steps at 1000 steps/s, one step at 100 steps/s
    assert at_1000[10] / at_1000[0] == pytest.approx(math.exp(-1), rel=1e-4)
    assert at_100[1] / at_100[0] == pytest.approx(math.exp(-1), rel=1e-4)
    convis.set_pixel_per_degree(20)
    assert convis.default_resolution.degree_to_pixel(0.5) == 10
    blur = convis.filters.spatial.SpatialRecursiveFilter(sigma=0.1)
    dot = np.zeros((1, 31, 31))
    dot[0, 15, 15] = 1
    wide = blur.run(dot)[0].numpy()[0, 0, 0]
    convis.set_pixel_per_degree(10)
    narrow = blur.run(dot)[0].numpy()[0, 0, 0]
    assert wide[15, 15] < narrow[15, 15] and wide.sum() == pytest.approx(narrow.sum(), rel=1e-3)


# ---------------------------------------------------------------------------------------------- 004 API: samples
def test_sample_stimuli_take_the_documented_arguments():
    s = convis.samples
    g = s.moving_grating(t=100, x=10, y=12, vt=0.005, vx=3.0, vy=2.0, p=0.01, frames_per_second=None,
                         pixel_per_degree=None)
    assert g.shape == (100, 10, 12) and -1 <= g.min() < -0.5 and 0.5 < g.max() <= 1
    bar = s.moving_bar(t=100, x=10, y=12, bar_pos=-1.0, bar_direction=0.0, bar_width=1.0, bar_v=0.01,
                       frames_per_second=None, pixel_per_degree=None, sharp=True, temporal_smoothing=1.0)
    assert bar.shape == (100, 10, 12) and set(np.unique(bar)) == {0.0, 1.0}
    centre = [np.argmax(bar[k].sum(axis=1)) for k in (0, 50, 99)]
    assert centre[0] < centre[1] < centre[2]  # the bar moves along x
    checks = s.random_checker_stimulus(t=100, x=10, y=12, checker_size=5, seed=123, frames_per_second=None,
                                       pixel_per_degree=None)
    assert checks.shape == (100, 10, 12) and 0 <= checks.min() and checks.max() < 1
    assert np.all(checks[:, :5, :5] == checks[:, :1, :1])  # one value per 5 x 5 check
    np.testing.assert_array_equal(checks, s.random_checker_stimulus(100, 10, 12, checker_size=5, seed=123))
    size = s.StimulusSize(t=2000, x=20, y=20, pixel_per_degree=10, frames_per_second=1000.0, cuda=False, prepare=False)
    assert (size.t, size.x, size.y, size.pixel_per_degree, size.frames_per_second) == (2000, 20, 20, 10, 1000.0)
    assert size.moving_grating().shape == (2000, 20, 20)
