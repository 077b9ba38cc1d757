"""Built-in test steps. Each module has a ``load()`` named by a ``contest.teststeps`` entry point."""
