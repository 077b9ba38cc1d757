"""contest-py: ConTest, the system-testing framework, in Python.

A job runs tests against targets; each test is a pipeline of steps (plugins) that every target walks
through on its own; every move is an event. See ``contest.teststep`` for the plugin contract.
"""

__version__ = "0.1.0"
