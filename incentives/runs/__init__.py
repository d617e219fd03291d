"""A run, resolved once: records in partner order → evaluated (by columns or per record) → resolved → a sink.

:mod:`.order` puts a run's records in partner_id order (whole partners follow
each other, so everything a run resolves about a partner is in one block);
:mod:`.resolve` applies the run rules to a block of evaluated records on their
keys (duplicates, claims without a record, coverage, the output order) and
plans budgets; :mod:`.rows` holds a block's results as one frame of keys (and,
for files, their texts) and tallies totals and counts; :mod:`.pipeline` runs
the whole: ``Engine.run_to`` writes the files, ``Engine.run`` keeps the results
in memory, both through the same steps.
"""
