"""`python -m services`: the facility's server as its image starts it (facility/server.py).

Started from here, outside the facility's package, so that werkzeug's development server can be
kept out before Flask is imported: werkzeug's package imports it at once, and with it
`http.server`, `http.client`, `socketserver` and `ssl` (~1.7 MiB per awake facility), none of
which a facility serving through waitress uses. Should anything ask for it after all, the real
module is loaded then.
"""

import importlib
import sys
import types

DEFERRED = "werkzeug.serving"


def _defer_werkzeug_serving() -> None:
    def real() -> types.ModuleType:
        if sys.modules.get(DEFERRED) is placeholder:
            del sys.modules[DEFERRED]
        return importlib.import_module(DEFERRED)

    def __getattr__(name: str):
        if name.startswith("__"):  # the import system probing for __path__ and the like
            raise AttributeError(name)
        return getattr(real(), name)

    placeholder = types.ModuleType(DEFERRED, "Placeholder: the real module is loaded on use.")
    placeholder.__getattr__ = __getattr__
    # The two names imported at module level (by werkzeug and by flask.app); both only ever
    # used by a development server.
    placeholder.run_simple = lambda *args, **kwargs: real().run_simple(*args, **kwargs)
    placeholder.is_running_from_reloader = lambda: real().is_running_from_reloader()
    sys.modules[DEFERRED] = placeholder


if __name__ == "__main__":
    _defer_werkzeug_serving()
    from services.facility.server import main

    main()
