"""The `isolated` mode's wire format: plain data as tagged JSON in length-prefixed frames (never pickle).

None, bool, int (wide ones as hex), float (nan and inf included), complex, str, bytes, list, tuple, dict,
set, frozenset, nested. Types are read with `type()` and values with the base types' own methods, so
what a solution sends is data and nothing else: an object whose `__eq__` always says yes cannot cross
(`Unencodable`), an int subclass arrives as its int value; the decoder builds built-in types only.
Standard library only: the loader and servers (`isolated`) share an address space with untrusted code.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import struct
from typing import Any

MAX_MESSAGE = 64 * 2**20  # bytes per message: a reply larger than this is an error, not a memory blow-up
MAX_DEPTH = 200  # nesting of encoded values (also what ends a cyclic structure)
BIG_INT_BITS = 1024  # ints wider than this cross as hex text (HumanEval/83's answers have a million digits)
MAX_TEXT = 10_000  # characters of an exception message that cross


class Unencodable(Exception):
    """A value that cannot cross between the solution's and the judge's processes (a class instance, a
    generator, a function argument). The judge records it; the test's status is then `unencodable`."""



def encode(value: Any, depth: int = 0) -> Any:
    """A JSON-ready form of plain data; anything else raises Unencodable. Types are read with `type()`
    and values with the base types' own methods, so neither `__class__` nor overridden dunders are
    consulted: a subclass is encoded as its base type's value."""
    if depth > MAX_DEPTH:
        raise Unencodable("nested too deeply (or cyclic)")
    kind = type(value)
    if value is None or kind is bool:
        return value
    if issubclass(kind, int):
        integer = int.__pos__(value)
        # a large int crosses in hex: decimal conversion is quadratic and refused past 4,300 digits
        return integer if integer.bit_length() <= BIG_INT_BITS else {"i": int.__format__(integer, "x")}
    if issubclass(kind, float):
        return float.__pos__(value)
    if issubclass(kind, str):
        return str.__str__(value)
    inner = depth + 1
    if issubclass(kind, list):
        return [encode(v, inner) for v in list.__iter__(value)]
    if issubclass(kind, tuple):
        return {"t": [encode(v, inner) for v in tuple.__iter__(value)]}
    if issubclass(kind, dict):
        return {"d": [[encode(k, inner), encode(v, inner)] for k, v in dict.items(value)]}
    if issubclass(kind, set):
        return {"s": [encode(v, inner) for v in set.__iter__(value)]}
    if issubclass(kind, frozenset):
        return {"f": [encode(v, inner) for v in frozenset.__iter__(value)]}
    if issubclass(kind, complex):
        number = complex.__pos__(value)
        return {"c": [number.real, number.imag]}
    if issubclass(kind, bytes):
        return {"b": bytes.hex(value)}
    raise Unencodable(f"a value of type {getattr(kind, '__name__', '?')!s:.100} cannot cross to the test")


OUTPUT_BOUND = 256  # characters of a canonical output kept as text; a longer one is replaced by its hash
FLOAT_DECIMALS = 6  # outputs agree when their floats agree to 1e-6 (EvalPlus's default atol)


def _normal(value: Any) -> Any:
    """An `encode`d value rewritten so that values Python calls equal get one form: bool and integral
    floats become ints (True == 1 == 1.0), other floats are rounded to FLOAT_DECIMALS (nan and the
    infinities become tagged text), frozensets become sets, and sets and dicts are sorted by the text
    of their normal forms (their iteration order is not part of the value)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return {"x": repr(value)}
        rounded = round(value, FLOAT_DECIMALS)
        return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if not isinstance(value, dict):
        return value  # None, int, str
    (tag, body), = value.items()
    if tag in ("s", "f"):
        return {"s": sorted((_normal(v) for v in body), key=dumps)}
    if tag == "d":
        return {"d": sorted(([_normal(k), _normal(v)] for k, v in body), key=lambda item: dumps(item[0]))}
    if tag in ("t", "c"):
        return {tag: [_normal(v) for v in body]}
    return value  # "i" (a wide int in hex), "b" (bytes in hex): already one form


RECORDER_IN, RECORDER_OUT = "__utscale_in__", "__utscale_out__"  # a recorded call: `OUT(IN(), call)`
REACHED = "!reached"  # a recorded call that began but returned nothing (it raised or ran out of time)
UNENCODABLE = "!unencodable"  # a recorded call whose value `canonical` cannot encode (it matches nothing)
# canonical text never starts with "!": these markers share the recorded-value channel without clashing


def canonical(value: Any) -> str:
    """What a solution returned, as text that two solutions share exactly when their values are equal
    (`_normal`): one line of ASCII JSON, or, past OUTPUT_BOUND characters, `sha256:` and the hash of that
    text, so a large output is compared whole and never truncated into a false match. Raises
    Unencodable for what `encode` cannot carry (the caller records it as matching nothing)."""
    text = json.dumps(_normal(encode(value)), separators=(",", ":"), allow_nan=False)
    if len(text) > OUTPUT_BOUND:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def _tagged(pairs: list[tuple[str, Any]]) -> Any:
    """json's object hook: every JSON object is exactly one tag and its body, decoded bottom-up."""
    if len(pairs) != 1:
        raise ValueError("a tagged value has exactly one tag")
    tag, body = pairs[0]
    if tag == "c" and isinstance(body, list) and len(body) == 2 and all(type(x) in (int, float) for x in body):
        return complex(body[0], body[1])
    if tag == "b" and isinstance(body, str):
        return bytes.fromhex(body)
    if tag == "i" and isinstance(body, str):
        return int(body, 16)
    if not isinstance(body, list):
        raise ValueError(f"tag {tag!r:.20} needs a list")
    if tag == "t":
        return tuple(body)
    if tag == "s":
        return set(body)
    if tag == "f":
        return frozenset(body)
    if tag == "d" and all(isinstance(item, list) and len(item) == 2 for item in body):
        return {key: value for key, value in body}
    raise ValueError(f"unknown tag {tag!r:.20}")


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=True).encode()


def loads(data: bytes) -> Any:
    """Built-in data only, or ValueError / TypeError / RecursionError for anything malformed."""
    return json.loads(data, object_pairs_hook=_tagged)


def send(sock: socket.socket, message: Any) -> None:
    data = dumps(message)
    sock.sendall(struct.pack(">I", len(data)) + data)


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def receive(sock: socket.socket) -> Any:
    """One framed message; EOFError when the peer is gone, ValueError for an oversized or bad one."""
    (size,) = struct.unpack(">I", _read_exactly(sock, 4))
    if size > MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes is over the limit")
    return loads(_read_exactly(sock, size))
