"""The one ``relay247`` command. Subcommands import their packages lazily."""
