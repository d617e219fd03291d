"""The columnar engine's parts: facts, money and texts by columns."""
