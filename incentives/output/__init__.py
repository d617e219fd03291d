"""The output layer: where a run's files go and how they get there.

:mod:`incentives.output.folder` is the output folder itself: locked while a run
writes it, written fresh beside it, and switched in whole, so that a reader
never sees a mixed or half-written run. :mod:`incentives.output.files` renders a
run's files (the one CSV cell rule every CSV writer uses) and writes an in-memory
run there (``write_run``); the streaming run renders its own in :mod:`incentives.streaming`.
"""
