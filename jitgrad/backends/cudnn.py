"""``jitgrad.backends.cudnn``: jitgrad does not use cuDNN (its convolutions are its own
kernels), so ``is_available()`` is False and the switches change nothing."""

enabled = True
benchmark = False
benchmark_limit = 10
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version():
    return None
