"""KernelVolume: a 3-d view of a spatio-temporal kernel (ipyvolume isosurfaces).

A kernel :math:`w(t, x, y)` (the weight of a fitted LN model's convolution, a receptive field)
is shown as two isosurfaces, the positive lobes :math:`w = +\\ell \\max|w|` in red and the
negative lobes :math:`w = -\\ell \\max|w|` in blue, with the time axis drawn as ipyvolume's z axis.
A slider moves the level :math:`\\ell`.  Surfaces come from scikit-image's marching cubes.

>>> m = convis.models.LN((20, 9, 9))
>>> KernelVolume(m.conv.weight)           # doctest: +SKIP  (the ipyvolume Figure and a level slider)
"""
import ipyvolume
import ipywidgets as widgets
import numpy as np
import torch

__all__ = ['KernelVolume', 'kernel_3d', 'lobe_surfaces']


def kernel_3d(weight):
    """The kernel ``(t, x, y)`` of a weight: a 3-d array, or the first filter of a 4-d/5-d convolution weight."""
    if isinstance(weight, torch.Tensor):
        weight = weight.detach().float().cpu().numpy()
    w = np.asarray(weight, dtype=np.float32)
    while w.ndim > 3:
        w = w[0]
    if w.ndim != 3:
        raise ValueError('a kernel needs 3 dimensions (t, x, y), not the shape %s' % (np.shape(weight),))
    if not np.isfinite(w).all():
        raise ValueError('the kernel contains NaN or infinite values')
    return w


def lobe_surfaces(w, level):
    """Isosurfaces of the positive and negative lobes at ``level * max|w|``: two (vertices, faces) or None each.

    Vertices are ``(t, x, y)`` in samples.  A lobe that never reaches the level has no surface.
    """
    from skimage.measure import marching_cubes
    peak = float(np.abs(w).max())
    out = []
    for sign in (1.0, -1.0):
        v = sign * w
        threshold = level * peak
        if peak == 0 or v.max() <= threshold:
            out.append(None)
            continue
        # Pad so that lobes touching the border still close.
        padded = np.pad(v, 1, mode='constant', constant_values=min(float(v.min()), 0.0) - 1.0)
        verts, faces, _, _ = marching_cubes(padded, threshold)
        out.append((verts - 1.0, faces.astype(np.uint32)))
    return out


class KernelVolume(widgets.VBox):
    """A 3-d view of a spatio-temporal kernel: positive (red) and negative (blue) lobes, with a level slider.

    Parameters
    ----------
    weight : tensor, Parameter or array
        ``(t, x, y)``, or a convolution weight ``[out, in, t, x, y]`` (its first filter is shown)
    level : float
        the surface level as a fraction of the largest absolute value (0 < level < 1)
    dt : float or None
        seconds per time step, for the axis label
    """

    def __init__(self, weight, level=0.3, dt=None, size=400):
        self.kernel = kernel_3d(weight)
        t, x, y = self.kernel.shape
        self.figure = ipyvolume.Figure(width=size, height=size)
        self.figure.xlabel, self.figure.ylabel = 'y (px)', 'x (px)'
        self.figure.zlabel = 'time (steps)' if dt is None else 'time (steps of %g s)' % dt
        self.figure.xlim, self.figure.ylim = [0, max(y - 1, 1)], [0, max(x - 1, 1)]
        self.figure.zlim = [0, max(t - 1, 1)]
        self.meshes = [ipyvolume.Mesh(x=np.zeros(3), y=np.zeros(3), z=np.zeros(3),
                                      triangles=np.zeros((1, 3), np.uint32), color=c, visible=False)
                       for c in ('#d62728', '#1f77b4')]
        self.figure.meshes = list(self.meshes)
        self.level = widgets.FloatSlider(value=level, min=0.02, max=0.98, step=0.01, description='level',
                                         tooltip='surface level as a fraction of max |w|', continuous_update=False)
        self.info = widgets.HTML('')
        self.level.observe(lambda change: self._draw(), 'value')
        super().__init__([self.figure, widgets.HBox([self.level, self.info])])
        self.add_class('convis-kernel-volume')
        self._draw()

    def set_kernel(self, weight):
        """Shows another kernel (e.g. after more fitting)."""
        self.kernel = kernel_3d(weight)
        self._draw()

    def _draw(self):
        surfaces = lobe_surfaces(self.kernel, self.level.value)
        for mesh, surface in zip(self.meshes, surfaces):
            if surface is None:
                mesh.visible = False
                continue
            verts, faces = surface
            with mesh.hold_sync():
                mesh.x, mesh.y, mesh.z = verts[:, 2], verts[:, 1], verts[:, 0]
                mesh.triangles = faces
                mesh.visible = True
        peak = float(np.abs(self.kernel).max())
        self.info.value = 'kernel %s, max |w| = %.3g; red: w > %.3g, blue: w < -%.3g' % (
            'x'.join(str(n) for n in self.kernel.shape), peak, self.level.value * peak, self.level.value * peak)
