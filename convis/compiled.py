"""Compiled loops of your own: a C file of yours, built, cached and called the way convis builds its own loops.

A recurrence that must step through time (a spiking neuron, a gain control) runs one small torch operation per
step and per equation; in C the same loop is one pass over the data.  :func:`load` compiles a C file with the
system compiler (``cc``, or ``$CC``), caches the library in :func:`convis.native.cache_dir` and opens it with
:mod:`cffi`, with every rule of convis' own loops (:mod:`convis.native`): the library's name holds a hash of
the C file, the headers beside it, the declarations, the compiler, its flags and the processor (any change
builds a new one; an unchanged file is not compiled again); cached libraries owned by another user or
writable by others are refused and rebuilt; each ends with a checksum verified before it is opened; builds are
written atomically; strict IEEE arithmetic (no fused multiply-adds unless ``contract=True``), so a loop that
does the operations of its torch twin in the same order gives the same numbers; ``CONVIS_NO_COMPILE=1``
switches compiling off.

The declarations (C prototypes, as in a header) do two things: cffi checks every call against them (a wrong
number or type of arguments raises TypeError instead of crashing; pass tensors as :func:`pointer`), and the
compiler reads them before the C file (``-include``), so a definition that differs from its declaration does
not compile.

Example: ``adapting_lif.c`` defines the function ``adapting_lif_f64`` and ``DECLARATIONS`` holds its prototype
(the whole example is the last section of notebook 05, and ``tests/test_user_compiled.py``)::

    lib = convis.compiled.load('adapting_lif', 'adapting_lif.c', declarations=DECLARATIONS)
    if lib is not None:                     # None: no compiler here, or CONVIS_NO_COMPILE=1 (use torch)
        lib.adapting_lif_f64(P, T, Q, pointer(x), pointer(v), pointer(a), pointer(s), em, ea, ...)

Keep the torch loop of the same equations beside it: it is the reference to test the C loop against, and what
runs on GPUs, with autograd and where nothing can be compiled.
"""
import logging
import os
import re
import subprocess
import warnings

from . import native
from .native import pointer

__all__ = ['load', 'Library', 'CompileError', 'pointer']

_LOG = logging.getLogger('convis')

_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*\Z')
_LIBRARIES = {}
"""Path of a compiled library -> its :class:`Library` (each library is opened once per process)."""
_SYSTEM_HEADERS = ('stddef.h', 'stdint.h')
"""Read before declarations given as text, so that they may use ``size_t`` and ``int64_t``."""


class CompileError(RuntimeError):
    """A C file that does not compile (or lacks a function it declares): the message holds the compiler's.

    ``source`` is the C file, ``compiler_message`` what the compiler printed (file names in it point at the
    folder of ``source``)."""

    def __init__(self, source, compiler_message):
        self.source, self.compiler_message = source, compiler_message
        super().__init__('%s does not compile:\n%s' % (source, compiler_message))


class Library:
    """The functions of a C file compiled by :func:`load`, called through cffi: ``lib.<function>(...)``.

    Every call is checked against the declarations (TypeError for a wrong count or type of arguments).
    ``functions`` lists the names, ``path`` is the cached library, ``ffi`` the :class:`cffi.FFI` that knows
    the declarations."""

    def __init__(self, name, path, table, functions):
        self.name, self.path, self.ffi = name, path, table
        self._functions = dict(functions)

    @property
    def functions(self):
        """The names of the declared functions, sorted."""
        return tuple(sorted(self._functions))

    def __getattr__(self, attr):
        functions = self.__dict__.get('_functions', {})
        if attr in functions:
            return functions[attr]
        raise AttributeError('the compiled library %r declares no %r (it declares %s)'
                             % (self.__dict__.get('name'), attr, ', '.join(sorted(functions)) or 'nothing'))

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._functions))

    def __repr__(self):
        return '<convis.compiled.Library %r: %s>' % (self.name, ', '.join(self.functions))


def _existing(path, what):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError('the %s must be a path, not %s' % (what, type(path).__name__))
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise FileNotFoundError('no %s at %s' % (what, path))
    return path


def _declarations(text):
    """The declarations without preprocessor lines (cffi reads declarations only)."""
    return ''.join(line for line in text.splitlines(True) if not line.lstrip().startswith('#'))


