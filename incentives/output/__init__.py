"""The output layer: where a run's files go and how they get there.

:mod:`incentives.output.folder` is the output folder itself: locked while a run
writes it, written fresh beside it, and switched in whole, so that a reader
never sees a mixed or half-written run. (Rendering the files' text still lives
in :mod:`incentives.export` and :mod:`incentives.streaming`.)
"""
