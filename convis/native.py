"""Small compiled loops for the CPU: the parts of the retina that must step through time one step at a time.

The loops are C files shipped with the package (``convis/csrc/*.c``), compiled once with the system compiler
(``cc``, or ``$CC``) into a cache folder (:func:`cache_dir`: ``$CONVIS_CACHE_DIR``, else
``$XDG_CACHE_HOME/convis``, else ``~/.cache/convis``) and called through :mod:`cffi` (ABI mode: the cached
library is opened with ``ffi.dlopen``).  Their declarations live in one header, ``convis/csrc/convis_loops.h``:
every C file includes it (a definition that differs from it does not compile) and :func:`ffi` reads it, so a
call with the wrong number or types of arguments raises :class:`TypeError` instead of crashing.  Pointers are
passed typed (:func:`pointer`): a float32 tensor handed to a double loop is a TypeError as well.

Every compiled loop has a torch twin that computes the same, used without a compiler, on GPUs, with autograd,
or when the environment variable ``CONVIS_NO_COMPILE=1`` is set (the one switch for all of them); the tests
hold each loop against its twin.

The cache is trusted only when it is safe: a cache folder or library owned by another user, or writable by
group or others, is refused with a warning (a refused library is rebuilt in its place; a refused folder is
replaced by a private folder for the running process).  A library that cannot be loaded (truncated,
corrupt) is rebuilt once; only when the rebuilt one fails as well a warning says that the torch twin is
used; each library ends with a checksum that is verified before loading (a damaged library can crash the
process that loads it).  Libraries are written atomically (compiled under a temporary name in the same
folder, synced, then renamed), so a killed build never leaves a half-written library behind.  A library's
name holds a hash of its C file, the headers, the compiler, its flags and the processor.

Loops here: :func:`recursion_loop`, the first-order recursion ``y[s] = e y[s-1] + g x[s]`` (the exponential
low-pass), one pass over the data instead of the time-parallel block products autograd and GPUs use; the
retina's loops are in :mod:`convis.functional.retina_loops`, the ganglion cells' spiking loop in
:mod:`convis.functional.lif`, the noise in :mod:`convis.noise`.  Every loop splits its cells (or the rows of its
blurs) over OpenMP threads where it is built with OpenMP (:data:`OPENMP`), with the same operations in the same
order for every cell, so that its results do not depend on the number of threads.  The band helpers
(:func:`matrix_band`, :func:`matrix_diagonals`) find the part of a blur matrix that matters in the working precision.
"""
import atexit
import hashlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import sysconfig
import tempfile
import threading
import warnings

import torch

__all__ = ['compile_c_library', 'cache_dir', 'library_path', 'ffi', 'pointer', 'recursion_loop', 'matrix_band',
           'matrix_diagonals', 'BAND_TOLERANCE', 'CSRC', 'HEADER']

CSRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'csrc')
"""The folder of the C files (package data)."""
HEADER = 'convis_loops.h'
"""The header in :data:`CSRC` that declares every compiled function and structure (the signature table)."""

__all__ = ['compile_c_library', 'cache_dir', 'library_path', 'recursion_loop', 'matrix_band', 'matrix_diagonals',
           'BAND_TOLERANCE']

_LOG = logging.getLogger('convis')

_LOADED = {}
"""Library name -> path of the compiled library this process loaded (absent: not loaded, torch twin used)."""
_LIBS = {}
"""Path of a loaded library -> the cffi library object (kept so that the library stays open)."""
_FFI = []
_FFI_LOCK = threading.Lock()
_PRIVATE = []
"""The private cache folder of this process, made when the configured one is refused (see :func:`cache_dir`)."""
_WARNED = set()
_LOCK = threading.Lock()


def _machine_tag():
    """What the compiled code depends on besides its source: the processor's instruction sets."""
    flags = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith(('flags', 'Features')):
                    flags = line
                    break
    except OSError:
        pass
    return platform.machine() + flags


