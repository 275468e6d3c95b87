"""Linear, convolution, pooling, embedding and dropout beyond the op table: torch's errors (text
and type, and that a failed call changes nothing), double backward with respect to the
cotangent, edge cases (empty batches, NaN and ties in max pooling, windows without an input
pixel, repeated embedding indices, padding rows), the chunked, strided, broadcast and parallel
kernel paths, concurrent calls, and dropout masks equal to torch's under the same seed."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import op_table  # noqa: F401 - loads every family's rows (ours included) first
import pytest
from conftest import DEVICE
from numpy.testing import assert_allclose, assert_array_equal
from on_device import J
from op_rows_nn_conv import avg_pool_ref, conv_ref, max_pool_ref, torch_mask

import jitgrad
import jitgrad.nn.functional as F
from jitgrad.autograd import check_vjp

ON_CPU_ONLY = pytest.mark.skipif(DEVICE != "cpu",
                                 reason="CPU kernel internals (prange variants, numpy arrays)")


def _torch():
    return pytest.importorskip("torch")


def _f(m):
    return m.nn.functional


# --------------------------------------------------------------------------- errors

def _T(m, shape, dtype="float32", requires_grad=False):
    """A tensor of `shape` with distinct values, in module m (jitgrad or torch)."""
    n = int(np.prod(shape))
    data = (np.arange(n, dtype=np.float64).reshape(shape) * 0.25 - 1.0).astype(dtype)
    t = m.tensor(data)
    return t.requires_grad_() if requires_grad else t


def _I(m, v):
    return m.tensor(v)


X4, W4 = (2, 4, 5, 5), (6, 4, 3, 3)
ERRORS = [  # (id, builder, exception, torch's message)
    # linear
    ("linear_0d", lambda m: _f(m).linear(_T(m, ()), _T(m, (4, 3))), RuntimeError,
     "both arguments to linear need to be at least 1D, but they are 0D and 2D"),
    ("linear_inner", lambda m: _f(m).linear(_T(m, (2, 3)), _T(m, (4, 5))), RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (2x3 and 5x4)"),
    ("linear_inner_3d", lambda m: _f(m).linear(_T(m, (5, 2, 3)), _T(m, (4, 5)), _T(m, (4,))),
     RuntimeError, "mat1 and mat2 shapes cannot be multiplied (10x3 and 5x4)"),
    ("linear_bias_size", lambda m: _f(m).linear(_T(m, (2, 3)), _T(m, (4, 3)), _T(m, (5,))),
     RuntimeError,
     ("The expanded size of the tensor (4) must match the existing size (5) at "
      "non-singleton dimension 1.  Target sizes: [2, 4].  Tensor sizes: [5]")),
    ("linear_bias_inplace", lambda m: _f(m).linear(_T(m, (3, 2, 3)).transpose(0, 1),
                                                   _T(m, (4, 3)), _T(m, (5,))),
     RuntimeError,
     ("The size of tensor a (4) must match the size of tensor b (5) at "
      "non-singleton dimension 2")),
    ("linear_weight_dtype", lambda m: _f(m).linear(_T(m, (2, 3)), _T(m, (4, 3), "float64"),
                                                   _T(m, (4,))),
     RuntimeError, "self and mat2 must have the same dtype, but got Float and Double"),
    ("linear_input_dtype", lambda m: _f(m).linear(_T(m, (2, 3), "float64"), _T(m, (4, 3)),
                                                  _T(m, (4,))),
     RuntimeError, "mat1 and mat2 must have the same dtype, but got Double and Float"),
    ("linear_no_bias_dtype", lambda m: _f(m).linear(_T(m, (2, 3)), _T(m, (4, 3), "float64")),
     RuntimeError, "expected m1 and m2 to have the same dtype, but got: float != double"),
    ("linear_weight_3d", lambda m: _f(m).linear(_T(m, (2, 3)), _T(m, (2, 4, 3))), RuntimeError,
     "t() expects a tensor with <= 2 dimensions, but self is 3D"),
    ("linear_weight_1d_bias", lambda m: _f(m).linear(_T(m, (2, 3)), _T(m, (3,)), _T(m, ())),
     RuntimeError, "mat2 must be a matrix, got 1-D tensor"),
    # convolution
    ("conv_input_2d", lambda m: _f(m).conv2d(_T(m, (4, 5)), _T(m, W4)), RuntimeError,
     "Expected 3D (unbatched) or 4D (batched) input to conv2d, but got input of size: [4, 5]"),
    ("conv1d_input_4d", lambda m: _f(m).conv1d(_T(m, (1, 2, 4, 4)), _T(m, (6, 4, 3))),
     RuntimeError,
     ("Expected 2D (unbatched) or 3D (batched) input to conv1d, but got input of "
      "size: [1, 2, 4, 4]")),
    ("conv_channels", lambda m: _f(m).conv2d(_T(m, X4), _T(m, (6, 3, 3, 3))), RuntimeError,
     ("Given groups=1, weight of size [6, 3, 3, 3], expected input[2, 4, 5, 5] to have 3 "
      "channels, but got 4 channels instead")),
    ("conv_groups_channels", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), groups=3),
     RuntimeError,
     ("Given groups=3, weight of size [6, 4, 3, 3], expected input[2, 4, 5, 5] to "
      "have 12 channels, but got 4 channels instead")),
    ("conv_groups_divisible", lambda m: _f(m).conv2d(_T(m, X4), _T(m, (5, 2, 3, 3)), groups=2),
     RuntimeError,
     ("Given groups=2, expected weight to be divisible by 2 at dimension 0, but "
      "got weight of size [[5, 2, 3, 3]] instead")),
    ("conv_groups_at_least", lambda m: _f(m).conv2d(_T(m, X4), _T(m, (1, 4, 3, 3)), groups=2),
     RuntimeError,
     ("Given groups=2, expected weight to be at least 2 at dimension 0, but got "
      "weight of size [1, 4, 3, 3] instead")),
    ("conv_groups_zero", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), groups=0), RuntimeError,
     "non-positive groups is not supported"),
    ("conv_kernel_too_big", lambda m: _f(m).conv2d(_T(m, X4), _T(m, (6, 4, 7, 7))),
     RuntimeError,
     ("Calculated padded input size per channel: (5 x 5). Kernel size: (7 x 7). "
      "Kernel size can't be greater than actual input size")),
    ("conv1d_dilated_too_big", lambda m: _f(m).conv1d(_T(m, (2, 4, 7)), _T(m, (6, 4, 3)),
                                                      dilation=4),
     RuntimeError,
     ("Calculated padded input size per channel: (7). Kernel size: (9). Kernel "
      "size can't be greater than actual input size")),
    ("conv_bias_size", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), _T(m, (5,))), RuntimeError,
     ("Given weight of size [6, 4, 3, 3], expected bias to be 1-dimensional with 6 elements, but "
      "got bias of size [5] instead")),
    ("conv_stride_zero", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), stride=0), RuntimeError,
     "non-positive stride is not supported"),
    ("conv_stride_negative", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), stride=(1, -1)),
     RuntimeError, "non-positive stride is not supported"),
    ("conv_padding_negative", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), padding=-1),
     RuntimeError, "negative padding is not supported"),
    ("conv_dilation_zero", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), dilation=0),
     RuntimeError, "non-positive dilation is not supported"),
    ("conv_dilation_negative", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), dilation=-1),
     RuntimeError, "dilation should be greater than zero"),
    ("conv_stride_length", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), stride=(1, 2, 3)),
     RuntimeError,
     ("expected stride to be a single integer value or a list of 2 values to match "
      "the convolution dimensions, but got stride=[1, 2, 3]")),
    ("conv2d_weight_3d", lambda m: _f(m).conv2d(_T(m, X4), _T(m, (6, 4, 3))), RuntimeError,
     ("expected stride to be a single integer value or a list of 1 values to match the "
      "convolution dimensions, but got stride=[1, 1]")),
    ("conv1d_weight_4d", lambda m: _f(m).conv1d(_T(m, (2, 4, 7)), _T(m, W4)), RuntimeError,
     ("Expected 4-dimensional input for 4-dimensional weight [6, 4, 3, 3], but got "
      "3-dimensional input of size [2, 4, 7] instead")),
    ("conv_weight_2d", lambda m: _f(m).conv2d(_T(m, X4), _T(m, (6, 4))), RuntimeError,
     "weight should have at least three dimensions"),
    ("conv_padding_string", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), padding="foo"),
     RuntimeError, "Invalid padding string: 'foo'"),
    ("conv_same_strided", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), padding="same",
                                                 stride=2),
     RuntimeError, "padding='same' is not supported for strided convolutions"),
    ("conv_same_dilation", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4), padding="same",
                                                  dilation=(1, 2, 3)),
     RuntimeError, "dilation cannot broadcast to 2 dimensions"),
    ("conv_weight_dtype", lambda m: _f(m).conv2d(_T(m, X4), _T(m, W4, "float64")),
     RuntimeError,
     ("Input type (torch.FloatTensor) and weight type (torch.DoubleTensor) should "
      "be the same or input should be a MKLDNN tensor and weight is a dense tensor")),
    ("conv_input_dtype", lambda m: _f(m).conv2d(_T(m, X4, "float64"), _T(m, W4)), RuntimeError,
     "expected scalar type Double but found Float"),
    ("conv_bias_dtype", lambda m: _f(m).conv1d(_T(m, (2, 4, 7)), _T(m, (6, 4, 3)),
                                               _T(m, (6,), "int64")),
     RuntimeError, "Input type (float) and bias type (long int) should be the same"),
    ("conv_bool", lambda m: _f(m).conv2d(_T(m, X4, "bool"), _T(m, W4, "bool")),
     NotImplementedError, "\"slow_conv2d_cpu\" not implemented for 'Bool'"),
    # pooling
    ("max_pool_pad", lambda m: _f(m).max_pool2d(_T(m, (2, 3, 7, 7)), 2, padding=2),
     RuntimeError,
     ("pad should be at most half of effective kernel size, but got pad=2, "
      "kernel_size=2 and dilation=1")),
    ("max_pool_pad_dilated", lambda m: _f(m).max_pool2d(_T(m, (2, 3, 7, 7)), 2, padding=2,
                                                        dilation=3),
     RuntimeError,
     ("pad should be smaller than or equal to half of kernel size, but got padW = "
      "2, padH = 2, kW = 2, kH = 2")),
    ("max_pool_stride_zero", lambda m: _f(m).max_pool2d(_T(m, (2, 3, 7, 7)), 2, stride=0),
     RuntimeError, "stride should not be zero"),
    ("max_pool_stride_negative", lambda m: _f(m).max_pool2d(_T(m, (2, 3, 7, 7)), 2,
                                                            stride=(1, -1)),
     RuntimeError, "stride should be greater than zero, but got dH: 1 dW: -1"),
    ("max_pool_kernel_zero", lambda m: _f(m).max_pool2d(_T(m, (2, 3, 7, 7)), 0, stride=1),
     RuntimeError, "kernel size should be greater than zero, but got kH: 0 kW: 0"),
    ("max_pool_dilation_zero", lambda m: _f(m).max_pool2d(_T(m, (2, 3, 7, 7)), 2, dilation=0),
     RuntimeError, "dilation should be greater than zero, but got dilationH: 0 dilationW: 0"),
    ("max_pool_too_small", lambda m: _f(m).max_pool2d(_T(m, (2, 3, 7, 7)), 8), RuntimeError,
     "Given input size: (3x7x7). Calculated output size: (3x0x0). Output size is too small"),
    ("max_pool_kernel_len", lambda m: _f(m).max_pool2d(_T(m, (2, 3, 7, 7)), (1, 2, 3)),
     RuntimeError, "max_pool2d: kernel_size must either be a single int, or a tuple of two ints"),
    ("max_pool_input_2d", lambda m: _f(m).max_pool2d(_T(m, (7, 7)), 2), RuntimeError,
     "non-empty 3D or 4D (batch mode) tensor expected for input"),
    ("max_pool_no_channels", lambda m: _f(m).max_pool2d(_T(m, (2, 0, 4, 4)), 2), RuntimeError,
     ("Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but "
      "got:[2, 0, 4, 4]")),
    ("max_pool_bool", lambda m: _f(m).max_pool2d(_T(m, (2, 3, 4, 4), "bool"), 2),
     NotImplementedError, "\"max_pool2d\" not implemented for 'Bool'"),
    ("avg_pool_divisor", lambda m: _f(m).avg_pool2d(_T(m, (2, 3, 4, 4)), 2, divisor_override=0),
     RuntimeError, "divisor must be not zero"),
    ("avg_pool_pad", lambda m: _f(m).avg_pool2d(_T(m, (2, 3, 4, 4)), 2, padding=2),
     RuntimeError,
     ("pad should be at most half of effective kernel size, but got pad=2, "
      "kernel_size=2 and dilation=1")),
    ("avg_pool_padding_len", lambda m: _f(m).avg_pool2d(_T(m, (2, 3, 4, 4)), 2,
                                                        padding=(1, 2, 3)),
     RuntimeError, "avg_pool2d: padding must either be a single int, or a tuple of two ints"),
    ("avg_pool_input_1d", lambda m: _f(m).avg_pool2d(_T(m, (7,)), 2), IndexError,
     "Dimension out of range (expected to be in range of [-1, 0], but got -3)"),
    ("avg_pool_input_5d", lambda m: _f(m).avg_pool2d(_T(m, (1, 2, 3, 4, 4)), 2), RuntimeError,
     ("Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, but "
      "got:[1, 2, 3, 4, 4]")),
    ("avg_pool_bool", lambda m: _f(m).avg_pool2d(_T(m, (2, 3, 4, 4), "bool"), 2),
     NotImplementedError, "\"avg_pool2d\" not implemented for 'Bool'"),
    ("adaptive_negative", lambda m: _f(m).adaptive_avg_pool2d(_T(m, (2, 3, 4, 4)), (-1, 2)),
     RuntimeError,
     ("adaptive_avg_pool2d: elements of output_size must be greater than or equal "
      "to 0 but received {-1, 2}")),
    ("adaptive_size_len", lambda m: _f(m).adaptive_avg_pool2d(_T(m, (2, 3, 4, 4)), (1, 2, 3)),
     RuntimeError, "adaptive_avg_pool2d: output_size must be 2"),
    ("adaptive_input_dims", lambda m: _f(m).adaptive_avg_pool2d(_T(m, (4, 4)), 2),
     RuntimeError, "adaptive_avg_pool2d(): Expected 3D or 4D tensor, but got [4, 4]"),
    ("adaptive_input_too_small", lambda m: _f(m).adaptive_avg_pool2d(_T(m, (4, 4)), (2, 2)),
     ValueError, "Input dimension should be at least 3"),
    ("adaptive_empty", lambda m: _f(m).adaptive_avg_pool2d(_T(m, (2, 3, 0, 4)), 2),
     RuntimeError,
     ("adaptive_avg_pool2d(): Expected input to have non-zero size for non-batch "
      "dimensions, but input has sizes [2, 3, 0, 4] with dimension 2 being empty")),
    ("adaptive_long", lambda m: _f(m).adaptive_avg_pool2d(_T(m, (2, 3, 4, 4), "int64"), 2),
     NotImplementedError, "\"adaptive_avg_pool2d\" not implemented for 'Long'"),
    # embedding
    ("embedding_index_high", lambda m: _f(m).embedding(_I(m, [1, 10]), _T(m, (10, 3))),
     IndexError, "index out of range in self"),
    ("embedding_index_negative", lambda m: _f(m).embedding(_I(m, [-1]), _T(m, (10, 3))),
     IndexError, "index out of range in self"),
    ("embedding_float_index", lambda m: _f(m).embedding(_T(m, (2,)), _T(m, (10, 3))),
     RuntimeError,
     ("Expected tensor for argument #1 'indices' to have one of the following "
      "scalar types: Long, Int; but got torch.FloatTensor instead (while checking arguments for "
      "embedding)")),
    ("embedding_weight_1d", lambda m: _f(m).embedding(_I(m, [1]), _T(m, (10,))), RuntimeError,
     "'weight' must be 2-D"),
    ("embedding_padding_idx", lambda m: _f(m).embedding(_I(m, [1]), _T(m, (10, 3)),
                                                        padding_idx=10),
     AssertionError, "Padding_idx must be within num_embeddings"),
    ("embedding_padding_idx_negative",
     lambda m: _f(m).embedding(_I(m, [1]), _T(m, (10, 3)), padding_idx=-11),
     AssertionError, "Padding_idx must be within num_embeddings"),
    # dropout
    ("dropout_p_high", lambda m: _f(m).dropout(_T(m, (3, 4)), 1.5), ValueError,
     "dropout probability has to be between 0 and 1, but got 1.5"),
    ("dropout_p_negative", lambda m: _f(m).dropout(_T(m, (3, 4)), -0.1), ValueError,
     "dropout probability has to be between 0 and 1, but got -0.1"),
    ("dropout_long", lambda m: _f(m).dropout(_T(m, (3, 4), "int64"), 0.5), RuntimeError,
     "result type Float can't be cast to the desired output type Long"),
    ("dropout_inplace_leaf", lambda m: _f(m).dropout(_T(m, (3, 4), requires_grad=True), 0.5,
                                                     inplace=True),
     RuntimeError, "a leaf Variable that requires grad is being used in an in-place operation."),
]


def _raised(builder, m):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            builder(m)
        except Exception as e:  # noqa: BLE001 - compared by the caller
            return e
    return None


@pytest.mark.parametrize("builder, exc, message",
                         [pytest.param(b, e, s, id=i) for i, b, e, s in ERRORS])
def test_errors(builder, exc, message) -> None:
    err = _raised(builder, J)
    assert err is not None, "jitgrad accepts it"
    assert type(err) is exc and str(err) == message, f"{type(err).__name__}: {err}"


@pytest.mark.parametrize("builder, exc, message",
                         [pytest.param(b, e, s, id=i) for i, b, e, s in ERRORS])
def test_errors_are_torchs(builder, exc, message) -> None:
    """The texts above are torch's own (guards against a stale copy)."""
    err = _raised(builder, _torch())
    assert type(err) is exc and str(err) == message, f"{type(err).__name__}: {err}"


