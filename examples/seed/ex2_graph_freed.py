# Seed example 2: the graph is freed by backward; a second backward needs retain_graph=True.
import jitgrad as torch

w = torch.tensor([[3.0, 1.0]], requires_grad=True)
b = torch.tensor([[3.0]], requires_grad=True)
X = torch.randn(10, 2)
Y = torch.randn(10, 1)
Y_hat = X@w.t() + b
loss = torch.mean(torch.pow(Y_hat-Y, 2))

loss.backward()  # loss.backward(retain_graph = True) would keep the graph

try:
    loss.backward()  # the graph is gone: this raises
except RuntimeError as e:
    print("RuntimeError:", e)
