"""Built-in test steps.

Each module has a ``load()`` that a ``contest.teststeps`` entry point names.
"""
