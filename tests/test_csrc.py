"""The C files of convis/csrc: one signature table (convis_loops.h) that the C files and cffi both read, calls
with wrong arguments refused, no C source in Python strings, one switch to turn compilation off."""
import io
import os
import re
import shutil
import subprocess
import tokenize

import pytest
import torch

import convis
from convis import native, noise
from convis.functional import lif as ganglion_lif
from convis.functional import retina_loops as loops

PACKAGE = os.path.dirname(convis.__file__)
LIBRARIES = {'recursion': native._recursion_functions, 'heat': loops._heat_functions, 'lif': ganglion_lif._native_lif,
             'normals': noise._native}
"""Each compiled library (``convis/csrc/<name>.c``) and the lookup that loads it."""


def declared_functions():
    """The functions declared in convis_loops.h."""
    with open(os.path.join(native.CSRC, native.HEADER)) as f:
        return set(re.findall(r'\b(convis_\w+)\s*\(', f.read()))


@pytest.fixture
def compiled():
    for name, lookup in LIBRARIES.items():
        if lookup() is None:
            pytest.fail('the library %s did not compile: a C compiler (cc) is needed for the test run' % name)


def test_every_declared_function_is_in_exactly_one_library_and_every_exported_one_is_declared(compiled):
    declared = declared_functions()
    assert len(declared) == 14
    exported = {}
    for name in LIBRARIES:
        out = subprocess.run(['nm', '-D', '--defined-only', native._LOADED[name]], capture_output=True, text=True,
                             check=True).stdout
        for symbol in re.findall(r' T (\w+)$', out, re.M):
            assert symbol not in exported, '%s is defined in %s and %s' % (symbol, exported.get(symbol), name)
            exported[symbol] = name
    assert set(exported) == declared


def test_a_definition_that_differs_from_the_header_does_not_compile(tmp_path):
    """The C files include the header, so a signature cannot drift from the one cffi reads."""
    folder = tmp_path / 'csrc'
    shutil.copytree(native.CSRC, folder)
    native._compile('cc', str(folder / 'recursion.c'), str(tmp_path / 'good.so'), False, True)
    body = (folder / 'recursion_body.h').read_text()
    assert 'double e_d, double g_d' in body
    (folder / 'recursion_body.h').write_text(body.replace('double e_d, double g_d', 'float e_d, double g_d'))
    with pytest.raises(subprocess.CalledProcessError) as err:
        native._compile('cc', str(folder / 'recursion.c'), str(tmp_path / 'bad.so'), False, True)
    assert b'conflicting types' in err.value.stderr


def _recursion_arguments(dtype=torch.float64):
    x, y, y0 = torch.ones(1, 3, 2, dtype=dtype), torch.empty(1, 3, 2, dtype=dtype), torch.zeros(1, 2, dtype=dtype)
    return (x, y, y0), [1, 3, 2, native.pointer(x), native.pointer(y), native.pointer(y0), 0.5, 1.0]


@pytest.mark.parametrize('wrong', ['too few', 'too many', 'a float for an integer', 'a string for a double',
                                   'an address for a pointer', 'float data for a double loop',
                                   'a tensor for a blur operator', 'None for a pointer'])
def test_wrong_arguments_raise_type_error(compiled, wrong):
    """With ctypes and ``c_void_p`` arguments these calls crashed the process or computed garbage."""
    keep, args = _recursion_arguments()
    fn = native._recursion_functions()[torch.float64]
    if wrong == 'too few':
        args = args[:-1]
    elif wrong == 'too many':
        args = args + [1]
    elif wrong == 'a float for an integer':
        args[1] = 3.0
    elif wrong == 'a string for a double':
        args[6] = '0.5'
    elif wrong == 'an address for a pointer':
        args[3] = keep[0].data_ptr()
    elif wrong == 'float data for a double loop':
        args[4] = native.pointer(keep[1].float())
    elif wrong == 'None for a pointer':
        args[3] = None
    else:
        u = torch.ones(1, 1, 1, 4, 4)
        fn = loops._heat_functions()['heat'][torch.float32]
        args = [1, 1, 4, 4, native.pointer(u), native.pointer(u), native.pointer(u[0, 0, 0]), 0.25, native.pointer(u)]
    with pytest.raises(TypeError):
        fn(*args)
    assert keep[1].data_ptr()                     # the tensors stay alive until the call is done


def test_right_arguments_compute_the_recursion(compiled):
    keep, args = _recursion_arguments()
    native._recursion_functions()[torch.float64](*args)
    assert keep[1][0, :, 0].tolist() == [1.0, 1.5, 1.75]


