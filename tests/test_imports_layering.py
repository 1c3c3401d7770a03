"""The import graph of convis: no circles, arrows pointing down the layers, convis_widgets never imported.

Every ``import`` and ``from ... import`` of every module under ``convis/`` is read with :mod:`ast`, including
the imports inside functions (an import deferred into a function is still a dependency, only a hidden one).
An import of ``convis.a.b`` counts as an edge to the module ``convis.a.b`` (the implicit import of the parent
packages' ``__init__`` is not counted: a package's ``__init__`` is its public face, not a dependency).
"""
import ast
import os

import pytest

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'convis')

# The layers, bottom first: a module may import modules of its own layer or of lower layers only.
# (Documented in docs/architecture.md; a module missing here fails test_every_module_has_a_layer.)
LAYERS = [
    ('core types', ['convis.tensors', 'convis.errors', 'convis.o', 'convis.locking', 'convis.resolution',
                    'convis.variables',
                    'convis.parameter_io', 'convis.plotting', 'convis.utils', 'convis.losses']),
    ('kernels', ['convis.native', 'convis.compiled', 'convis.noise', 'convis.numerical_filters', 'convis.functional',
                 'convis.functional.*']),
    ('layer', ['convis.output', 'convis.chunking', 'convis.optimizing', 'convis.layer_parameters', 'convis.layer']),
    ('filters', ['convis.filters', 'convis.filters.*']),
    ('configuration', ['convis.retina_virtualretina']),
    ('models', ['convis.models', 'convis.retina', 'convis.layers', 'convis.samples', 'convis.kernels']),
    ('io, plots and fitting', ['convis.base', 'convis.runner', 'convis.variable_describe', 'convis.analysis',
                               'convis.fitting', 'convis.fit_compare', 'convis.streams', 'convis.streams.*',
                               'convis.scale', 'convis.scale.*']),
    ('public face', ['convis', 'convis.__main__']),
]


def _module_name(path):
    rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].split(os.sep)
    if rel[-1] == '__init__':
        rel = rel[:-1]
    return '.'.join(rel)


def _modules():
    found = {}
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith(('.', '_')))
        for f in sorted(files):
            if f.endswith('.py'):
                path = os.path.join(folder, f)
                found[_module_name(path)] = path
    return found


def _imports(name, path, modules):
    """The convis modules (and outside top-level packages) that module ``name`` imports, with line numbers."""
    with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read(), path)
    is_package = os.path.basename(path) == '__init__.py'
    package = name if is_package else name.rpartition('.')[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((alias.name, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - (node.level - 1)]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                sub = target + '.' + alias.name
                out.append((sub if sub in modules else target, node.lineno))
    return out


def _graph():
    modules = _modules()
    edges = {m: {} for m in modules}
    outside = {}
    for m, path in modules.items():
        for target, line in _imports(m, path, modules):
            if target in modules:
                if target != m:
                    edges[m].setdefault(target, line)
            else:
                outside.setdefault(m, []).append((target, line))
    return edges, outside


def _strongly_connected(edges):
    """Tarjan's strongly connected components of the graph ``{node: {successor: ...}}``."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            components.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return components


def _layer_of(module):
    for rank, (_, names) in enumerate(LAYERS):
        for pattern in names:
            if module == pattern or (pattern.endswith('.*') and module.startswith(pattern[:-1])):
                return rank
    return None


def test_graph_is_read():
    edges, _ = _graph()
    assert 'convis.base' in edges and 'convis.filters.retina' in edges
    # a function-level import is an edge too
    assert 'convis.retina_virtualretina' in edges['convis.filters.ganglion'] or \
        'convis.retina_virtualretina' in edges['convis.retina']


def test_no_import_circles():
    edges, _ = _graph()
    circles = [c for c in _strongly_connected(edges) if len(c) > 1]
    described = ['%s (edges: %s)' % (' <-> '.join(c), ', '.join('%s->%s:%d' % (a, b, edges[a][b])
                                                                   for a in c for b in edges[a] if b in c))
                 for c in circles]
    assert not circles, 'import circles:\n' + '\n'.join(described)


def test_every_module_has_a_layer():
    edges, _ = _graph()
    assert [m for m in edges if _layer_of(m) is None] == []


def test_imports_point_down_the_layers():
    edges, _ = _graph()
    upward = ['%s (%s) imports %s (%s) at line %d' % (a, LAYERS[_layer_of(a)][0], b, LAYERS[_layer_of(b)][0], line)
              for a in sorted(edges) for b, line in edges[a].items() if _layer_of(b) > _layer_of(a)]
    assert upward == []


def test_convis_never_imports_widgets():
    _, outside = _graph()
    bad = ['%s imports %s at line %d' % (m, t, line) for m, ts in outside.items() for t, line in ts
           if t.split('.')[0] == 'convis_widgets']
    assert bad == []


@pytest.mark.parametrize('source, expected', [
    ('from .a import b\n', {'convis.a'}),
    ('def f():\n    from . import a\n', {'convis.a'}),
    ('import convis.a\n', {'convis.a'}),
])
def test_function_level_and_relative_imports_are_seen(tmp_path, source, expected):
    path = tmp_path / 'm.py'
    path.write_text(source)
    modules = {'convis.m': str(path), 'convis.a': '', 'convis': ''}
    assert {t for t, _ in _imports('convis.m', str(path), modules)} == expected
