"""Pure statistics: the quantile sketch, time windows of summaries, drift statistics and the
χ² quantiles their thresholds use. No I/O and no wall clock: every input, ``now`` included, is
an argument, so all of it is tested exactly and fast."""