def test_failed_calls_change_nothing() -> None:
    x = J.randn(2, 4, 5, 5, requires_grad=True)
    w = J.randn(6, 4, 3, 3, requires_grad=True)
    b = J.randn(6, requires_grad=True)
    F.conv2d(x, w, b, padding=1).sum().backward()
    before = [(t.detach().cpu().numpy().copy(), t.grad.cpu().numpy().copy()) for t in (x, w, b)]
    for call in (lambda: F.conv2d(x, w, b[:5]), lambda: F.conv2d(x, w[:, :3], b),
                 lambda: F.conv2d(x, w, b, groups=4), lambda: F.max_pool2d(x, 2, padding=2),
                 lambda: F.linear(x, w), lambda: F.embedding(J.tensor([9]), w[0, 0]),
                 lambda: F.dropout(x, 2.0), lambda: F.dropout(x, 0.5, inplace=True)):
        with pytest.raises((RuntimeError, ValueError, IndexError)):
            call()
    for t, (d, g) in zip((x, w, b), before):
        assert_array_equal(t.detach().cpu().numpy(), d)
        assert_array_equal(t.grad.cpu().numpy(), g)


def test_embedding_unsupported_options() -> None:
    w = J.randn(4, 3, requires_grad=True)
    with pytest.raises(NotImplementedError, match="max_norm"):
        F.embedding(J.tensor([1]), w, max_norm=1.0)
    with pytest.raises(NotImplementedError, match="sparse"):
        F.embedding(J.tensor([1]), w, sparse=True)


