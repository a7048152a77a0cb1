import warnings

from ccup import resolvers  # noqa: F401  (registers the config resolvers before any config is resolved)

# Lightning 2.6 checks a pytree spec with a form torch deprecated; harmless, and printed once per process.
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
