from ccup import resolvers  # noqa: F401  (registers the config resolvers before any config is resolved)
