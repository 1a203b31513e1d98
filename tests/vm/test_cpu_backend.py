"""The CPU backend against PyTorch: every op's forward and gradient on random
shapes (float64: 1e-9 relative; float32: 1e-4), finite differences, optimizers,
gas and memory limits, and bit-identical traces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from bcai.vm import Builder, VmError
from bcai.vm._machine import Machine, OutOfGas, OutOfMemory, first_divergence

torch = pytest.importorskip("torch")
F = torch.nn.functional
BLOBS: dict[bytes, bytes] = {}


def blob(arr: np.ndarray) -> bytes:
    key = bytes([len(BLOBS) % 256]) + np.asarray(arr.shape).tobytes()[:31].ljust(31, b"\0")
    BLOBS[key] = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<")).tobytes()
    return key


def run_case(
    inputs: list[np.ndarray],
    vm_fn: Callable[[Builder, list[int]], int],
    torch_fn: Callable[..., Any],
    *,
    dtype: str = "f64",
    rtol: float = 1e-9,
) -> None:
    """out = f(inputs); loss = mse(out, target): compares out and d loss / d inputs."""
    params = list(range(len(inputs)))

    def machine() -> Machine:
        m = Machine()
        for p, arr in zip(params, inputs, strict=True):
            m.registers[p] = arr.copy()
            m.trainable.add(p)
        return m

    step = Builder(first_register=len(inputs))
    out = vm_fn(step, params)
    probe = machine()
    probe.run(step.build(registers=64), BLOBS)
    forward = probe.registers[out]
    target = np.random.default_rng(5).standard_normal(forward.shape).astype(forward.dtype)
    loss = step.loss("mse", out, step.blob(target.shape, dtype, blob(target)))
    step.backward(loss)
    m = machine()
    m.run(step.build(registers=64), BLOBS)

    tins = [torch.tensor(a, requires_grad=True) for a in inputs]
    tout = torch_fn(*tins)
    F.mse_loss(tout, torch.tensor(target)).backward()
    np.testing.assert_allclose(m.registers[out], tout.detach().numpy(), rtol=rtol, atol=rtol)
    for p, t in zip(params, tins, strict=True):
        assert t.grad is not None
        np.testing.assert_allclose(m.grads[p], t.grad.numpy(), rtol=rtol, atol=rtol * 10)


R = np.random.default_rng(0)


def rand(*shape: int, dtype: Any = np.float64) -> np.ndarray:
    return R.standard_normal(shape).astype(dtype)


CASES: list[tuple[str, list[np.ndarray], Any, Any]] = [
    ("add-broadcast", [rand(3, 4), rand(4)], lambda b, r: b.op("add", *r), lambda x, y: x + y),
    ("sub", [rand(2, 5), rand(2, 5)], lambda b, r: b.op("sub", *r), lambda x, y: x - y),
    ("mul", [rand(3, 1), rand(1, 4)], lambda b, r: b.op("mul", *r), lambda x, y: x * y),
    ("div", [rand(3, 4), rand(3, 4) + 3], lambda b, r: b.op("div", *r), lambda x, y: x / y),
    ("matmul", [rand(2, 3, 4), rand(4, 5)], lambda b, r: b.op("matmul", *r), torch.matmul),
    ("relu", [rand(4, 6)], lambda b, r: b.op("relu", *r), F.relu),
    ("gelu", [rand(4, 6)], lambda b, r: b.op("gelu", *r), lambda x: F.gelu(x, approximate="tanh")),
    ("tanh", [rand(5)], lambda b, r: b.op("tanh", *r), torch.tanh),
    ("sigmoid", [rand(5)], lambda b, r: b.op("sigmoid", *r), torch.sigmoid),
    (
        "softmax",
        [rand(3, 7)],
        lambda b, r: b.op("softmax", *r, ints=(-1,)),
        lambda x: F.softmax(x, -1),
    ),
    (
        "log_softmax",
        [rand(3, 7)],
        lambda b, r: b.op("log_softmax", *r, ints=(0,)),
        lambda x: F.log_softmax(x, 0),
    ),
    (
        "layernorm",
        [rand(2, 3, 8), rand(8), rand(8)],
        lambda b, r: b.op("layernorm", *r, floats=(1e-5,)),
        lambda x, g, bb: F.layer_norm(x, (8,), g, bb, 1e-5),
    ),
    (
        "reshape",
        [rand(2, 6)],
        lambda b, r: b.op("reshape", *r, ints=(3, -1)),
        lambda x: x.reshape(3, -1),
    ),
    (
        "transpose",
        [rand(2, 3, 4)],
        lambda b, r: b.op("transpose", *r, ints=(2, 0, 1)),
        lambda x: x.permute(2, 0, 1),
    ),
    (
        "concat",
        [rand(2, 3), rand(2, 5)],
        lambda b, r: b.op("concat", *r, ints=(1,)),
        lambda x, y: torch.cat([x, y], 1),
    ),
    ("slice", [rand(4, 6)], lambda b, r: b.op("slice", *r, ints=(1, 2, 5)), lambda x: x[:, 2:5]),
    ("sum-axis", [rand(3, 4)], lambda b, r: b.op("sum", *r, ints=(1, 0)), lambda x: x.sum(1)),
    ("mean-all", [rand(3, 4)], lambda b, r: b.op("mean", *r), lambda x: x.mean().reshape(1)),
    (
        "max-keep",
        [rand(3, 4)],
        lambda b, r: b.op("max", *r, ints=(0, 1)),
        lambda x: x.max(0, keepdim=True).values,
    ),
    (
        "linear-relu",
        [rand(5, 3), rand(3, 4), rand(4)],
        lambda b, r: b.linear(*r, activation="relu"),
        lambda x, w, bb: F.relu(x @ w + bb),
    ),
    (
        "conv2d",
        [rand(2, 3, 6, 6), rand(4, 3, 3, 3), rand(4)],
        lambda b, r: b.conv2d(*r, stride=1, padding=1),
        lambda x, w, bb: F.conv2d(x, w, bb, 1, 1),
    ),
    (
        "conv2d-stride",
        [rand(1, 2, 7, 7), rand(3, 2, 3, 3)],
        lambda b, r: b.conv2d(r[0], r[1], stride=2, padding=0),
        lambda x, w: F.conv2d(x, w, None, 2, 0),
    ),
    (
        "maxpool",
        [rand(2, 3, 6, 6)],
        lambda b, r: b.maxpool2d(r[0], 2),
        lambda x: F.max_pool2d(x, 2),
    ),
]


@pytest.mark.parametrize(("name", "inputs", "vm_fn", "torch_fn"), CASES, ids=[c[0] for c in CASES])
def test_ops_match_pytorch_forward_and_gradient(
    name: str, inputs: list[np.ndarray], vm_fn: Any, torch_fn: Any
) -> None:
    rtol = 1e-4 if name.startswith("conv2d") else 1e-9  # im2col runs in float32
    run_case(inputs, vm_fn, torch_fn, rtol=rtol)


def test_float32_within_its_tolerance() -> None:
    run_case(
        [rand(4, 5, dtype=np.float32), rand(5, 3, dtype=np.float32)],
        lambda b, r: b.linear(*r, activation="gelu"),
        lambda x, w: F.gelu(x @ w, approximate="tanh"),
        dtype="f32",
        rtol=1e-4,
    )


def test_cross_entropy_and_optimizers_match_pytorch() -> None:
    x, y = rand(8, 5, dtype=np.float32), R.integers(0, 3, 8)
    w0 = rand(5, 3, dtype=np.float32)
    for kind, torch_opt, extra in (
        ("sgd", torch.optim.SGD, {"momentum": 0.9}),
        ("adam", torch.optim.Adam, {}),
        ("adamw", torch.optim.AdamW, {"weight_decay": 0.1}),
    ):
        b = Builder()
        xr = b.blob(x.shape, "f32", blob(x))
        yr = b.blob(y.shape, "i64", blob(y))
        w = b.param(w0.shape)
        m = Machine()
        m.run(b.build(), BLOBS)
        m.registers[w] = w0.copy()
        step = Builder(first_register=3)
        loss = step.loss("cross_entropy", step.linear(xr, w), yr)
        step.backward(loss)
        step.optimize(kind, [w], lr=0.05, **extra)
        tw = torch.tensor(w0.copy(), requires_grad=True)
        opt = torch_opt([tw], lr=0.05, **extra)
        for _ in range(3):
            m.run(step.build(registers=8), BLOBS)
            opt.zero_grad()
            F.cross_entropy(torch.tensor(x) @ tw, torch.tensor(y)).backward()
            opt.step()
        np.testing.assert_allclose(m.registers[w], tw.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_gradient_against_finite_differences() -> None:
    x0 = rand(3, 4)
    b = Builder()
    w = b.param((3, 4))
    m = Machine()
    m.run(b.build(), BLOBS)
    m.registers[w] = x0.copy()
    step = Builder(first_register=1)
    h = step.op("tanh", step.op("mul", w, w))
    loss = step.op("sum", h)
    step.backward(loss)
    program = step.build(registers=8)
    m.run(program, BLOBS)
    grad = m.grads[w].copy()
    eps = 1e-6
    for i in range(3):
        for j in range(4):
            for sign, store in ((1, "plus"), (-1, "minus")):
                m.registers[w] = x0.copy()
                m.registers[w][i, j] += sign * eps
                m.run(program, BLOBS)
                if store == "plus":
                    plus = float(m.registers[loss][0])
                else:
                    minus = float(m.registers[loss][0])
            assert abs((plus - minus) / (2 * eps) - grad[i, j]) < 1e-6


def mlp_programs() -> tuple[Builder, Builder, int]:
    """An init program (data, parameters) and a training step over them."""
    x = rand(16, 8, dtype=np.float32)
    y = R.integers(0, 4, 16)
    init = Builder()
    xr, yr = init.blob(x.shape, "f32", blob(x)), init.blob(y.shape, "i64", blob(y))
    w1 = init.param((8, 16), std=0.3, seed=1)
    w2 = init.param((16, 4), std=0.3, seed=2)
    step = Builder(first_register=init.next)
    h = step.op("relu", step.linear(xr, w1))
    loss = step.loss("cross_entropy", step.linear(h, w2), yr)
    step.backward(loss)
    step.optimize("adamw", [w1, w2], lr=0.01)
    step.checkpoint()
    return init, step, loss


def test_training_lowers_the_loss_and_traces_are_bit_identical() -> None:
    init, step, loss = mlp_programs()
    runs = []
    for _ in range(2):
        m = Machine()
        m.run(init.build(registers=16), BLOBS)
        traces, losses = [], []
        for _ in range(30):
            result = m.run(step.build(registers=16), BLOBS)
            traces.append(result.trace)
            losses.append(float(m.registers[loss][0]))
        runs.append((traces, losses))
    (t1, l1), (t2, l2) = runs
    assert l1[-1] < 0.5 * l1[0]
    assert t1 == t2 and l1 == l2  # deterministic: bit-identical, run after run
    assert first_divergence(t1[-1], t2[-1]) is None
    tampered = list(t1[-1])
    tampered[5] = b"\0" * 32
    assert first_divergence(t1[-1], tampered) == 5


def test_gas_and_memory_limits_name_the_instruction() -> None:
    init, step, _ = mlp_programs()
    first = Machine()
    first.run(init.build(registers=16), BLOBS)
    used = first.run(step.build(registers=16), BLOBS).gas_used
    assert used > 0
    tight = Machine(gas_limit=used - 1)
    tight.run(init.build(registers=16), BLOBS)
    tight.gas_limit = used - 1
    with pytest.raises(OutOfGas) as err:
        tight.run(step.build(registers=16), BLOBS)
    assert err.value.code == "vm-out-of-gas"
    assert err.value.message.startswith("instruction 6 (Checkpoint)")  # the last one
    with pytest.raises(OutOfMemory) as err2:
        Machine(memory_limit=1000).run(init.build(registers=16), BLOBS)
    assert err2.value.code == "vm-out-of-memory"
    missing = Builder()
    missing.blob((2,), "f32", b"\x99" * 32)
    with pytest.raises(VmError) as err3:
        Machine().run(missing.build(), {})
    assert err3.value.code == "vm-missing-blob"


def torch_lstm(x: Any, *weights: Any) -> Any:
    """PyTorch's own nn.LSTM, called with our weights (ours are its
    weight matrices transposed) through torch.func.functional_call."""
    layers = len(weights) // 3
    hid = weights[1].shape[0]
    lstm = torch.nn.LSTM(x.shape[2], hid, layers, batch_first=True).double()
    params = {}
    for layer in range(layers):
        w_ih, w_hh, b = weights[3 * layer : 3 * layer + 3]
        params[f"weight_ih_l{layer}"] = w_ih.T
        params[f"weight_hh_l{layer}"] = w_hh.T
        params[f"bias_ih_l{layer}"] = b
        params[f"bias_hh_l{layer}"] = torch.zeros_like(b)
    out, _ = torch.func.functional_call(lstm, params, (x,))
    return out


def torch_attention(x: Any, wq: Any, wk: Any, wv: Any, wo: Any, heads: int, causal: bool) -> Any:
    n, t, d = x.shape
    q, k, v = (
        F.linear(x, w.T).reshape(n, t, heads, d // heads).transpose(1, 2) for w in (wq, wk, wv)
    )
    ctx = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return ctx.transpose(1, 2).reshape(n, t, d) @ wo


@pytest.mark.parametrize("layers", [1, 2])
def test_lstm_matches_pytorch(layers: int) -> None:
    hid, width = 5, 3
    weights = []
    for layer in range(layers):
        inp = width if layer == 0 else hid
        weights += [rand(inp, 4 * hid), rand(hid, 4 * hid), rand(4 * hid)]
    run_case(
        [rand(2, 4, width), *weights],
        lambda b, r: b.lstm(r[0], r[1:], hidden=hid),
        torch_lstm,
    )


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_pytorch(causal: bool) -> None:
    d = 8
    run_case(
        [rand(2, 5, d), rand(d, d), rand(d, d), rand(d, d), rand(d, d)],
        lambda b, r: b.attention(*r, heads=2, causal=causal),
        lambda *t: torch_attention(*t, heads=2, causal=causal),
    )


def test_checkpoint_only_traces_keep_the_checkpoints_and_the_results() -> None:
    init, step, loss = mlp_programs()
    results = {}
    for mode in ("full", "checkpoints"):
        m = Machine(trace=mode)
        m.run(init.build(registers=16), BLOBS)
        runs = [m.run(step.build(registers=16), BLOBS) for _ in range(3)]
        results[mode] = (runs, m.registers[loss].copy())
    full, light = results["full"], results["checkpoints"]
    assert all(len(r.trace) == 7 for r in full[0]) and all(not r.trace for r in light[0])
    assert [r.checkpoints for r in full[0]] == [r.checkpoints for r in light[0]]
    assert np.array_equal(full[1], light[1])
    with pytest.raises(VmError) as err:
        Machine(trace="some")
    assert err.value.code == "vm-bad-trace-mode"