def _flags(contract):
    """Compiler flags: optimised, strict IEEE arithmetic (no reassociation; fused multiply-adds only with
    ``contract``); math functions need not set errno (results are unchanged, loops can vectorise)."""
    return ['-O3', '-fPIC', '-shared', '-fno-fast-math', '-fno-math-errno',
            '-ffp-contract=%s' % ('fast' if contract else 'off')]


OPENMP = ['-fopenmp']
"""The flag that turns on the loops' OpenMP threads (their ``#pragma omp`` lines).  A compiler without OpenMP
builds the same loops on one thread.  With OpenMP the library uses the process's OpenMP runtime, the one torch
runs its own thread pool on, so the loops run on as many threads as ``torch.set_num_threads`` allows (read
per calling thread with ``omp_get_max_threads``) and never on more."""


def _compile(cc, src, out, native_arch, contract, include=()):
    """Compiles ``src`` into the library ``out``: for this processor when ``native_arch``, with OpenMP where the
    compiler has it (else without: the loops then run on one thread).  The headers ``include`` (paths, or names
    of system headers) are read before ``src``, in order (``-include``), so a definition that differs from its
    declaration there does not compile."""
    args = [cc] + _flags(contract) + (['-march=native'] if native_arch else [])
    for header in include:
        args += ['-include', header]
    try:
        subprocess.run(args + OPENMP + [src, '-o', out, '-lm'], check=True, capture_output=True, timeout=120)
    except subprocess.CalledProcessError:
        subprocess.run(args + [src, '-o', out, '-lm'], check=True, capture_output=True, timeout=120)


def _untrusted(st, kind):
    """Why a cache entry with ``os.stat`` result ``st`` must not be used (None when it may)."""
    if kind == 'folder' and not stat.S_ISDIR(st.st_mode):
        return 'not a folder'
    if kind == 'file' and not stat.S_ISREG(st.st_mode):
        return 'not a regular file'
    if st.st_uid != os.getuid():
        return 'owned by user id %d, not by the current user (%d)' % (st.st_uid, os.getuid())
    if st.st_mode & 0o022:
        return 'writable by group or others (mode %03o)' % (st.st_mode & 0o777)
    return None


def _warn_once(message):
    if message not in _WARNED:
        _WARNED.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _private_dir():
    if not _PRIVATE:
        path = tempfile.mkdtemp(prefix='convis-cache-')      # mode 0700, owned by the current user
        atexit.register(shutil.rmtree, path, True)
        _PRIVATE.append(path)
    return _PRIVATE[0]


