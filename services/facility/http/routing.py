"""URL rules whose builders are made on first use rather than when the app starts.

werkzeug compiles two URL-building functions for every rule as it is added (Python source built
and compiled per rule): for this app's ~80 rules that was some 40 ms of CPU in every wake, of which
a facility's day needs a handful (url_for of a few pages). The matching side is unchanged.
"""

from werkzeug.routing import Rule


class LazyBuildRule(Rule):
    def _compile_builder(self, append_unknown: bool = True):
        name = "_build_unknown" if append_unknown else "_build"

        def build(rule: Rule, *args, **kwargs):
            # First use: the real builder replaces this one on the rule (a race only builds twice).
            real = Rule._compile_builder(rule, append_unknown).__get__(rule, None)
            setattr(rule, name, real)
            return real(*args, **kwargs)

        return build
