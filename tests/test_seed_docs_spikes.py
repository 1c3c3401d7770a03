"""The seed documentation's quickstart "Generating Spikes" runs unchanged and produces spikes."""
import matplotlib
import matplotlib.pyplot as plt
import numpy as np

QUICKSTART = """
import convis
import numpy as np
some_input = convis.samples.moving_grating()
spk = convis.filters.spiking.LeakyIntegrateAndFireNeuron()
spk.p.g_L = 1.0
o = spk.run(20.0*some_input,dt=100)
plt.figure()
o.plot(mode='lines')
"""


def test_quickstart_generating_spikes_runs_and_fires():
    matplotlib.use('Agg')
    plt.close('all')
    namespace = {'plt': plt}
    exec(compile(QUICKSTART, 'quickstart_spikes', 'exec'), namespace)
    spikes = np.asarray(namespace['o'][0])
    assert spikes.shape == (1, 1, 2000, 20, 20)
    assert set(np.unique(spikes)) == {0.0, 1.0}
    rate = spikes.mean() * 1000.0                      # spikes per second at the default 1000 steps/s
    assert 100.0 < rate < 250.0
    per_pixel = spikes[0, 0].sum(axis=0)
    assert per_pixel.min() > 100                       # every pixel fires during its bright phases
    assert len(plt.get_fignums()) >= 1
    plt.close('all')