def cache_dir():
    """The folder compiled libraries are cached in (made with mode 0700 when missing).

    ``$CONVIS_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/convis``, else ``~/.cache/convis``.  A folder
    owned by another user, or writable by group or others, is refused with a warning: the libraries then
    go to a private temporary folder of this process (removed at exit).
    """
    configured = os.environ.get('CONVIS_CACHE_DIR') or os.path.join(
        os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache'), 'convis')
    try:
        os.makedirs(configured, mode=0o700, exist_ok=True)
        why = _untrusted(os.stat(configured), 'folder')
    except OSError as e:
        why = 'not usable (%s)' % e
    if why is None:
        return configured
    _warn_once('convis: the cache folder %s is %s; compiled libraries are built in a private folder instead'
               % (configured, why))
    return _private_dir()


def _read(path):
    with open(path, 'rb') as fh:
        return fh.read()


def _sources(name, folder=CSRC, source=None, header=None):
    """The files a library is built from: ``{file name: bytes}`` of the C file ``source`` (a file name in
    ``folder``; default ``<name>.c``) and every header of ``folder`` (default :data:`CSRC`), and the header
    file ``header`` (a path, anywhere) where one is given (read once: the bytes hashed are the bytes compiled).
    Raises ValueError when ``header`` has the name of a different header of ``folder``."""
    names = [source or name + '.c'] + sorted(f for f in os.listdir(folder) if f.endswith('.h'))
    files = {f: _read(os.path.join(folder, f)) for f in names}
    if header is not None:
        key, data = os.path.basename(header), _read(header)
        if files.get(key, data) != data:
            raise ValueError('the header %s differs from %s, which has the same name'
                             % (header, os.path.join(folder, key)))
        files[key] = data
    return files


def library_path(name, contract=False, sources=None):
    """Where :func:`compile_c_library` caches the library ``name`` built from ``csrc/<name>.c``: the file name
    holds a hash of the C file and the headers (``sources``, default :func:`_sources`), the compiler, its flags
    and the processor, so any change builds a new library."""
    cc = os.environ.get('CC', 'cc')
    tag = hashlib.sha1()
    for f, data in sorted((sources or _sources(name)).items()):
        tag.update(f.encode() + b'\0' + hashlib.sha1(data).digest())
    tag.update(('\0%s\0%s\0%s' % (cc, ' '.join(_flags(contract) + OPENMP), _machine_tag())).encode())
    suffix = sysconfig.get_config_var('SHLIB_SUFFIX') or '.so'
    return os.path.join(cache_dir(), '%s_%s%s' % (name, tag.hexdigest()[:12], suffix))


def _build(name, sources, path, contract, source=None, include=()):
    """Compiles ``sources`` (``{file name: bytes}``, the C file ``source`` (default ``<name>.c``) and its
    headers) to ``path`` atomically: under a temporary name in the same folder, synced, renamed.  ``include``
    names headers the compiler reads before the C file, in order: headers of ``sources``, or system headers."""
    cc = os.environ.get('CC', 'cc')
    folder = os.path.dirname(path)
    with tempfile.TemporaryDirectory(dir=folder, prefix='.build-%s-' % name) as tmp:
        for f, data in sources.items():
            with open(os.path.join(tmp, f), 'wb') as fh:
                fh.write(data)
        src, out = os.path.join(tmp, source or name + '.c'), os.path.join(tmp, name + '.so')
        include = [os.path.join(tmp, h) if h in sources else h for h in include]
        try:
            _compile(cc, src, out, True, contract, include)
        except subprocess.CalledProcessError:      # a compiler without -march=native
            _compile(cc, src, out, False, contract, include)
        with open(out, 'r+b') as f:
            f.write(_trailer(f.read()))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(out, 0o755)
        os.replace(out, path)
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_CHECKSUM = b'convis-sha256:'
"""Every library ends with this mark and the SHA-256 of the bytes before it (the system loader ignores bytes
past the end of a library), so a damaged or truncated library is found before it is loaded: loading one
can crash the process."""


def _trailer(data):
    return _CHECKSUM + hashlib.sha256(data).digest()


def ffi():
    """The :class:`cffi.FFI` that knows the declarations of :data:`HEADER` (made once; its preprocessor lines
    are left out, as cffi reads declarations only)."""
    with _FFI_LOCK:
        if not _FFI:
            import cffi
            with open(os.path.join(CSRC, HEADER)) as f:
                declarations = ''.join(line for line in f if not line.lstrip().startswith('#'))
            table = cffi.FFI()
            table.cdef(declarations)
            _FFI.append(table)
        return _FFI[0]


_POINTER_TYPES = {torch.float32: 'float *', torch.float64: 'double *', torch.int64: 'int64_t *'}
_POINTERS = {}


def pointer(t):
    """A typed C pointer to the data of the contiguous CPU tensor ``t`` (float32: ``float *``, float64:
    ``double *``, int64: ``int64_t *``; None: NULL) for the compiled functions, which refuse a pointer of
    another type with TypeError.  The tensor must stay alive while the pointer is used.  Raises TypeError
    for other dtypes, ValueError for a tensor off the CPU or not contiguous."""
    table = _FFI[0] if _FFI else ffi()
    if t is None:
        return table.NULL
    ctype = _POINTERS.get(t.dtype)
    if ctype is None:
        if t.dtype not in _POINTER_TYPES:
            raise TypeError('no C pointer type for %s tensors' % (t.dtype,))
        ctype = _POINTERS[t.dtype] = table.typeof(_POINTER_TYPES[t.dtype])
    if t.device.type != 'cpu' or not t.is_contiguous():
        raise ValueError('the compiled loops take contiguous CPU tensors, not a %s tensor%s'
                         % (t.device, '' if t.is_contiguous() else ' with strides %s' % (t.stride(),)))
    return table.cast(ctype, t.data_ptr())


def _load(name, path, functions, table=None):
    """Opens the library at ``path`` with the :class:`cffi.FFI` ``table`` (default :func:`ffi`) after checking
    its checksum; returns ``{function name: cffi function}`` for ``functions`` (None: every name declared in
    ``table``).  Raises OSError (damaged) or AttributeError (a function missing)."""
    data = _read(path)
    n = len(_CHECKSUM) + 32
    if len(data) < n or data[-n:] != _trailer(data[:-n]):
        raise OSError('%s is damaged (its checksum does not match)' % path)
    lib = (table or ffi()).dlopen(path)
    fns = {fname: getattr(lib, fname) for fname in (dir(lib) if functions is None else functions)}
    _LIBS[path] = lib
    return fns


def _build_unless_cached(name, sources, path, contract, **build):
    """Builds the library at ``path`` (:func:`_build` with ``build``) unless a trusted one is there already; a
    cached library that is not trusted is refused with a warning and rebuilt.  Returns whether it built."""
    try:
        why = _untrusted(os.lstat(path), 'file')
    except FileNotFoundError:
        why = 'missing'
    if why != 'missing' and why is not None:
        _warn_once('convis: the cached library %s is %s; refusing it and building it anew' % (path, why))
    if why is not None:
        _build(name, sources, path, contract, **build)
    return why is not None


def _load_or_rebuild(name, sources, path, functions, contract, table=None, **build):
    """:func:`_load`; a library that does not load is rebuilt once, and when that fails too a warning says so
    and None is returned."""
    try:
        return _load(name, path, functions, table)
    except (OSError, AttributeError) as first:
        _LOG.warning('compiled %s at %s does not load (%s); building it anew', name, path, first)
        try:
            _build(name, sources, path, contract, **build)
            return _load(name, path, functions, table)
        except (OSError, AttributeError, subprocess.SubprocessError) as e:
            _warn_once('convis: the compiled library %s cannot be loaded even after rebuilding it (%s); '
                       'using the (slower) torch operations' % (path, e))
            return None


def compile_c_library(name, functions, contract=False):
    """Builds ``convis/csrc/<name>.c`` once with the system compiler (cached in :func:`cache_dir`) and opens it.

    ``functions`` names the functions to look up (each declared in :data:`HEADER`).  The code is built for
    this processor (``-march=native``, falling back to the generic target) with strict IEEE arithmetic;
    ``contract=True`` allows fused multiply-adds (for loops that need not match a torch twin bit for bit).
    Returns a dict ``name -> cffi function`` (arguments checked against the header: a wrong count or type
    raises TypeError; pass tensors as :func:`pointer`), or None when compiling is impossible (no compiler,
    no cffi) or ``CONVIS_NO_COMPILE`` is set: every compiled loop of convis has a torch twin that computes
    the same.

    A cached library owned by another user or writable by group or others is refused (warning) and
    rebuilt; one that does not load (corrupt, truncated) is rebuilt once, and if that fails too a warning
    says the torch twin is used.
    """
    if os.environ.get('CONVIS_NO_COMPILE'):
        return None
    with _LOCK:
        try:
            ffi()
            sources = _sources(name)
            path = library_path(name, contract, sources)
            _build_unless_cached(name, sources, path, contract)
        except (ImportError, OSError, subprocess.SubprocessError) as e:  # no compiler, no write access...
            _LOG.info('compiled %s unavailable (%s); using torch operations', name, e)
            return None
        fns = _load_or_rebuild(name, sources, path, functions, contract)
        if fns is not None:
            _LOADED[name] = path
        return fns


BAND_TOLERANCE = {torch.float32: 1e-12, torch.float64: 1e-24}
"""Matrix entries smaller than this times the largest entry of their row are left out of the banded
products (their contribution is far below the rounding of the working precision)."""


def _significant(a, tolerance):
    """``|a[..., i, k]| > tolerance * max_k |a[..., i, k]|`` (float64, CPU)."""
    mag = a.detach().abs().to(torch.float64).cpu()
    return mag > tolerance * mag.amax(dim=-1, keepdim=True)


def _ranges(keep):
    """Per row of the boolean matrix ``keep``, the smallest half-open column range ``[lo, hi)`` holding its
    True entries (``[0, 0)`` for a row without any)."""
    n = keep.shape[1]
    cols = torch.arange(n)
    lo = torch.where(keep, cols, torch.full_like(cols, n)).amin(dim=1)
    hi = torch.where(keep, cols, torch.full_like(cols, -1)).amax(dim=1) + 1
    empty = hi <= lo
    lo[empty], hi[empty] = 0, 0
    return lo.contiguous(), hi.contiguous()


def matrix_band(a, tolerance):
    """Per row ``i`` of the square matrix ``a``, the half-open column range ``[lo, hi)`` outside of which every
    entry is below ``tolerance`` times the row's largest magnitude.  Returns two int64 tensors (CPU)."""
    return _ranges(_significant(a, tolerance))


def matrix_diagonals(a, tolerance, width=None):
    """The significant entries of a square matrix ``a`` ``[N, N]`` (or of each of a stack ``[L, N, N]``) by diagonals:
    ``(D, K)`` with ``D[(l,) d + K, j] = a[(l,) j, j + d]`` for ``|d| <= K`` (0 where the entry is below ``tolerance``
    times the largest of its row, or outside the matrix), K the widest reach of a significant entry from the
    diagonal.  ``x @ a^T`` then is ``sum_d D[d + K, j] x[..., j + d]``.  D is float64 on the CPU, with ``width``
    columns (default N; columns past N are 0)."""
    mats = a.detach().to(torch.float64).cpu()
    single = mats.dim() == 2
    mats = mats[None] if single else mats
    keep = _significant(mats, tolerance)
    line, rows, cols = keep.nonzero(as_tuple=True)
    k = int((cols - rows).abs().max()) if len(rows) else 0
    diag = torch.zeros((mats.shape[0], 2 * k + 1, width or mats.shape[-1]), dtype=torch.float64)
    diag[line, cols - rows + k, rows] = mats[line, rows, cols]
    return (diag[0] if single else diag), k


_RECURSION = []


def _recursion_functions():
    if not _RECURSION:
        fns = compile_c_library('recursion', ['convis_recursion_f64', 'convis_recursion_f32'], contract=True)
        _RECURSION.append(None if fns is None else {torch.float64: fns['convis_recursion_f64'],
                                                    torch.float32: fns['convis_recursion_f32']})
    return _RECURSION[0]


def recursion_loop(x, e, y_prev, gain):
    """``y[s] = e y[s-1] + gain x[s]`` along the middle axis of ``x`` ``[P, T, Q]`` as a compiled loop.

    ``y_prev`` is ``[P, 1, Q]`` (any strides), ``e`` and ``gain`` numbers.  CPU float32/float64 tensors
    without gradient; returns ``y`` ``[P, T, Q]`` or None when no compiled loop is available.
    """
    fns = _recursion_functions()
    if fns is None or x.dtype not in fns or x.device.type != 'cpu':
        return None
    x = x.detach().contiguous()
    y0 = y_prev.detach().to(x.dtype).contiguous()
    y = torch.empty_like(x)
    fns[x.dtype](x.shape[0], x.shape[1], x.shape[2], pointer(x), pointer(y), pointer(y0), _number(e), _number(gain))
    return y


def _number(v):
    return float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
