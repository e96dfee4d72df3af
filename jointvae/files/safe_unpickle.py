"""A pickle reader that can only build objects from an explicit allowlist.

`pickle.load` will import and call any function named in the stream (for
example `os.system`), so loading a pickle from the internet is the same as
running its author's code. Both pickle readers in this package (the legacy
torch weights file and the MNIST fallback archive) therefore go through this
one class: every global the stream names is looked up in a dictionary the
caller hands in, and anything missing from it stops the load.

Example::

    allowed = {("collections", "OrderedDict"): collections.OrderedDict}
    obj = restricted_load(open("x.pkl", "rb"), allowed)

Refusing globals stops code from running, but not work from piling up: a
few hundred bytes of pickle can describe a list nested a hundred deep in
which every level holds the level below twice, whose repr, hash or
comparison never finishes. `check_pickle` walks a stream's opcodes without
building anything and refuses, before the unpickler runs, a stream with too
many opcodes, objects nested too deeply or reaching too many objects, or a
list, dict or object referred to twice (only numbers, strings, globals and
tuples of those may be shared).

Every refusal is a `PickleRefusedError`: both a `pickle.UnpicklingError` and a
`ValueError`, with a one-line message naming the source.
"""

from __future__ import annotations

import pickle
import pickletools
from typing import IO, Any, Callable, Mapping, NamedTuple

#: (module, name) as written in the pickle stream -> the object to use for it.
Allowlist = Mapping[tuple[str, str], Any]


class PickleRefusedError(pickle.UnpicklingError, ValueError):
    """A pickle this package will not load; the message names the source and the reason.

    `reason` is the message without the source, for callers that name the source their own way.
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = message if reason is None else reason


class RefusedGlobalError(PickleRefusedError):
    """The pickle names a global that is not on the allowlist."""


class PickleTooComplexError(PickleRefusedError):
    """The pickle is over `check_pickle`'s limits: too many opcodes, too deep, or a shared container."""


#: Default limits of `check_pickle`. The paper's model.pt state_dict pickle has
#: 722 opcodes, builds about 900 objects and nests 4 deep.
MAX_OPCODES = 100_000
MAX_OBJECTS = 1_000_000
MAX_DEPTH = 32

# What a stack entry is, for sharing: an "atom" (number, string, None) or a
# "global" holds nothing; a "tuple" of atoms, globals and such tuples never
# changes. Those three may be shared (memo get, DUP); an "object" (a list, a
# dict, whatever a call returned) may not, so its count of objects is exact.
_ATOMS = {"int", "int_or_bool", "bool", "float", "None", "bytes", "bytes_or_str", "str", "bytearray"}
_SHAREABLE = {"atom", "global", "tuple"}
_GLOBALS = {"GLOBAL", "STACK_GLOBAL", "EXT1", "EXT2", "EXT4"}
_MEMO_PUT = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"}
_MEMO_GET = {"GET", "BINGET", "LONG_BINGET"}
# Opcodes that add to the object below their arguments instead of making a new one.
_MUTATORS = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}
_MARK = object()


class _Entry(NamedTuple):
    """What check_pickle knows of one object on the unpickler's stack."""

    kind: str      # "atom", "global", "tuple" or "object"
    depth: int     # 0 for an atom or global; 1 + the deepest part for a container
    objects: int   # objects reachable from it, counting a shared one each time it is reached


