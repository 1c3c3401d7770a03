"""Command line: run a retina (VirtualRetina XML configuration) or an LN model over a video into a file.

::

    python -m convis run CONFIG.xml INPUT OUTPUT [--dt N] [--max-frames N] [--device cpu|cuda]
    python -m convis run --model ln --parameters fitted.npz INPUT OUTPUT
    python -m convis info FILE

INPUT is a video (mp4, avi, ...), an image sequence (a quoted glob ``'frames_*.png'`` or a
folder), an INR, npy/npz or HDF5 file.  OUTPUT is an HDF5, npy/npz, INR or video file; a
``{key}`` in its name writes every output of the model into its own file
(``out_{key}.h5`` -> ``out_ganglion_spikes_ON.h5``, ...).  The input is read and the output
written chunk by chunk (``--dt`` frames), so memory stays flat for any length.

An existing HDF5 output keeps its other datasets; a dataset of the same name is replaced only
with ``--overwrite``.  Every chunk is flushed to the output files as it is written, so a run
killed at any moment leaves readable files with the frames of the chunks written before.

Exit status: 0 on success, 1 when writing an output fails (a full or read-only disk: the files
keep the frames written before), 2 for bad arguments, missing, corrupt or unreadable files,
invalid configurations, an output that is one of the input files or an unavailable CUDA device
(with a one-line message), 130 when interrupted with Ctrl-C (SIGINT) and 143 when terminated
(SIGTERM); the outputs written so far are complete files.
"""
import argparse
import glob
import logging
import os
import signal
import sys
import threading
import time

__all__ = ['main', 'build_parser']

logger = logging.getLogger('convis.cli')


class CLIError(Exception):
    """An error reported as one line, with exit status ``status`` (2: bad arguments or files, 1: writing failed)."""

    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status


