"""Grad modes: whether operations record the graph. Per thread, as in torch."""

from __future__ import annotations

import functools
import inspect
import threading


class _State(threading.local):
    enabled = True
    inference = False


state = _State()


def is_grad_enabled() -> bool:
    return state.enabled


def is_inference_mode_enabled() -> bool:
    return state.inference


def _decorate(fn, make_ctx):
    """`fn` run inside a fresh context from `make_ctx()`; for a generator function, each
    step of the generator runs inside one, as in torch."""
    if not inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with make_ctx():
                return fn(*args, **kwargs)
        return wrapper

    @functools.wraps(fn)
    def gen_wrapper(*args, **kwargs):
        with make_ctx():
            gen = fn(*args, **kwargs)
        try:
            with make_ctx():
                response = gen.send(None)
            while True:
                try:
                    request = yield response
                except GeneratorExit:
                    with make_ctx():
                        gen.close()
                    raise
                except BaseException as e:
                    with make_ctx():
                        response = gen.throw(e)
                else:
                    with make_ctx():
                        response = gen.send(request)
        except StopIteration as e:
            return e.value
    return gen_wrapper


class _Mode:
    """Base of the grad-mode context managers; each also works as a decorator."""

    def __call__(self, fn):
        return _decorate(fn, lambda: self.__class__(*self._args))

    _args: tuple = ()

    def __enter__(self):
        self._prev = state.enabled
        state.enabled = self._target()

    def __exit__(self, *exc):
        state.enabled = self._prev
        return False

    def _target(self) -> bool:
        raise NotImplementedError


class no_grad(_Mode):
    """Operations inside record no graph; their results do not require grad."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)  # used bare, as ``@no_grad``

    def _target(self) -> bool:
        return False


class enable_grad(_Mode):
    """Re-enables recording inside a no_grad region."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)

    def _target(self) -> bool:
        return True


class set_grad_enabled(_Mode):
    """``set_grad_enabled(mode)``: sets recording on or off. As a plain call it takes effect
    at once, like torch's; as a context manager it restores the previous mode on exit."""

    def __init__(self, mode: bool):
        self._args = (mode,)
        self._mode = bool(mode)
        self._prev = state.enabled
        state.enabled = self._mode

    def __enter__(self):
        pass

    def __exit__(self, *exc):
        state.enabled = self._prev
        return False

    def _target(self) -> bool:
        return self._mode

    def __call__(self, fn):
        state.enabled = self._prev  # used as a decorator: the call above must not stick
        mode = self._mode
        return _decorate(fn, lambda: set_grad_enabled(mode))


class inference_mode(_Mode):
    """Like no_grad, and tensors made inside are marked as inference tensors."""

    def __new__(cls, mode=True):
        if callable(mode):
            return cls(True)(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True):
        self._args = (mode,)
        self._mode = bool(mode)

    def __enter__(self):
        self._prev = state.enabled
        self._prev_inf = state.inference
        if self._mode:
            state.enabled = False
            state.inference = True

    def __exit__(self, *exc):
        state.enabled = self._prev
        state.inference = self._prev_inf
        return False

    def _target(self) -> bool:
        return not self._mode
