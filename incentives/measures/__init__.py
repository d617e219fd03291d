"""Measures: partner facts computed from transaction files (SPEC "Measures from transactions").

:mod:`.model` is a measures file's model and its checks; ``incentives.loading``
loads ``kind: measures`` files with the programs.
"""
