"""The VM's program encoding and text form: canonical round trips over
random programs, a strict decoder, and assembler errors that name the line."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bcai import codec
from bcai.vm import (
    Activation,
    Backward,
    Checkpoint,
    DType,
    Halt,
    Init,
    Linear,
    Loss,
    LossKind,
    OpKind,
    Optimizer,
    OptimizerStep,
    Program,
    TensorCreate,
    TensorOp,
    VmError,
    assemble,
    disassemble,
)
from bcai.vm._isa import INSTRUCTION_TYPES

regs = st.integers(0, 63)
floats = st.floats(allow_nan=False, width=64)
ints = st.integers(-(2**63), 2**63 - 1)


def records(cls: type) -> st.SearchStrategy[object]:
    """Any value of an instruction record, field by field from its codec."""
    kw = {}
    for name, c in cls._fields():  # type: ignore[attr-defined]
        kw[name] = strategy_for(c)
    return st.builds(cls, **kw)


def strategy_for(c: object) -> st.SearchStrategy[object]:
    if isinstance(c, codec.UInt):
        return st.integers(0, min(c.max, 2**64 - 1))
    if isinstance(c, codec.Int):
        return ints
    if c is codec.F64:
        return floats
    if c is codec.Bool:
        return st.booleans()
    if isinstance(c, codec.Bytes):
        return st.binary(max_size=32)
    if isinstance(c, codec.Option):
        return st.none() | strategy_for(c.item)
    if isinstance(c, codec.ListOf):
        return st.lists(strategy_for(c.item), max_size=4).map(tuple)
    raise AssertionError(f"no strategy for {c!r}")


def valid_enums(ins: object) -> bool:
    """The text form names enum fields, so they must hold defined values."""
    checks = {
        (TensorCreate, "dtype"): DType,
        (TensorCreate, "init"): Init,
        (TensorOp, "kind"): OpKind,
        (Linear, "activation"): Activation,
        (Loss, "kind"): LossKind,
        (OptimizerStep, "kind"): Optimizer,
    }
    for (cls, field), kind in checks.items():
        if isinstance(ins, cls) and getattr(ins, field) not in kind._value2member_map_:
            return False
    return True


instructions = st.one_of([records(cls) for cls in INSTRUCTION_TYPES.values()])
programs = st.builds(
    Program,
    version=st.just(1),
    registers=st.integers(1, 4096),
    instructions=st.lists(instructions.filter(valid_enums), max_size=8).map(tuple),
)


@settings(max_examples=200, deadline=None)
@given(programs)
def test_programs_round_trip_through_bytes_and_text(program: Program) -> None:
    raw = program.encode()
    assert Program.decode(raw) == program
    assert Program.decode(raw).encode() == raw  # one encoding per program
    assert assemble(disassemble(program)) == program


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoder_only_raises_decode_errors(data: bytes) -> None:
    try:
        program = Program.decode(data)
    except codec.DecodeError as err:
        assert err.code.startswith("codec-")
    else:
        assert program.encode() == data


def test_nan_has_no_encoding() -> None:
    op = TensorOp(dst=0, kind=OpKind.LAYERNORM, srcs=(1,), ints=(), floats=(float("nan"),))
    with pytest.raises(codec.EncodeError):
        op.encode()
    good = TensorOp(dst=0, kind=OpKind.LAYERNORM, srcs=(1,), ints=(), floats=(1e-5,))
    raw = bytearray(good.encode())
    raw[-8:] = bytes.fromhex("7ff8000000000001")  # a NaN payload
    with pytest.raises(codec.DecodeError):
        TensorOp.decode(bytes(raw))


def test_a_readable_program() -> None:
    text = """
    .program registers=6   # a tiny classifier step
    tensor_create dst=r0 shape=[8,4] dtype=f32 init=normal seed=1 floats=[0.0,1.0] \\
        blob=- trainable=false
    tensor_create dst=r1 shape=[4,3] dtype=f32 init=uniform seed=2 floats=[-0.5,0.5] \\
        blob=- trainable=true
    tensor_create dst=r2 shape=[8] dtype=i64 init=zeros seed=0 floats=[] blob=- trainable=false
    linear dst=r3 x=r0 w=r1 b=- activation=none
    loss dst=r4 kind=cross_entropy pred=r3 target=r2
    backward loss=r4
    optimizer_step kind=adamw params=[r1] floats=[0.001,0.9,0.999,1e-08,0.01]
    checkpoint regs=[]
    halt
    """
    program = assemble(text)
    assert len(program.instructions) == 9
    assert program.instructions[3] == Linear(dst=3, x=0, w=1, b=None, activation=0)
    assert isinstance(program.instructions[5], Backward)
    assert isinstance(program.instructions[7], Checkpoint)
    assert isinstance(program.instructions[8], Halt)
    assert assemble(disassemble(program)) == program
    assert len(program.program_id()) == 32


@pytest.mark.parametrize(
    ("text", "code", "line"),
    [
        ("halt", "vm-asm-bad-header", None),
        (".program registers=2\nfrobnicate", "vm-asm-unknown-instruction", 2),
        (".program registers=2\nbackward loss=x1", "vm-asm-bad-register", 2),
        (".program registers=2\n\nbackward", "vm-asm-fields", 3),
        (".program registers=2\nbackward loss=r1 extra=2", "vm-asm-fields", 2),
        (".program registers=2\nloss dst=r0 kind=hinge pred=r1 target=r1", "vm-asm-bad-value", 2),
        (
            ".program registers=2\nconv2d dst=r0 x=r1 w=r1 b=- stride=one padding=0",
            "vm-asm-bad-value",
            2,
        ),
    ],
)
def test_assembler_errors_name_the_line(text: str, code: str, line: int | None) -> None:
    with pytest.raises(VmError) as err:
        assemble(text)
    assert err.value.code == code
    if line is not None:
        assert f"line {line}" in err.value.message
