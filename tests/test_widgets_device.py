"""Where the explorer runs its previews: ``device='auto'`` picks the GPU only where it is faster."""
import torch

import convis
from convis_widgets import explorer


class _Recorder(convis.Layer):
    def __init__(self):
        super().__init__()
        self.moved = []

    def cuda(self, device=None):
        self.moved.append('cuda')
        return self


def test_auto_keeps_small_previews_on_the_cpu_with_compiled_loops(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(explorer, '_cpu_loops_compiled', lambda: True)
    m = _Recorder()
    explorer._choose_device(m, 'auto', (500, 64, 64))
    assert m.moved == []
    explorer._choose_device(m, 'auto', (500, 256, 256))
    assert m.moved == ['cuda']


def test_auto_uses_the_gpu_when_the_cpu_has_no_compiled_loops(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(explorer, '_cpu_loops_compiled', lambda: False)
    m = _Recorder()
    explorer._choose_device(m, 'auto', (500, 64, 64))
    assert m.moved == ['cuda']


def test_auto_without_a_gpu_stays_on_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    m = _Recorder()
    assert explorer._choose_device(m, 'auto', (500, 512, 512)).type == 'cpu'
    assert m.moved == []
