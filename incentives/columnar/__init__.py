"""The columnar engine's parts: facts by columns, one program over a block, CSV rows by columns."""
