"""Built-in target lockers, each a ``contest.targetlockers`` plugin.

* ``InMemory`` (:mod:`.inmemory`): leases in this process only; the default for one server.
* ``DBLocker`` (:mod:`.dblocker`): leases in the storage database, shared by every server using it.
* ``noop`` (:mod:`.noop`): grants everything and records nothing.

The contract they share is in :mod:`contest.locking`; :mod:`contest.testing.lockers` checks it.
"""
