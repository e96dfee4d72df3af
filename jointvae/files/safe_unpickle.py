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
"""

from __future__ import annotations

import pickle
from typing import IO, Any, Callable, Mapping

#: (module, name) as written in the pickle stream -> the object to use for it.
Allowlist = Mapping[tuple[str, str], Any]


class RefusedGlobalError(pickle.UnpicklingError):
    """The pickle names a global that is not on the allowlist."""


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
                f"refusing to load {module}.{name} from {self._what}"
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
