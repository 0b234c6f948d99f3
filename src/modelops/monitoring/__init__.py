"""Monitoring: data drift, prediction drift and performance decay against a reference profile.

At train time the bundle gets a *reference profile* of the training split
(``modelops.profile``): bin edges and counts, missing rates and a KS sample per
numeric feature, category frequencies, and the distribution of predictions.
Later batches are checked against it:

- ``statistics``: PSI, the streamed exact KS test, chi-square, binning;
- ``check``: ``monitor`` streams a batch CSV in chunks into an ``Accumulator`` of counts,
  so memory does not grow with the batch;
- ``verdict``: pure functions from the counts, the profile and ``MonitorParams`` to the report;
- ``render``: the report as text, Markdown or JSON;
- ``demo``: ``make_batch``, seeded batches with one kind of drift.

Every submodule imports numpy, scipy and pandas inside its functions, so importing this
package (the CLI does, for ``SHIFTS``) stays cheap.
"""

from modelops.errors import BatchError
from modelops.monitoring.accumulator import Accumulator, Chunk
from modelops.monitoring.check import monitor, monitor_logged
from modelops.monitoring.demo import SHIFTS, make_batch
from modelops.monitoring.render import render
from modelops.monitoring.statistics import EPS, FeatureDrift, KSCounter, psi

__all__ = [
    "EPS",
    "SHIFTS",
    "Accumulator",
    "BatchError",
    "Chunk",
    "FeatureDrift",
    "KSCounter",
    "make_batch",
    "monitor",
    "monitor_logged",
    "psi",
    "render",
]