def check_pickle(
    fileobj: IO[bytes],
    *,
    what: str,
    max_opcodes: int = MAX_OPCODES,
    max_objects: int = MAX_OBJECTS,
    max_depth: int = MAX_DEPTH,
) -> None:
    """Walk one pickle's opcodes from the current position, build nothing, and seek back.

    Follows the unpickler's stack with an `_Entry` per object, so the walk
    costs one step per opcode whatever the stream describes, and bounds what
    a repr, hash or comparison of the unpickled object can cost later.

    Raises:
        PickleTooComplexError: more than `max_opcodes` opcodes, an object that
            reaches more than `max_objects` objects (counting shared ones each
            time) or nests more than `max_depth` deep, a memo get / DUP of a
            list, dict or other mutable object, or an APPEND / SETITEM / BUILD
            applied to a global (it would change the allowlisted object for
            every later load).
        PickleRefusedError: a truncated or corrupt stream (a length past the
            end, an unknown opcode, a stack that runs out).
    """
    start = fileobj.tell()
    stack: list = []        # _MARK or _Entry
    memo: dict = {}

    def corrupt(detail: str) -> PickleRefusedError:
        reason = f"truncated or corrupt pickle ({detail})"
        return PickleRefusedError(f"{what}: {reason}", reason)

    def too_complex(reason: str) -> PickleTooComplexError:
        return PickleTooComplexError(f"{what}: {reason}", reason)

    def take(count: int, pos: int) -> list:
        if count == 0:
            return []
        if len(stack) < count or any(entry is _MARK for entry in stack[-count:]):
            raise corrupt(f"stack underflow at byte {pos}")
        taken = stack[-count:]
        del stack[-count:]
        return taken

    def push(entry: _Entry, pos: int) -> None:
        if entry.depth > max_depth:
            raise too_complex(f"objects nested more than {max_depth} deep (byte {pos})")
        if entry.objects > max_objects:
            raise too_complex(f"an object made of more than {max_objects} objects (byte {pos})")
        stack.append(entry)

    count = 0
    try:
        for opcode, arg, pos in pickletools.genops(fileobj):
            count += 1
            if count > max_opcodes:
                raise too_complex(f"more than {max_opcodes} pickle opcodes")
            name = opcode.name
            if name in _MEMO_PUT:
                if not stack or stack[-1] is _MARK:
                    raise corrupt(f"memo put of nothing at byte {pos}")
                memo[len(memo) if name == "MEMOIZE" else arg] = stack[-1]
                continue
            if name in _MEMO_GET or name == "DUP":
                if name == "DUP":
                    if not stack or stack[-1] is _MARK:
                        raise corrupt(f"DUP of nothing at byte {pos}")
                    entry = stack[-1]
                elif arg in memo:
                    entry = memo[arg]
                else:
                    raise corrupt(f"memo get of an unset entry at byte {pos}")
                if entry.kind not in _SHAREABLE:
                    raise too_complex(f"refers to one list, dict or object twice (byte {pos})")
                push(entry, pos)
                continue
            if name == "POP" and stack and stack[-1] is _MARK:
                stack.pop()
                continue
            before, after = opcode.stack_before, opcode.stack_after
            consumed: list = []
            below = len(before)
            if pickletools.markobject in before:
                mark = next((i for i in range(len(stack) - 1, -1, -1) if stack[i] is _MARK), None)
                if mark is None:
                    raise corrupt(f"no mark for {name} at byte {pos}")
                consumed = stack[mark + 1:]
                del stack[mark:]
                below = before.index(pickletools.markobject)
            consumed = take(below, pos) + consumed
            for produced in after:
                if produced is pickletools.markobject:
                    stack.append(_MARK)
                elif name in _MUTATORS:
                    target, items = consumed[0], consumed[1:]
                    if target.kind != "object":
                        # BUILD on an allowlisted global would rewrite it for every later load
                        raise too_complex(f"{name} changes a global or a constant (byte {pos})")
                    push(_Entry("object", max([target.depth] + [1 + item.depth for item in items]),
                                target.objects + sum(item.objects for item in items)), pos)
                elif name in _GLOBALS:
                    push(_Entry("global", 0, 1), pos)
                elif produced.name in _ATOMS:
                    push(_Entry("atom", 0, 1), pos)
                else:
                    frozen = produced.name == "tuple" and all(item.kind in _SHAREABLE for item in consumed)
                    push(_Entry("tuple" if frozen else "object",
                                1 + max((item.depth for item in consumed), default=-1),
                                1 + sum(item.objects for item in consumed)), pos)
    except PickleRefusedError:
        raise
    except Exception as exc:  # pickletools' ValueError for a bad length, an unknown opcode, the end of the data
        raise corrupt(str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__) from None
    fileobj.seek(start)


def _shown(text: str) -> str:
    """A name from the stream as it is when printable and short; else its repr, cut: one line either way."""
    return text if text.isprintable() and len(text) <= 200 else repr(text[:200])


class RestrictedUnpickler(pickle.Unpickler):
    """`pickle.Unpickler` whose globals come only from `allowed`.

    Args:
        file: binary file object positioned at the start of a pickle.
        allowed: maps (module, name) pairs as they appear in the stream to the
            objects to hand back for them. The value need not be the real
            object: a reader can substitute a harmless stand-in (the legacy
            torch reader maps `torch.FloatStorage` to a plain marker).
        persistent_load: optional callable for persistent ids (torch uses them
            to refer to tensor storages kept outside the pickle). Without one,
            a stream that contains a persistent id is refused by `pickle`.
        what: how to name the source in error messages (default: the file's
            name, if it has one).
        encoding: how to decode Python 2 `str` objects ("latin1" keeps NumPy
            array bytes intact; "utf-8" suits text such as dictionary keys).
    """

    def __init__(
        self,
        file: IO[bytes],
        allowed: Allowlist,
        persistent_load: Callable[[Any], Any] | None = None,
        *,
        what: str | None = None,
        encoding: str = "ASCII",
    ) -> None:
        super().__init__(file, encoding=encoding)
        self._allowed = dict(allowed)
        self._what = what or str(getattr(file, "name", "pickle stream"))
        # Only shadow the base class's attribute when a handler is given:
        # the base class then refuses persistent ids on its own.
        if persistent_load is not None:
            self.persistent_load = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        # Every GLOBAL / STACK_GLOBAL / EXT opcode lands here, so this is the
        # single point where the stream could reach arbitrary code.
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise RefusedGlobalError(
                f"refusing to load {_shown(f'{module}.{name}')} from {self._what}"
            ) from None


def restricted_load(
    fileobj: IO[bytes],
    allowed: Allowlist,
    persistent_load: Callable[[Any], Any] | None = None,
    *,
    what: str | None = None,
    encoding: str = "ASCII",
) -> Any:
    """Read one pickle from `fileobj` with `RestrictedUnpickler` and return it."""
    unpickler = RestrictedUnpickler(
        fileobj, allowed, persistent_load, what=what, encoding=encoding
    )
    return unpickler.load()
