"""The teaching notebooks are clean: small, reproducible, checked by nbval, independent of the repository layout.

Their execution is tested by ``pytest --nbval-lax notebooks/``: cells tagged ``nbval-check-output`` must
print what is stored in the notebook, every other cell must run without error.  The tests here check the
stored files themselves.
"""
import ast
import glob
import json
import os
import re

import nbformat
import pytest

NOTEBOOKS = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', 'notebooks'))
EXPECTED = ['00_tour', '01_retina_model', '02_fitting_ln_models', '03_spikes', '04_streams_and_runner',
            '05_build_your_own', '06_sweeps_and_comparisons', '07_fitting_the_retina']
CHECK = 'nbval-check-output'
TEXT_MIMES = {'text/plain'}


def notebook_paths():
    return sorted(glob.glob(os.path.join(NOTEBOOKS, '*.ipynb')))


class Notebook:
    """A stored notebook with its path and size in bytes."""

    def __init__(self, path, size, node):
        self.path, self.size, self.node = path, size, node
        self.cells, self.metadata = node.cells, node.metadata


def is_check_cell(cell):
    return CHECK in cell.metadata.get('tags', []) or cell.source.lstrip().startswith('# NBVAL_CHECK_OUTPUT')


@pytest.fixture(params=notebook_paths(), ids=lambda p: os.path.basename(p))
def nb(request):
    with open(request.param) as f:
        raw = f.read()
    notebook = nbformat.reads(raw, as_version=4)
    return Notebook(request.param, len(raw.encode()), notebook)


def code(nb):
    return [c for c in nb.cells if c.cell_type == 'code']


def test_the_course_is_complete():
    names = [os.path.splitext(os.path.basename(p))[0] for p in notebook_paths()]
    assert names == EXPECTED


def test_valid_and_runs_on_the_default_python_kernel(nb):
    nbformat.validate(nb.node)
    assert nb.node.nbformat == 4
    assert nb.metadata.kernelspec['name'] == 'python3'


def test_starts_with_a_title_and_inline_plots(nb):
    first = nb.cells[0]
    assert first.cell_type == 'markdown' and first.source.startswith('# ')
    setup = code(nb)[0].source
    assert '%matplotlib inline' in setup
    assert 'import convis' in setup


def test_small_on_disk(nb):
    assert nb.size < 60_000, '%s is %d bytes: clear the outputs' % (nb.path, nb.size)
    assert 'widgets' not in nb.metadata, 'widget state is stored in %s' % nb.path


def test_only_checked_cells_keep_outputs_and_those_are_text(nb):
    checked = [c for c in code(nb) if is_check_cell(c)]
    assert checked, 'no cell of %s is checked by nbval' % nb.path
    for c in code(nb):
        if not is_check_cell(c):
            assert not c.outputs and c.execution_count is None, 'stored output in a lax cell:\n%s' % c.source
            continue
        assert c.execution_count is not None, 'a checked cell is stored unrun (nbval skips it):\n%s' % c.source
        for o in c.outputs:
            assert o.output_type in ('stream', 'execute_result'), o.output_type
            if o.output_type == 'stream':
                assert o.name == 'stdout'
            else:
                assert set(o.data) <= TEXT_MIMES, set(o.data)
        assert len(json.dumps(c.outputs)) < 4000


def test_checked_cells_print_no_addresses_or_timings(nb):
    """Checked outputs must be deterministic: no object addresses, no times, no temporary paths."""
    for c in code(nb):
        for o in c.outputs:
            text = o.get('text', '') + o.get('data', {}).get('text/plain', '')
            assert not re.search(r'0x[0-9a-f]{6,}', text), text
            assert not re.search(r'/tmp|\d+(\.\d+)? ?(ms|s) elapsed', text), text


def test_self_contained(nb):
    """Notebooks use no data from outside the notebook folder and leave no files behind."""
    src = '\n'.join(c.source for c in code(nb))
    assert '../shared' not in src and '/work/' not in src
    writes = re.search(r'save_parameters|VideoWriter|write_xml|open\([^)]*[\'"]w', src)
    if writes:
        assert 'tempfile' in src, 'files are written without a temporary directory in %s' % nb.path


NOT_PYTHON = ('%%writefile', '%%bash', '%%sh', '%%html', '%%javascript', '%%latex', '%%markdown')
"""Cell magics whose cell is not Python (an empty tree for it)."""


def _cell_tree(cell):
    """The syntax tree of a code cell (IPython magics and shell lines left out; empty for a cell that
    :data:`NOT_PYTHON` marks as another language, such as a C file written with ``%%writefile``)."""
    if cell.source.lstrip().startswith(NOT_PYTHON):
        return ast.parse('')
    return ast.parse('\n'.join(line for line in cell.source.splitlines() if not line.startswith(('%', '!'))))


def test_rasters_share_their_time_axis(nb):
    """A figure with a raster and other panels puts them on one time axis (``sharex=True``, one xlim).

    Rasters beside each other on separate time axes (ON and OFF cells, a stimulus and its spikes) invite a
    reader to compare ticks that are not aligned.
    """
    for c in code(nb):
        if 'eventplot' not in c.source:
            continue
        tree = _cell_tree(c)
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == 'subplots'):
                continue
            shape = [a.value for a in call.args[:2] if isinstance(a, ast.Constant)]
            shared = {k.arg: getattr(k.value, 'value', None) for k in call.keywords}.get('sharex')
            if len(shape) == 2 and shape[0] * shape[1] > 1:
                assert shared is True, 'a raster without a shared time axis:\n%s' % c.source


def test_live_callbacks_read_no_name_a_later_cell_rebinds(nb):
    """A function run when a slider moves (``panel.on_change(f)``) reads only globals that stay as they were.

    The callback runs after the whole notebook has run: a global it reads (``x``) that a later cell
    assigns again is then another thing (another shape), and moving the slider fails or lies.
    """
    cells = code(nb)
    for i, c in enumerate(cells):
        tree = _cell_tree(c)
        hooked = {a.id for call in ast.walk(tree) if isinstance(call, ast.Call)
                  and isinstance(call.func, ast.Attribute) and call.func.attr in ('on_change', 'observe', 'on_click')
                  for a in call.args[:1] if isinstance(a, ast.Name)}
        for f in [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in hooked]:
            local = {a.arg for a in ast.walk(f.args) if isinstance(a, ast.arg)}
            local |= {n.id for n in ast.walk(f) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            read = {n.id for n in ast.walk(f) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - local
            for later in cells[i + 1:]:
                rebound = {n.id for n in ast.walk(_cell_tree(later)) if isinstance(n, ast.Name)
                           and isinstance(n.ctx, ast.Store)} & read
                assert not rebound, 'the callback %s reads %s, which a later cell assigns again:\n%s' % (
                    f.name, sorted(rebound), later.source)