def _compiler_message(error, name, folder):
    """What the compiler printed, with the temporary build folder replaced by the C file's folder."""
    text = error.stderr.decode(errors='replace') if isinstance(error.stderr, bytes) else (error.stderr or '')
    text = re.sub(r'\S*/\.build-%s-[^/\s]*/' % re.escape(name), lambda m: folder + os.sep, text)
    return text.strip() or 'the compiler exited with status %s' % error.returncode


def load(name, source, declarations=None, header=None, contract=False):
    """Compiles the C file ``source`` once (cached) and opens it: a :class:`Library` of its declared functions.

    ``name`` names the library (letters, digits, underscores: it becomes part of a file name).  The functions
    are declared either as text (``declarations``, C prototypes; ``<stdint.h>`` and ``<stddef.h>`` types may
    be used) or as a header file (``header``, a path; its ``#`` lines are left to the compiler), exactly one of
    the two.  The headers in the folder of ``source`` are copied and hashed with it, so the C file may include
    them.  ``contract=True`` allows fused multiply-adds (faster, but no longer the same bits as torch).

    Returns None when nothing can be compiled here (no compiler, no :mod:`cffi`, no usable cache folder: with a
    warning) or when the environment variable ``CONVIS_NO_COMPILE`` is set; the caller then runs its torch loop.

    Raises FileNotFoundError for a missing C file or header, :class:`CompileError` (with the compiler's message)
    for a C file that does not compile, differs from its declarations or lacks a declared function, ValueError
    for a bad name or declarations cffi cannot read, TypeError when not exactly one of ``declarations`` and
    ``header`` is given.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError('a library name is letters, digits and underscores (not starting with a digit), not %r'
                         % (name,))
    if (declarations is None) == (header is None):
        raise TypeError('give the declarations of the C functions either as text (declarations=) or as a header '
                        'file (header=): exactly one of the two')
    source = _existing(source, 'C file')
    if not source.endswith('.c'):
        raise ValueError('the C file must end with .c, not %s' % source)
    if header is not None:
        header = _existing(header, 'header')
    elif not isinstance(declarations, str):
        raise TypeError('declarations= is C text, not %s' % type(declarations).__name__)
    if os.environ.get('CONVIS_NO_COMPILE'):
        return None
    try:
        import cffi
    except ImportError as e:
        warnings.warn('convis.compiled: cffi is missing (%s); %s is not compiled' % (e, name), RuntimeWarning,
                      stacklevel=2)
        return None
    text = declarations if header is None else native._read(header).decode()
    table = cffi.FFI()
    try:
        table.cdef(_declarations(text))
    except (cffi.CDefError, cffi.FFIError) as e:
        raise ValueError('the declarations of %s cannot be read: %s' % (name, e)) from None
    folder, base = os.path.split(source)
    with native._LOCK:
        try:
            sources = native._sources(name, folder, base, header)
            if header is None:
                include = name + '.declarations.h'
                if include in sources:
                    raise ValueError('%s is in the way of the declarations (rename it)' % os.path.join(folder, include))
                sources[include] = text.encode() + b'\n'
                include = _SYSTEM_HEADERS + (include,)
            else:
                include = (os.path.basename(header),)
            path = native.library_path(name, contract, sources)
            build = {'source': base, 'include': include}
            built = native._build_unless_cached(name, sources, path, contract, **build)
            if path in _LIBRARIES and not built:
                return _LIBRARIES[path]
            try:
                functions = native._load(name, path, None, table)
            except (OSError, AttributeError) as first:
                if not built:                  # damaged, or not what the hash says: built anew once
                    _LOG.warning('compiled %s at %s does not load (%s); building it anew', name, path, first)
                    native._build(name, sources, path, contract, **build)
                try:
                    functions = native._load(name, path, None, table)
                except AttributeError as e:
                    raise CompileError(source, 'a declared function is not defined in it (%s)' % e) from None
        except subprocess.CalledProcessError as e:
            raise CompileError(source, _compiler_message(e, name, folder)) from None
        except (OSError, subprocess.SubprocessError) as e:        # no compiler, no cache folder, ...
            warnings.warn('convis.compiled: %s cannot be compiled or opened here (%s); load returns None'
                          % (name, e), RuntimeWarning, stacklevel=2)
            return None
        if not functions:
            raise ValueError('the declarations of %s declare no function' % name)
        library = _LIBRARIES[path] = Library(name, path, table, functions)
        return library