# --------------------------------------------------------------------------- double backward

def _backward_of(op, x):
    """g -> the gradient of op at x for the output cotangent g, differentiable in g."""
    def fn(g):
        (gx,) = jitgrad.autograd.grad(op(x), x, grad_outputs=g, create_graph=True)
        return gx
    return fn


IDX = J.tensor([[1, 2, 1], [0, 4, 1]])
W2 = J.tensor(np.random.default_rng(1).standard_normal((3, 2, 3, 2)))
X2 = J.tensor(np.random.default_rng(2).standard_normal((2, 2, 6, 7)))
X1 = J.tensor(np.random.default_rng(3).standard_normal((2, 2, 5)))
LINEAR_IN_X = [  # (id, op, input shape, output shape): the cotangent's VJP is its own check
    ("conv2d_input", lambda x: F.conv2d(x, W2, None, 2, 1, (1, 2)), (2, 2, 6, 7), (2, 3, 3, 4)),
    ("conv2d_weight", lambda w: F.conv2d(X2, w, None, 2, 1, (1, 2)), (3, 2, 3, 2), (2, 3, 3, 4)),
    ("conv1d_weight_grouped", lambda w: F.conv1d(X1, w, None, 1, "same", 1, 2), (4, 1, 4),
     (2, 4, 5)),
    ("conv2d_bias", lambda b: F.conv2d(X2, W2, b, 2, 1, (1, 2)), (3,), (2, 3, 3, 4)),
    ("max_pool2d", lambda x: F.max_pool2d(x, 2, 1, 1), (2, 2, 4, 3), (2, 2, 5, 4)),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), (1, 2, 5, 6),
     (1, 2, 3, 3)),
    ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (2, 4)), (2, 3, 5), (2, 2, 4)),
    ("embedding", lambda w: F.embedding(IDX, w, padding_idx=1, scale_grad_by_freq=True),
     (5, 3), (2, 3, 3)),
    ("linear", lambda w: F.linear(X2[0, 0], w, None), (4, 7), (6, 4)),
]


