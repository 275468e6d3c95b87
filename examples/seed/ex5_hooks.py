# Seed example 4, continued: retain_grad keeps a non-leaf's gradient, register_hook shows it.
import jitgrad as torch

# forward
x = torch.tensor(3.0, requires_grad=True)
y1 = x + 1
y2 = 2*x
loss = (y1-y2)**2

# non-leaf gradients
y1.register_hook(lambda grad: print('y1 grad: ', grad))
y2.register_hook(lambda grad: print('y2 grad: ', grad))
loss.retain_grad()

# backward
loss.backward()
print("loss.grad:", loss.grad)
print("x.grad:", x.grad)
