"""river detector state as plain data (JSON-able), and back — never pickle.

Why not pickle: snapshots travel through a Kafka topic, and unpickling a record runs whatever it names. Why not
replay the inputs: a detector's state depends on every input since its last reset, which is unbounded on a
stable stream. So the state is the detector's own attributes, walked as data: numbers, strings, lists, deques,
river's small statistics objects (``stats.Mean``, ``stats.Var``, ...), ``random.Random`` (its ``getstate()``
tuple) and river's Rust helpers (their own ``__getstate__`` bytes, base64).

Restoring never trusts the snapshot's shape: it builds a fresh detector from the *configured* parameters (so
bound methods and helpers come from the constructor) and writes the snapshot's values over its attributes,
demanding the same attribute names and kinds of value at every level. Anything else raises ``ValueError``
(the caller starts that monitor fresh). A river upgrade that renames an attribute reads as a mismatch, not as a
corrupt detector.
"""
from __future__ import annotations

import base64
import math
import random
import types
from collections import deque
from typing import Any

MAX_INT = 2**63 - 1
MAX_BYTES = 1 << 20  # a Rust helper's state (ADWIN's buckets) is a few KB
_SCALARS = (type(None), bool, int, float)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) or type(v).__module__ == "numpy"


def _has_rust_state(v: Any) -> bool:
    return not hasattr(v, "__dict__") and type(v).__module__.startswith("river._river_rust")


def encode(v: Any) -> Any:
    """One attribute value as JSON-able data; raises TypeError for anything the walker does not know."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        if abs(v) > MAX_INT:
            raise TypeError("integer out of range")
        return v
    if _is_number(v):
        f = float(v)
        return f if math.isfinite(f) else {"float": repr(f)}  # 'inf', '-inf', 'nan': JSON has none of them
    if isinstance(v, deque):
        return {"deque": [encode(x) for x in v]}
    if isinstance(v, (list, tuple)):
        return [encode(x) for x in v]
    if isinstance(v, random.Random):
        version, internal, gauss = v.getstate()
        return {"random": [version, list(internal), gauss]}
    if _has_rust_state(v):
        return {"bytes": base64.b64encode(v.__getstate__()).decode()}
    if type(v).__module__.startswith("river.") and hasattr(v, "__dict__"):
        return {"obj": {k: encode(x) for k, x in vars(v).items() if not isinstance(x, types.MethodType)}}
    raise TypeError(f"cannot encode a {type(v).__name__}")


def detector_state(det: Any) -> dict[str, Any]:
    """The detector's data attributes (its bound methods come back from the constructor)."""
    return {k: encode(v) for k, v in vars(det).items() if not isinstance(v, types.MethodType)}


def _scalar(data: Any, path: str) -> Any:
    if isinstance(data, dict) and set(data) == {"float"} and data["float"] in ("inf", "-inf", "nan"):
        return float(data["float"])
    if not isinstance(data, _SCALARS):
        raise ValueError(f"{path}: expected a number")
    if isinstance(data, int) and not isinstance(data, bool) and abs(data) > MAX_INT:
        raise ValueError(f"{path}: integer out of range")
    return data


def _random_state(data: Any, path: str) -> tuple[Any, ...]:
    if not (isinstance(data, list) and len(data) == 3 and isinstance(data[1], list) and len(data[1]) == 625):
        raise ValueError(f"{path}: not a random generator state")
    version, internal, gauss = data
    if version != 3 or not all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**32
                               for x in internal) or internal[-1] > 624:
        raise ValueError(f"{path}: not a random generator state")
    if gauss is not None and not isinstance(gauss, float):
        raise ValueError(f"{path}: not a random generator state")
    return version, tuple(internal), gauss


def decode(data: Any, template: Any, path: str) -> Any:
    """``data`` read against ``template`` (the same attribute of a fresh detector); returns the value to set."""
    if isinstance(template, str):
        if not isinstance(data, str):
            raise ValueError(f"{path}: expected a string")
        return data
    if template is None or isinstance(template, bool) or _is_number(template):
        return _scalar(data, path)  # river turns None/int slots into floats as it learns
    if isinstance(template, deque):
        if not (isinstance(data, dict) and set(data) == {"deque"} and isinstance(data["deque"], list)):
            raise ValueError(f"{path}: expected a deque")
        if template.maxlen is not None and len(data["deque"]) > template.maxlen:
            raise ValueError(f"{path}: longer than its maxlen {template.maxlen}")
        return deque((_scalar(x, path) for x in data["deque"]), maxlen=template.maxlen)
    if isinstance(template, (list, tuple)):
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a list")
        return type(template)(_scalar(x, path) for x in data)
    if isinstance(template, random.Random):
        if not (isinstance(data, dict) and set(data) == {"random"}):
            raise ValueError(f"{path}: expected a random generator state")
        template.setstate(_random_state(data["random"], path))
        return template
    if _has_rust_state(template):
        if not (isinstance(data, dict) and set(data) == {"bytes"} and isinstance(data["bytes"], str)
                and len(data["bytes"]) <= MAX_BYTES * 4 // 3 + 4):
            raise ValueError(f"{path}: expected the helper's state bytes")
        raw = base64.b64decode(data["bytes"], validate=True)
        try:
            template.__setstate__(raw)
            ok = template.__getstate__() == raw  # the helper read all of it, and nothing else
        except BaseException as exc:  # noqa: BLE001 - a Rust panic is a BaseException; it must not end the worker
            raise ValueError(f"{path}: unreadable helper state ({type(exc).__name__})") from None
        if not ok:
            raise ValueError(f"{path}: helper state does not round-trip")
        return template
    if hasattr(template, "__dict__") and type(template).__module__.startswith("river."):
        if not (isinstance(data, dict) and set(data) == {"obj"} and isinstance(data["obj"], dict)):
            raise ValueError(f"{path}: expected a {type(template).__name__}")
        _fill(template, data["obj"], path)
        return template
    raise ValueError(f"{path}: cannot restore a {type(template).__name__}")


def _fill(obj: Any, data: dict[str, Any], path: str, params: frozenset[str] = frozenset()) -> None:
    names = {k for k, v in vars(obj).items() if not isinstance(v, types.MethodType)}
    if set(data) != names:
        raise ValueError(f"{path}: attributes {sorted(set(data) ^ names)} do not match this river version")
    for k in sorted(names):
        current = getattr(obj, k)
        if k in params and isinstance(current, (*_SCALARS, str)):
            if data[k] != encode(current):  # a hyperparameter: the config decides it, not the snapshot
                raise ValueError(f"{path}.{k}: snapshot was taken with another value")
            continue
        setattr(obj, k, decode(data[k], current, f"{path}.{k}"))


def restore_detector(fresh: Any, state: Any, kind: str) -> Any:
    """Write ``state`` (from ``detector_state``) over ``fresh`` (built from the configured parameters)."""
    if not isinstance(state, dict):
        raise ValueError(f"{kind}: detector state must be an object")
    _fill(fresh, state, kind, frozenset(fresh._get_params()))
    return fresh
