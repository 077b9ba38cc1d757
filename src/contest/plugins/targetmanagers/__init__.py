"""Built-in target managers: where a test's targets come from.

* ``TargetList`` (:mod:`.targetlist`): the targets are listed in the descriptor and locked all
  together;
* ``CSVFileTargetManager`` (:mod:`.csvfile`): the targets are rows of a CSV file, try-locked
  between a minimum and a maximum count.

Both read their parameters with Go's JSON rules (:mod:`contest.golang.unmarshal`), as ConTest's
do. The test-only ``TargetListWithState`` lives in :mod:`contest.testing.targetmanagers`.
"""
