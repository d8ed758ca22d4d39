"""`python -m services`: the facility's server as its image starts it (facility/server.py).

Started from here, outside the facility's package, so that modules a serving facility never uses
can be kept out before Flask is imported, each replaced by a placeholder that loads the real
module on first use:

- werkzeug's development server: werkzeug's package imports it at once, and with it
  `http.server`, `http.client`, `socketserver` and `ssl` (~1.7 MiB per awake facility);
- `importlib.metadata` (with `zipfile`, `email`'s parser, `csv` and more): Flask's command line
  imports it to list plugins and print versions, which a serving facility never does;
- `decimal`: Flask's JSON encoder only looks at its type when given a value it cannot encode,
  which the facility never hands it;
- Flask's command line (`flask.cli`) and with it `click`: Flask gives the app and each
  blueprint a command group, which the facility never fills nor runs (its management commands
  are `python -m services.facility`, another process). Here each gets a `CommandsLater`: no
  commands; anything else asked of it makes the real group.

Together ~18 ms of the CPU a wake costs (docs/figures.md).

The cyclic garbage collector is off while the server starts; `serving_app` (facility/server.py)
switches it on again once the app is made.
"""

import gc
import importlib
import sys
import types

# Deferred modules and the names other modules take from them at import time: each such name
# gets a function that calls the real one (all of them only ever called by a command line or a
# development server).
DEFERRED = {
    "werkzeug.serving": ("run_simple", "is_running_from_reloader"),
    "importlib.metadata": (),
    "decimal": (),
}


def _defer(name: str, functions: tuple[str, ...], package: bool = False) -> None:
    if name in sys.modules:  # loaded already: nothing to save
        return
    parent_name, _, attribute = name.rpartition(".")

    def real() -> types.ModuleType:
        if sys.modules.get(name) is placeholder:
            del sys.modules[name]
        return importlib.import_module(name)  # also sets it on its parent package

    def __getattr__(attr: str):
        # A package's submodule is imported through its __path__: the real package then.
        if attr == "__path__" and package:
            return real().__path__
        if attr.startswith("__"):  # the import system probing for __path__ and the like
            raise AttributeError(attr)
        return getattr(real(), attr)

    def calling(function: str):
        return lambda *args, **kwargs: getattr(real(), function)(*args, **kwargs)

    placeholder = types.ModuleType(name, "Placeholder: the real module is loaded on use.")
    placeholder.__getattr__ = __getattr__
    placeholder.__real__ = real
    for function in functions:
        setattr(placeholder, function, calling(function))
    sys.modules[name] = placeholder
    # `import importlib.metadata` finds the placeholder; `importlib.metadata.x` looks on the parent.
    parent = sys.modules.get(parent_name)
    if parent is not None:
        setattr(parent, attribute, placeholder)


def _real(name: str) -> types.ModuleType:
    module = sys.modules.get(name)
    load = getattr(module, "__real__", None) if module is not None else None
    return load() if load is not None else importlib.import_module(name)


class CommandsLater:
    """Stands in for `flask.cli.AppGroup()`, the command group Flask gives the app and each
    blueprint, while it has no commands; whatever else is asked of it makes the real group."""

    NONE: types.MappingProxyType = types.MappingProxyType({})  # read-only: nothing added here

    def __init__(self, *args, **kwargs) -> None:
        self.__dict__.update(_made=(args, kwargs), _group=None, _name=kwargs.get("name"))

    @property
    def commands(self):
        return self.NONE if self._group is None else self._group.commands

    @property
    def name(self):
        return self._name if self._group is None else self._group.name

    @name.setter
    def name(self, value) -> None:
        if self._group is None:
            self.__dict__["_name"] = value
        else:
            self._group.name = value

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if self._group is None:
            _real("click")
            args, kwargs = self._made
            group = _real("flask.cli").AppGroup(*args, **kwargs)
            group.name = self._name
            self.__dict__["_group"] = group
        return getattr(self._group, attr)


def _defer_unused_modules() -> None:
    for name, functions in DEFERRED.items():
        _defer(name, functions)
    if "flask" not in sys.modules:  # Flask not imported yet: its command line can wait
        _defer("click", (), package=True)
        _defer("flask.cli", ())
        sys.modules["flask.cli"].AppGroup = CommandsLater


def prepare() -> None:
    """What `python -m services` does before it imports the server."""
    gc.disable()
    _defer_unused_modules()


if __name__ == "__main__":
    prepare()
    from services.facility.server import main

    main()
