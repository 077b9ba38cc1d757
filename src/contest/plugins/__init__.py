"""Built-in plugins, registered through entry points like any third-party plugin.

One package per plugin kind; each plugin is a module with a ``load()`` entry point named in
pyproject.toml under the kind's group, and implements that kind's contract:

* ``contest.teststeps`` -- :mod:`contest.teststep` (``TestStep``);
* ``contest.targetmanagers`` -- :mod:`contest.targetmanager` (``TargetManager``);
* ``contest.testfetchers`` -- :mod:`contest.testfetcher` (``TestFetcher``);
* ``contest.reporters`` -- :mod:`contest.reporter` (``Reporter``);
* ``contest.targetlockers`` -- :mod:`contest.locking` (``TargetLocker``).

Modules whose names start with ``_`` are helpers of the plugins beside them, not plugins. The
misbehaving steps and the state-keeping target manager that the tests use are not here: they live
in :mod:`contest.testing` (``steps``, ``targetmanagers``), and no production code imports them.
"""