class Terminated(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM, so that a terminated run finishes its files like Ctrl-C."""

    signum = signal.SIGTERM


def build_parser():
    """The argparse parser of ``python -m convis``."""
    parser = argparse.ArgumentParser(
        prog='python -m convis',
        description='Run convis models of early vision over videos and image sequences.',
        epilog='Examples:\n'
               '  python -m convis run cat_X_cell.xml movie.mp4 spikes_{key}.h5 --dt 500\n'
               "  python -m convis run config.xml 'frames/*.png' out.inr --max-frames 2000\n"
               '  python -m convis run --model ln --parameters fitted.npz movie.mp4 response.npy\n'
               '  python -m convis info movie.mp4',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    run = sub.add_parser(
        'run', help='run a model over an input file into an output file',
        usage='python -m convis run [options] [CONFIG.xml] INPUT OUTPUT',
        description='Run a model over INPUT (chunk by chunk) and write its output to OUTPUT.',
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='Inputs:  video (.mp4 .avi .mov .mkv .webm ...), images (a quoted glob such as\n'
               "         'frames_*.png', a folder, or one image), .inr, .npy/.npz, .h5/.hdf5\n"
               'Outputs: .h5/.hdf5, .npy/.npz, .inr, video (.mp4 ...). "{key}" in OUTPUT writes\n'
               '         every output of the model into its own file.\n'
               'Frames are read as pixel values (0...255 for 8-bit images and videos).')
    run.add_argument('paths', nargs='+', metavar='PATH',
                     help='a VirtualRetina XML configuration (retina model), the input and the output')
    run.add_argument('--model', choices=('retina', 'ln'), default='retina',
                     help='retina: convis.retina.Retina configured by CONFIG.xml (default); '
                          'ln: convis.models.LN with --parameters')
    run.add_argument('--parameters', metavar='FILE.npz',
                     help='parameters saved with model.save_parameters (required for --model ln)')
    run.add_argument('--dt', type=int, default=500, metavar='N', help='frames per chunk (default 500)')
    run.add_argument('--max-frames', type=int, metavar='N', help='stop after N frames (default: the whole input)')
    run.add_argument('--device', choices=('cpu', 'cuda'), default='cpu', help='where to compute (default cpu)')
    run.add_argument('--seed', type=int, help='seed of the random numbers of the model (spiking noise)')
    run.add_argument('--output-key', metavar='NAME',
                     help='which output of the model to write (default: the first; see "{key}" above)')
    run.add_argument('--input-key', metavar='NAME', help='dataset of an HDF5 input or array of an .npz input')
    run.add_argument('--size', type=int, nargs=2, metavar=('X', 'Y'),
                     help='crop image and video frames to X rows and Y columns (centred)')
    run.add_argument('--fps', type=float, default=25, help='frames per second of a video output (default 25)')
    run.add_argument('--value-range', type=float, nargs=2, metavar=('LO', 'HI'),
                     help='values mapped to black and white in a video output (default: the first chunk\'s range)')
    run.add_argument('--compression', choices=('gzip', 'lzf', 'none'), default='gzip',
                     help='compression of an HDF5 output (default gzip)')
    run.add_argument('--overwrite', action='store_true',
                     help='replace a dataset of the same name in an existing HDF5 output (other datasets '
                          'are always kept)')
    run.add_argument('--no-progress', action='store_true', help='no progress bar')
    run.add_argument('-q', '--quiet', action='store_true', help='only errors')
    info = sub.add_parser('info', help='describe a stream file (frames, frame size)',
                          description='Print the number of frames, the frame size and the reader of a file.')
    info.add_argument('path', help='a video, image glob or folder, .inr, .npy/.npz or .h5 file')
    info.add_argument('--key', help='dataset of an HDF5 file or array of an .npz file')
    return parser


def _split_paths(args):
    paths = args.paths
    if len(paths) == 3:
        config, inp, out = paths
    elif len(paths) == 2:
        config, (inp, out) = None, paths
    else:
        raise CLIError('run takes [CONFIG.xml] INPUT OUTPUT, got %d path(s): %s' % (len(paths), ' '.join(paths)))
    if config is not None and args.model != 'retina':
        raise CLIError('a configuration file is read by the retina model only (not --model %s)' % args.model)
    if config is not None and not os.path.isfile(config):
        raise CLIError('configuration file %r does not exist' % config)
    if args.parameters is not None and not os.path.isfile(args.parameters):
        raise CLIError('parameter file %r does not exist' % args.parameters)
    if args.model == 'ln' and args.parameters is None:
        raise CLIError('--model ln needs --parameters FILE.npz (saved with model.save_parameters)')
    if args.dt < 1:
        raise CLIError('--dt must be at least 1 frame')
    if args.max_frames is not None and args.max_frames < 1:
        raise CLIError('--max-frames must be at least 1')
    if '{key}' not in out:
        _refuse_writing_an_input(out, _read_files(config, inp, args.parameters))
    return config, inp, out


def _short(text, n=200):
    text = ' '.join(str(text).split())
    return text if len(text) <= n else text[:n - 3] + '...'


def _read_files(config, inp, parameters):
    """``[(what, path)]`` of every file the run reads (a glob input: every file it matches)."""
    files = [('configuration file', config), ('parameter file', parameters)]
    inputs = sorted(glob.glob(inp)) if any(c in inp for c in '*?[') else [inp]
    return [(w, p) for w, p in files if p is not None] + [('input file', p) for p in inputs]


def _refuse_writing_an_input(out, read_files):
    """``CLIError`` when the output ``out`` is one of the files read (same real path or a hard link)."""
    for what, path in read_files:
        try:
            same = os.path.samefile(out, path)
        except OSError:
            same = os.path.realpath(out) == os.path.realpath(path)
        if same:
            raise CLIError('the output %r is the %s %r (the same file); writing it would destroy what is read: '
                           'choose another output' % (_short(out), what, _short(path)))


def _build_model(args, config):
    import convis
    if args.model == 'ln':
        model = convis.models.LN()
    else:
        model = convis.retina.Retina()
        if config is not None:
            try:
                model.parse_config(config)
            except Exception as e:
                raise CLIError('invalid configuration %r: %s' % (_short(config), _describe(e))) from None
    if args.parameters is not None:
        try:
            model.load_parameters(args.parameters)
        except Exception as e:
            raise CLIError('cannot load parameters from %r: %s' % (_short(args.parameters), _describe(e))) from None
    if args.seed is not None:
        if hasattr(model, 'seed'):
            model.seed(args.seed)
        else:
            import torch
            torch.manual_seed(args.seed)
    if args.device == 'cuda':
        import torch
        if not torch.cuda.is_available():
            raise CLIError('--device cuda: no CUDA device is available (torch %s); use --device cpu'
                           % torch.__version__)
        model.cuda()
    return model


def _open_outputs(args, out, keys, outputs, read_files):
    """Opens a stream for each output to write into ``outputs`` (``{output key: stream}``)."""
    from convis.streams import open_output
    value_range = tuple(args.value_range) if args.value_range else None
    if '{key}' in out:
        chosen = [args.output_key] if args.output_key else keys
        names = [(k, out.replace('{key}', k)) for k in chosen]
    else:
        names = [(args.output_key or keys[0], out)]
    unknown = [k for k, _ in names if k not in keys]
    if unknown:
        raise CLIError('the model has no output %r; its outputs are %s' % (unknown[0], ', '.join(keys)))
    for k, path in names:
        _refuse_writing_an_input(path, read_files)
    for k, path in names:
        try:
            outputs[k] = open_output(path, key=k, fps=args.fps, value_range=value_range, overwrite=args.overwrite,
                                     compression=None if args.compression == 'none' else args.compression)
        except (OSError, ValueError) as e:
            raise CLIError(_describe(e)) from None
    return names


def _describe(e):
    """One line saying what went wrong in ``e`` (its message, or its type when it has none)."""
    text = _short(e) if str(e).strip() else ''
    return text or type(e).__name__


def _open_input(args, inp_path):
    from convis.streams import open_input
    try:
        return open_input(inp_path, size=tuple(args.size) if args.size else None, key=args.input_key)
    except (FileNotFoundError, KeyError, ImportError, IsADirectoryError, PermissionError):
        raise
    except Exception as e:
        raise CLIError('cannot read input %r: %s' % (_short(inp_path), _describe(e))) from None


def _run_into(args, model, inp, inp_path, out_path, outputs, read_files):
    """Runs ``model`` over ``inp`` into the streams it opens in ``outputs``; returns the output names."""
    import convis
    from convis.base import Output
    from convis.locking import deferred_signals
    from convis.streams.base import model_output_frames
    try:
        total = len(inp)
    except TypeError:
        total = None
    if args.max_frames is not None:
        total = args.max_frames if total is None else min(total, args.max_frames)
    first = inp.get(min(args.dt, total or 0))
    frames = int(first.shape[-3])
    if frames == 0:
        raise CLIError('the input %r has no frames' % _short(inp_path))
    o = model.run(first, progress=False)
    keys = list(o.keys) if isinstance(o, Output) else ['output']
    names = _open_outputs(args, out_path, keys, outputs, read_files)
    with deferred_signals():
        for k, stream in outputs.items():
            stream.put(model_output_frames(o, k))
    runner = convis.Runner(model, inp, outputs, chunk_size=args.dt)
    runner.run(total - frames, progress=not args.no_progress and not args.quiet)
    return names


def _close_all(streams):
    """Closes every stream; the first error of a close (``CLIError``, status 1), raised after closing all."""
    error = None
    for stream in streams:
        try:
            stream.close()
        except Exception as e:
            error = error or CLIError(_describe(e), status=1)
    if error is not None:
        raise error


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()


def _command_run(args):
    config, inp_path, out_path = _split_paths(args)
    read_files = _read_files(config, inp_path, args.parameters)
    model = _build_model(args, config)
    inp = _open_input(args, inp_path)
    outputs, names, interrupted = {}, [], None
    t0 = time.perf_counter()
    try:
        names = _run_into(args, model, inp, inp_path, out_path, outputs, read_files)
    except KeyboardInterrupt as e:
        interrupted = e
    except OSError as e:
        raise CLIError(_describe(e), status=1) from None
    finally:
        try:
            _close_all(list(outputs.values()))
        finally:
            inp.close()
    frames = max([s.frames_written for s in outputs.values()] or [0])
    seconds = time.perf_counter() - t0
    for k, path in names:
        logger.info('wrote %d frames of %s to %s', frames, k, path)
    logger.info('%d frames in %.1f s (%.0f frames/s)', frames, seconds, frames / seconds if seconds > 0 else 0.0)
    if interrupted is not None:
        signum = getattr(interrupted, 'signum', signal.SIGINT)
        logger.warning('%s after %d frames; the output files hold them',
                       'terminated' if signum == signal.SIGTERM else 'interrupted', frames)
        return 128 + int(signum)
    return 0


def _command_info(args):
    from convis.streams import open_input
    s = open_input(args.path, key=args.key)
    try:
        try:
            n = '%d' % len(s)
        except TypeError:
            n = 'infinite'
        lines = ['file: %s' % args.path, 'reader: %s' % type(s).__name__, 'frames: %s' % n,
                 'frame size (x, y): %s' % (s.size,), 'channels: %s' % (s.channels or 1)]
        if getattr(s, 'fps', None):
            lines.append('frames per second: %g' % s.fps)
        sys.stdout.write('\n'.join(lines) + '\n')
    finally:
        s.close()
    return 0


def _fail(message, status=2):
    sys.stderr.write('convis: error: %s\n' % ' '.join(str(message).split()))
    return status


def main(argv=None):
    """Runs the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter('convis: %(message)s'))
    root = logging.getLogger('convis')
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.WARNING if getattr(args, 'quiet', False) else logging.INFO)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    if previous is None:
        previous = signal.SIG_DFL
    try:
        if args.command == 'info':
            return _command_info(args)
        return _command_run(args)
    except CLIError as e:
        return _fail(e.args[0], e.status)
    except KeyboardInterrupt as e:
        signum = getattr(e, 'signum', signal.SIGINT)
        logger.warning('%s before any output was written', 'terminated' if signum == signal.SIGTERM else 'interrupted')
        return 128 + int(signum)
    except (FileNotFoundError, IsADirectoryError, PermissionError, ValueError, KeyError, OSError, ImportError) as e:
        return _fail(e.args[0] if len(e.args) == 1 and isinstance(e.args[0], str) else str(e))
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
        root.removeHandler(handler)
        root.setLevel(level)


if __name__ == '__main__':
    sys.exit(main())