@pytest.mark.parametrize("op, in_shape, out_shape",
                         [pytest.param(o, i, s, id=n) for n, o, i, s in LINEAR_IN_X])
def test_backward_is_differentiable_in_the_cotangent(op, in_shape, out_shape, rng) -> None:
    """The backward primitives' own rules (ConvolutionBackwardBackward0 with respect to g,
    MaxPool2DWithIndicesBackwardBackward0, ...): gradgradcheck cannot see them, since these
    ops are linear in the input that it differentiates."""
    x = J.tensor(rng.standard_normal(in_shape) + np.arange(np.prod(in_shape)).reshape(
        in_shape) * 0.1, requires_grad=True)  # distinct values: max pooling has no ties
    g = J.tensor(rng.standard_normal(out_shape), requires_grad=True)
    check_vjp(_backward_of(op, x), [g], rng=rng)


def test_double_backward_names_vs_torch(rng) -> None:
    torch = _torch()
    cases = [(lambda m, x: _f(m).conv2d(x, m.ones(2, 3, 2, 2, dtype=m.float64)), (1, 3, 4, 4)),
             (lambda m, x: _f(m).max_pool2d(x, 2), (1, 2, 4, 4)),
             (lambda m, x: _f(m).avg_pool2d(x, 2), (1, 2, 4, 4)),
             (lambda m, x: _f(m).adaptive_avg_pool2d(x, 3), (1, 2, 4, 4))]
    for fn, shape in cases:
        a = rng.standard_normal(shape)
        names = []
        for m in (J, torch):
            x = m.tensor(a, requires_grad=True)
            y = fn(m, x)
            (gx,) = m.autograd.grad((y * y).sum(), x, create_graph=True)
            names.append(gx.grad_fn.name())
        assert names[0] == names[1]


