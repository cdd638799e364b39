"""Tailing log files: the only part of the package that opens log files or talks to watchdog.

``tailer.Tailer`` follows the configured sources through rotation, truncation and restarts;
``tracked`` holds one followed file's state, ``fileident`` its identity, ``linebuf`` turns reads
into whole lines, ``positions`` checkpoints offsets, and ``watch`` wakes the loop on events."""
