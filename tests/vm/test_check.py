"""The static check: shapes and dtypes inferred for a whole CNN training
step, and each kind of mistake caught before running, naming the
instruction."""

from __future__ import annotations

import pytest

from bcai.vm import Builder, DType, TensorType, VmError, check
from bcai.vm._isa import Program, TensorOp

BLOB = b"\x11" * 32


def cnn_step() -> tuple[Builder, dict[str, int]]:
    b = Builder()
    x = b.blob((32, 1, 28, 28), "f32", BLOB)
    y = b.blob((32,), "i64", BLOB)
    w1, b1 = b.param((8, 1, 3, 3), std=0.3, seed=1), b.param((8,))
    w2, b2 = b.param((8 * 14 * 14, 10), std=0.02, seed=2), b.param((10,))
    h = b.op("relu", b.conv2d(x, w1, b1, padding=1))
    h = b.maxpool2d(h, 2)
    flat = b.op("reshape", h, ints=(32, -1))
    logits = b.linear(flat, w2, b2)
    loss = b.loss("cross_entropy", logits, y)
    b.backward(loss)
    b.optimize("adam", lr=1e-3)
    b.checkpoint()
    b.halt()
    return b, {"h": h, "flat": flat, "logits": logits, "loss": loss}


def test_a_cnn_step_checks_and_every_shape_is_inferred() -> None:
    b, regs = cnn_step()
    states = check(b.build())
    final = states[-1]
    assert final[regs["h"]] == TensorType((32, 8, 14, 14), DType.F32)
    assert final[regs["flat"]] == TensorType((32, 8 * 14 * 14), DType.F32)
    assert final[regs["logits"]] == TensorType((32, 10), DType.F32)
    assert final[regs["loss"]].shape == (1,)
    assert len(states) == len(b.instructions)


def errors() -> list[tuple[str, Program, int]]:
    cases = []

    def case(code: str, index: int, build: object) -> None:
        b = Builder()
        build(b)  # type: ignore[operator]
        cases.append((code, b.build(), index))

    case("vm-check-undefined-register", 0, lambda b: b.op("relu", 0))
    case("vm-check-shape", 2, lambda b: b.op("matmul", b.create((2, 3)), b.create((4, 5))))
    case("vm-check-shape", 2, lambda b: b.op("add", b.create((2, 3)), b.create((4, 3))))
    case("vm-check-dtype", 2, lambda b: b.op("add", b.create((2,)), b.create((2,), "i32")))
    case("vm-check-dtype", 1, lambda b: b.op("tanh", b.create((2,), "i8")))
    case("vm-check-shape", 1, lambda b: b.op("reshape", b.create((2, 3)), ints=(4, 2)))
    case("vm-check-shape", 1, lambda b: b.op("transpose", b.create((2, 3)), ints=(0, 0)))
    case("vm-check-bad-axis", 1, lambda b: b.op("softmax", b.create((2, 3)), ints=(2,)))
    case("vm-check-shape", 1, lambda b: b.op("slice", b.create((2, 3)), ints=(1, 2, 5)))
    case("vm-check-arity", 1, lambda b: b.op("add", b.create((2,))))
    case(
        "vm-check-shape",
        2,
        lambda b: b.conv2d(b.create((1, 3, 8, 8)), b.create((4, 2, 3, 3))),
    )
    case(
        "vm-check-shape",
        2,
        lambda b: b.loss("cross_entropy", b.create((4, 10)), b.create((5,), "i64")),
    )
    case(
        "vm-check-not-trainable",
        1,
        lambda b: (b.create((2,)), b.optimize("sgd", [0], lr=0.1)),
    )
    case(
        "vm-check-attrs",
        1,
        lambda b: (b.param((2,)), b.optimize("sgd", lr=0.0)),
    )
    case("vm-check-dtype", 0, lambda b: b.create((2,), "i8", "normal"))
    case("vm-check-blob", 0, lambda b: b.create((2,), "f32", "blob", blob=b"short"))
    return cases


@pytest.mark.parametrize(("code", "program", "index"), errors())
def test_mistakes_are_caught_before_running(code: str, program: Program, index: int) -> None:
    with pytest.raises(VmError) as err:
        check(program)
    assert err.value.code == code
    assert err.value.message.startswith(f"instruction {index} ")


def test_out_of_range_registers_and_unknown_kinds() -> None:
    b = Builder()
    b.create((2,))
    program = b.build(registers=1)
    bad = Program(
        version=1,
        registers=1,
        instructions=(
            *program.instructions,
            TensorOp(dst=3, kind=6, srcs=(0,), ints=(), floats=()),
        ),
    )
    with pytest.raises(VmError) as err:
        check(bad)
    assert err.value.code == "vm-check-bad-register"
    unknown = Program(
        version=1,
        registers=2,
        instructions=(
            *program.instructions,
            TensorOp(dst=1, kind=99, srcs=(0,), ints=(), floats=()),
        ),
    )
    with pytest.raises(VmError) as err:
        check(unknown)
    assert err.value.code == "vm-check-unknown-op"
    with pytest.raises(VmError) as err:
        check(Program(version=9, registers=1, instructions=()))
    assert err.value.code == "vm-check-version"


def test_inputs_kept_between_runs_count_as_defined() -> None:
    b = Builder(first_register=2)
    b.linear(b.create((4, 3)), 0, 1)
    inputs = {0: TensorType((3, 5), DType.F32), 1: TensorType((5,), DType.F32)}
    states = check(b.build(registers=4), inputs, trainable=frozenset({0, 1}))
    assert states[-1][3] == TensorType((4, 5), DType.F32)