# --------------------------------------------------------------------------- edge cases

def test_conv_empty_batch_and_unbatched_names() -> None:
    x = J.zeros(0, 3, 5, 5, requires_grad=True)
    w = J.randn(4, 3, 3, 3, requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    assert y.shape == (0, 4, 5, 5) and y.grad_fn.name() == "ConvolutionBackward0"
    y.sum().backward()
    assert_array_equal(w.grad.cpu().numpy(), np.zeros((4, 3, 3, 3), np.float32))
    y = F.conv1d(J.randn(3, 8), w[:, :, 0], stride=2)
    assert y.shape == (4, 3) and y.grad_fn.name() == "SqueezeBackward1"


def test_max_pool_nan_ties_and_empty_windows() -> None:
    nan = float("nan")
    x = J.tensor([[[[1.0, nan], [3.0, nan]]]], requires_grad=True)
    v, i = F.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(v.item()) and i.item() == 3  # torch: a NaN wins, the last one
    v, i = F.max_pool2d(J.tensor([[[[1.0, 2.0], [2.0, 1.0]]]]), 2, return_indices=True)
    assert v.item() == 2.0 and i.item() == 1  # the first of tied maxima
    # A window that only sees padding (dilation skips the whole input): -inf, and its
    # gradient goes nowhere (torch writes out of bounds here).
    x = J.randn(1, 1, 2, 2, requires_grad=True)
    v = F.max_pool2d(x, 2, stride=1, padding=1, dilation=3)
    assert v.item() == float("-inf")
    v.sum().backward()
    assert_array_equal(x.grad.cpu().numpy(), np.zeros((1, 1, 2, 2), np.float32))
    xi = J.tensor(-np.arange(1, 17).reshape(1, 1, 4, 4))
    assert F.max_pool2d(xi, 2).tolist() == [[[[-1, -3], [-9, -11]]]]


def test_max_pool_indices_are_a_copy() -> None:
    x = J.randn(1, 1, 4, 4, requires_grad=True)
    v, i = F.max_pool2d(x, 2, return_indices=True)
    expected = np.zeros(16)
    np.put(expected, i.cpu().numpy().ravel(), 1.0)
    i.cpu().numpy()[...] = 0
    v.sum().backward()
    assert_array_equal(x.grad.cpu().numpy().ravel(), expected)


def test_embedding_repeated_indices_add_up_and_padding_row() -> None:
    w = J.tensor(np.arange(15.0).reshape(5, 3), requires_grad=True)
    idx = J.tensor([[1, 2, 1], [0, 1, 4]], dtype=jitgrad.int32)
    g = np.arange(18.0).reshape(2, 3, 3)
    F.embedding(idx, w, padding_idx=2).backward(J.tensor(g))
    expected = np.zeros((5, 3))
    for (r, c), k in np.ndenumerate(idx.cpu().numpy()):
        if k != 2:
            expected[k] += g[r, c]
    assert_array_equal(w.grad.cpu().numpy(), expected)
    assert expected[1].tolist() == (g[0, 0] + g[0, 2] + g[1, 1]).tolist()


def test_dropout_identity_cases_return_the_input() -> None:
    x = J.randn(3, 4, requires_grad=True)
    assert F.dropout(x, 0.0) is x
    assert F.dropout(x, 0.3, training=False) is x
    e = J.zeros(0, 3)
    assert F.dropout(e, 0.5) is e
    y = F.dropout(x, 1.0)
    assert y.grad_fn.name() == "MulBackward0"
    assert np.array_equal(np.signbit(y.detach().cpu().numpy()), np.signbit(x.detach().cpu().numpy()))


def test_dropout_inplace() -> None:
    x = J.randn(50, 40)
    a = x.cpu().numpy().copy()
    jitgrad.manual_seed(3)
    y = F.dropout(x, 0.25, inplace=True)
    assert y is x
    keep = torch_mask(3, a.shape, 0.75)
    assert_allclose(x.cpu().numpy(), np.where(keep, a / np.float32(0.75), 0), rtol=1e-6)
    h = J.randn(5, 4, requires_grad=True) * 1  # a non-leaf: the graph is rebased
    jitgrad.manual_seed(4)
    F.dropout(h, 0.5, inplace=True).sum().backward()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_masks_equal_torchs(dtype, rng) -> None:
    torch = _torch()
    a = rng.standard_normal((37, 53)).astype(dtype)
    for seed, p in ((0, 0.5), (123, 0.1), (2**40 + 5, 0.9)):
        jitgrad.manual_seed(seed)
        torch.manual_seed(seed)
        jx, tx = J.tensor(a), torch.tensor(a)
        for _ in range(2):  # consecutive masks too: the generator advances alike
            assert_array_equal(F.dropout(jx, p).cpu().numpy(), _f(torch).dropout(tx, p).cpu().numpy())
        assert_array_equal(J.rand(3).cpu().numpy(), torch.rand(3).cpu().numpy())


def test_dropout_mask_statistics() -> None:
    jitgrad.manual_seed(0)
    y = F.dropout(J.ones(200_000), 0.3).cpu().numpy()
    assert set(np.unique(y).tolist()) == {0.0, float(np.float32(1) / np.float32(0.7))}
    assert abs((y == 0).mean() - 0.3) < 0.005


# --------------------------------------------------------------------------- kernel paths

def _conv_case(rng, n, c, o, hw, k, dtype=np.float64):
    x = rng.standard_normal((n, c) + hw).astype(dtype)
    w = rng.standard_normal((o, c) + k).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    return x, w, b


def _conv_grads(x, w, b, g, **kw):
    jx, jw, jb = (J.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(jx, jw, jb, **kw)
    y.backward(g if isinstance(g, jitgrad.Tensor) else J.tensor(g))
    return y.detach().cpu().numpy(), jx.grad.cpu().numpy(), jw.grad.cpu().numpy(), jb.grad.cpu().numpy()


def test_conv_chunks_equal_one_pass(monkeypatch, rng) -> None:
    from jitgrad.kernels import conv

    x, w, b = _conv_case(rng, 5, 3, 4, (6, 7), (3, 2))
    g = rng.standard_normal((5, 4, 3, 8))
    whole = _conv_grads(x, w, b, g, stride=(2, 1), padding=1)
    monkeypatch.setattr(conv, "CHUNK_BYTES", 1000)  # one image per chunk
    for a, c in zip(whole, _conv_grads(x, w, b, g, stride=(2, 1), padding=1)):
        assert_allclose(a, c, rtol=1e-12, atol=1e-12)
    assert_allclose(whole[0], conv_ref(x, w, b, (2, 1), 1), rtol=1e-12, atol=1e-12)


def test_conv_strided_operands_and_broadcast_gradient(rng) -> None:
    x, w, b = _conv_case(rng, 2, 3, 4, (5, 6), (3, 3))
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # not C-order
    jx = J.tensor(xt).requires_grad_()
    jw = J.tensor(w).requires_grad_()
    y = F.conv2d(jx.transpose(2, 3), jw.transpose(2, 3), padding=(1, 0))
    assert_allclose(y.detach().cpu().numpy(), conv_ref(x.transpose(0, 1, 3, 2),
                                                 w.transpose(0, 1, 3, 2), padding=(1, 0)),
                    rtol=1e-12, atol=1e-12)
    y.sum().backward()  # the gradient reaching the convolution is a broadcast view of 1
    ones = np.ones(y.shape)
    _, gx, gw, _ = _conv_grads(x.transpose(0, 1, 3, 2).copy(), w.transpose(0, 1, 3, 2).copy(),
                               b, ones, padding=(1, 0))
    assert_allclose(jw.grad.cpu().numpy(), gw.transpose(0, 1, 3, 2), rtol=1e-12, atol=1e-12)
    assert_allclose(jx.grad.cpu().numpy(), gx.transpose(0, 1, 3, 2), rtol=1e-12, atol=1e-12)


@ON_CPU_ONLY
def test_parallel_paths_vs_reference(monkeypatch, rng) -> None:
    """The prange variants (lowered thresholds stand in for large inputs)."""
    from jitgrad.kernels import conv, pool

    monkeypatch.setattr(conv, "PARALLEL_MIN", 1 << 12)
    monkeypatch.setattr(pool, "PARALLEL_MIN", 1 << 12)
    x, w, b = _conv_case(rng, 4, 4, 6, (16, 16), (3, 3))
    g = rng.standard_normal((4, 6, 16, 16))
    par = _conv_grads(x, w, b, g, padding=1)
    monkeypatch.setattr(conv, "PARALLEL_MIN", 1 << 40)
    for a, s in zip(par, _conv_grads(x, w, b, g, padding=1)):
        assert_allclose(a, s, rtol=1e-12, atol=1e-12)
    assert_allclose(par[0], conv_ref(x, w, b, padding=1), rtol=1e-12, atol=1e-12)
    p = rng.permutation(4 * 4 * 16 * 16).reshape(4, 4, 16, 16).astype(np.float32)
    v, i = F.max_pool2d(J.tensor(p), 3, 2, 1, return_indices=True)
    rv, ri = max_pool_ref(p, 3, 2, 1)
    assert_array_equal(v.cpu().numpy(), rv)
    assert_array_equal(i.cpu().numpy(), ri)
    assert_allclose(F.avg_pool2d(J.tensor(p), 3, 2, 1).cpu().numpy(), avg_pool_ref(p, 3, 2, 1),
                    rtol=1e-6)
    xp = J.tensor(p, requires_grad=True)
    F.avg_pool2d(xp, 2).sum().backward()
    assert_allclose(xp.grad.cpu().numpy(), np.full(p.shape, 0.25, np.float32))


@pytest.mark.skipif(DEVICE != "cpu", reason="CPU per-thread workspaces")
def test_concurrent_convolutions(rng) -> None:
    """Workspaces are per thread: two threads convolving at once get their own results."""
    cases = [_conv_case(rng, 4, 3, 5, (12, 12), (3, 3)) for _ in range(2)]
    expected = [conv_ref(x, w, b, padding=1) for x, w, b in cases]
    results: dict = {}

    def work(k):
        x, w, b = (J.tensor(a) for a in cases[k])
        results[k] = [F.conv2d(x, w, b, padding=1).cpu().numpy() for _ in range(30)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        for r in results[k]:
            assert_allclose(r, expected[k], rtol=1e-12, atol=1e-12)
