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

Exit status: 0 on success, 2 for bad arguments, missing files, unreadable formats, invalid
configurations or an unavailable CUDA device (with a one-line message), 130 when interrupted
(the outputs written so far are complete files).
"""
import argparse
import logging
import os
import sys
import time

__all__ = ['main', 'build_parser']

logger = logging.getLogger('convis.cli')


class CLIError(Exception):
    """An error reported as one line, with exit status 2."""


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
    return config, inp, out


def _build_model(args, config):
    import convis
    if args.model == 'ln':
        model = convis.models.LN()
    else:
        model = convis.retina.Retina()
        if config is not None:
            try:
                model.parse_config(config)
            except (ValueError, KeyError, TypeError, OSError, SyntaxError) as e:
                raise CLIError('invalid configuration %r: %s' % (config, e)) from None
    if args.parameters is not None:
        try:
            model.load_parameters(args.parameters)
        except (ValueError, KeyError, TypeError, OSError) as e:
            raise CLIError('cannot load parameters from %r: %s' % (args.parameters, e)) from None
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


def _open_outputs(args, out, keys, outputs):
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
        outputs[k] = open_output(path, key=k, fps=args.fps, value_range=value_range,
                                 compression=None if args.compression == 'none' else args.compression)
    return names


def _command_run(args):
    import convis
    from convis.base import Output
    from convis.streams import open_input
    from convis.streams.base import model_output_frames
    config, inp_path, out_path = _split_paths(args)
    model = _build_model(args, config)
    inp = open_input(inp_path, size=tuple(args.size) if args.size else None, key=args.input_key)
    outputs = {}
    t0 = time.perf_counter()
    frames, interrupted = 0, False
    try:
        try:
            total = len(inp)
        except TypeError:
            total = None
        if args.max_frames is not None:
            total = args.max_frames if total is None else min(total, args.max_frames)
        first = inp.get(min(args.dt, total or 0))
        frames = int(first.shape[-3])
        if frames == 0:
            raise CLIError('the input %r has no frames' % inp_path)
        o = model.run(first, progress=False)
        keys = list(o.keys) if isinstance(o, Output) else ['output']
        names = _open_outputs(args, out_path, keys, outputs)
        for k, stream in outputs.items():
            stream.put(model_output_frames(o, k))
        runner = convis.Runner(model, inp, outputs, chunk_size=args.dt)
        try:
            frames += runner.run(total - frames, progress=not args.no_progress and not args.quiet)
        except KeyboardInterrupt:
            interrupted, frames = True, frames + runner.frames
    finally:
        for stream in outputs.values():
            stream.close()
        inp.close()
    seconds = time.perf_counter() - t0
    for k, path in names:
        logger.info('wrote %d frames of %s to %s', frames, k, path)
    logger.info('%d frames in %.1f s (%.0f frames/s)', frames, seconds, frames / seconds if seconds > 0 else 0.0)
    if interrupted:
        logger.warning('interrupted after %d frames; the output files hold them', frames)
        return 130
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


def _fail(message):
    sys.stderr.write('convis: error: %s\n' % message)
    return 2


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
    try:
        if args.command == 'info':
            return _command_info(args)
        return _command_run(args)
    except CLIError as e:
        return _fail(e.args[0])
    except (FileNotFoundError, IsADirectoryError, PermissionError, ValueError, KeyError, OSError, ImportError) as e:
        return _fail(e.args[0] if len(e.args) == 1 and isinstance(e.args[0], str) else str(e))
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


if __name__ == '__main__':
    sys.exit(main())
