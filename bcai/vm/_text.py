"""The readable text form of a program: one instruction per line,
`mnemonic field=value ...` with every field written, so assemble(disassemble(p))
== p exactly.

    .program registers=8
    tensor_create dst=r0 shape=[4,3] dtype=f32 init=normal seed=7 floats=[0.0,0.1] \
        blob=- trainable=true                      (one line in a file)
    tensor_op dst=r2 kind=matmul srcs=[r1,r0] ints=[] floats=[]
    halt

Registers are `rN`, an absent optional register `-`, enums their lower-case
names, floats Python's shortest round-tripping repr, bytes hex. `#` starts a
comment; a line ending in a backslash continues on the next. Errors name
the line: `VmError("vm-asm-*")`.
"""

from __future__ import annotations

import enum
import re
from typing import Any

from bcai import codec
from bcai.vm._errors import VmError
from bcai.vm._isa import (
    FLOATS,
    INSTRUCTION_TYPES,
    INTS,
    OPT_REG,
    REG,
    REGS,
    SHAPE,
    VERSION,
    Activation,
    DType,
    Init,
    LossKind,
    OpKind,
    Optimizer,
    Program,
)

_ENUMS: dict[tuple[str, str], type[enum.IntEnum]] = {
    ("TensorCreate", "dtype"): DType,
    ("TensorCreate", "init"): Init,
    ("TensorOp", "kind"): OpKind,
    ("Linear", "activation"): Activation,
    ("Loss", "kind"): LossKind,
    ("OptimizerStep", "kind"): Optimizer,
}


def _mnemonic(cls: type) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).lower().replace("2_d", "2d")


MNEMONICS = {_mnemonic(cls): cls for cls in INSTRUCTION_TYPES.values()}


def _render(cls: type, name: str, c: object, value: Any) -> str:
    enum_type = _ENUMS.get((cls.__name__, name))
    if enum_type is not None:
        return enum_type(value).name.lower()
    if c is REG:
        return f"r{value}"
    if c is OPT_REG:
        return "-" if value is None else f"r{value}"
    if isinstance(value, tuple) and (c is REGS or name in ("params", "regs")):
        return "[" + ",".join(f"r{v}" for v in value) + "]"
    if isinstance(value, tuple):
        return "[" + ",".join(repr(float(v)) if c is FLOATS else str(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return value.hex() or "-"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def disassemble(program: Program) -> str:
    lines = [f".program registers={program.registers}"]
    for ins in program.instructions:
        cls = type(ins)
        parts = [_mnemonic(cls)]
        for name, c in cls._fields():
            parts.append(f"{name}={_render(cls, name, c, getattr(ins, name))}")
        lines.append(" ".join(parts))
    return "\n".join(lines) + "\n"


def _reg(text: str, where: str) -> int:
    if not re.fullmatch(r"r\d+", text):
        raise VmError("vm-asm-bad-register", f"{where}: {text!r} is not a register (rN)")
    return int(text[1:])


def _list(text: str, where: str) -> list[str]:
    if not (text.startswith("[") and text.endswith("]")):
        raise VmError("vm-asm-bad-value", f"{where}: {text!r} is not a [list]")
    inner = text[1:-1].strip()
    return [t.strip() for t in inner.split(",")] if inner else []


def _parse(cls: type, name: str, c: object, text: str, where: str) -> Any:
    enum_type = _ENUMS.get((cls.__name__, name))
    try:
        if enum_type is not None:
            return int(enum_type[text.upper()])
        if c is REG:
            return _reg(text, where)
        if c is OPT_REG:
            return None if text == "-" else _reg(text, where)
        if c is REGS or name in ("params", "regs"):
            return tuple(_reg(t, where) for t in _list(text, where))
        if c is FLOATS:
            return tuple(float(t) for t in _list(text, where))
        if c in (INTS, SHAPE):
            return tuple(int(t) for t in _list(text, where))
        if c is codec.Bool:
            if text not in ("true", "false"):
                raise ValueError(text)
            return text == "true"
        if c is codec.F64:
            return float(text)
        if isinstance(c, codec.Bytes):
            return b"" if text == "-" else bytes.fromhex(text)
        return int(text)
    except (KeyError, ValueError) as err:
        raise VmError("vm-asm-bad-value", f"{where}: {name}={text!r}") from err


def assemble(text: str) -> Program:
    registers: int | None = None
    instructions = []
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = pending + " " + raw.split("#", 1)[0].strip() if pending else raw
        line = line.split("#", 1)[0].strip()
        if line.endswith("\\"):  # continues on the next line
            pending = line[:-1]
            continue
        pending = ""
        if not line:
            continue
        where = f"line {number}"
        words = line.split()
        if words[0] == ".program":
            fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
            try:
                registers = int(fields["registers"])
            except (KeyError, ValueError) as err:
                raise VmError("vm-asm-bad-header", f"{where}: .program registers=N") from err
            continue
        cls = MNEMONICS.get(words[0])
        if cls is None:
            raise VmError("vm-asm-unknown-instruction", f"{where}: {words[0]!r}")
        given: dict[str, str] = {}
        for word in words[1:]:
            key, sep, value = word.partition("=")
            if not sep:
                raise VmError("vm-asm-bad-value", f"{where}: {word!r} is not field=value")
            given[key] = value
        fields_of = dict(cls._fields())
        unknown = set(given) - set(fields_of)
        missing = set(fields_of) - set(given)
        if unknown or missing:
            raise VmError(
                "vm-asm-fields",
                f"{where}: {words[0]} unknown {sorted(unknown)} missing {sorted(missing)}",
            )
        values = {n: _parse(cls, n, c, given[n], where) for n, c in fields_of.items()}
        instructions.append(cls(**values))
    if registers is None:
        raise VmError("vm-asm-bad-header", "the program needs a `.program registers=N` line")
    return Program(version=VERSION, registers=registers, instructions=tuple(instructions))
