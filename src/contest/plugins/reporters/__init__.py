"""Built-in reporters: what a job's runs, and the job as a whole, amount to.

* ``TargetSuccess`` (:mod:`.targetsuccess`): a test passes when enough of its targets passed, by a
  comparison expression such as ``>=80%``;
* ``noop`` (:mod:`.noop`): always succeeds and says so; for trying things out.

A report never changes the job's state: a job whose reporter says "fail" still completed.
"""
