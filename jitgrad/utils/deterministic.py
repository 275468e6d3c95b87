"""``fill_uninitialized_memory``: whether, in deterministic mode
(``jitgrad.use_deterministic_algorithms(True)``), ``empty`` and its relatives fill new
memory with NaN (the dtype's largest value for integers, True for bool). True by default."""

fill_uninitialized_memory = True