def test_pointers_are_typed_by_dtype_and_only_of_contiguous_cpu_tensors():
    ffi = native.ffi()
    assert ffi.typeof(native.pointer(torch.zeros(2))) is ffi.typeof('float *')
    assert ffi.typeof(native.pointer(torch.zeros(2, dtype=torch.float64))) is ffi.typeof('double *')
    assert ffi.typeof(native.pointer(torch.zeros(2, dtype=torch.int64))) is ffi.typeof('int64_t *')
    assert native.pointer(None) == ffi.NULL
    with pytest.raises(TypeError, match='int32'):
        native.pointer(torch.zeros(2, dtype=torch.int32))
    with pytest.raises(ValueError, match='strides'):
        native.pointer(torch.zeros(3, 4).t())
    with pytest.raises(ValueError, match='meta'):
        native.pointer(torch.zeros(3, device='meta'))


def test_the_blur_operator_is_the_header_struct(compiled):
    blur = convis.retina.Retina().opl._blur(torch.tensor(0.3), torch.zeros(1, 1, 1, 20, 20), scale=torch.tensor(0.5))
    struct, keep = loops._operator(blur, 0.8, 20, 20, torch.float32)
    ffi = native.ffi()
    assert ffi.typeof(struct) is ffi.typeof('convis_blur *')
    assert struct.mode == keep[0]['mode'] and struct.t == ffi.cast('void *', keep[1][0].data_ptr())


C_TYPE = r'(?:void|const|int|int64_t|uint64_t|double|float)'
C_SOURCE = re.compile(r'#\s*include\b|#\s*define\b|\btypedef\b|__attribute__|\bfor\s*\(\s*int64_t\b'
                      r'|\b%s\s+\**\w+\s*\(\s*%s\b' % (C_TYPE, C_TYPE))
"""What C source in a Python string looks like (an include, a macro, a definition, a C loop)."""


def c_in_strings(path):
    """The string literals of the Python file ``path`` that hold C source (as ``(line, excerpt)``)."""
    with open(path, 'rb') as f:
        tokens = tokenize.tokenize(io.BytesIO(f.read()).readline)
        return [(t.start[0], t.string[:60]) for t in tokens if t.type == tokenize.STRING and C_SOURCE.search(t.string)]


def test_no_python_file_of_the_package_holds_c_source():
    found = {}
    for folder, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith('.py'):
                hits = c_in_strings(os.path.join(folder, f))
                if hits:
                    found[os.path.relpath(os.path.join(folder, f), PACKAGE)] = hits
    assert found == {}


def test_the_c_source_detector_finds_c_source(tmp_path):
    """The check above would have found the loops as they were (C in Python strings)."""
    f = tmp_path / 'loops.py'
    f.write_text('SOURCE = r"""\n#include <stdint.h>\nvoid convis_x_f64(int64_t n, double *y) { }\n"""\n'
                 'DOC = "the step y = e y + g x, a float or a double"\n')
    assert [line for line, _ in c_in_strings(f)] == [1]


def test_every_library_is_a_c_file_of_the_package_that_includes_the_header():
    """The C files are package data (convis/csrc beside the modules, shipped in the wheel) and each includes
    the signature table."""
    for name in LIBRARIES:
        with open(os.path.join(native.CSRC, name + '.c')) as f:
            assert '#include "convis_loops.h"' in f.read()
    assert set(native._sources('heat')) == {'heat.c'} | {f for f in os.listdir(native.CSRC) if f.endswith('.h')}


def test_the_noise_polynomials_in_c_are_those_of_the_torch_twin():
    """normals.c writes out the series of convis.noise._SERIES (float32: each coefficient rounded to float)."""
    with open(os.path.join(native.CSRC, 'normals.c')) as f:
        text = f.read()
    for dtype, suffix in ((torch.float64, ''), (torch.float32, 'f')):
        part = text.split('#define REAL %s' % ('double' if dtype == torch.float64 else 'float'))[1]
        for macro, series in zip(('LOG_POLY', 'COS_POLY'), noise._SERIES[dtype]):
            body = part.split('#define %s(v)' % macro)[1].split('\n#')[0]
            numbers = [float(v) for v in re.findall(r'(-?[0-9.]+(?:e-?[0-9]+)?)%s\b' % suffix, body)]
            assert numbers == [float(torch.tensor(c, dtype=dtype)) for c in reversed(series)]


def test_one_switch_turns_every_compiled_loop_off(monkeypatch, tmp_path):
    """CONVIS_NO_COMPILE: no library is built or loaded, every lookup says None (the torch twins run)."""
    monkeypatch.setenv('CONVIS_NO_COMPILE', '1')
    monkeypatch.setenv('CONVIS_CACHE_DIR', str(tmp_path / 'cache'))
    for module, attr in ((native, '_RECURSION'), (loops, '_HEAT'), (ganglion_lif, '_NATIVE'), (noise, '_NATIVE')):
        monkeypatch.setattr(module, attr, [])
    assert all(lookup() is None for lookup in LIBRARIES.values())
    assert ganglion_lif.compiled_lif() is None
    assert not (tmp_path / 'cache').exists()
