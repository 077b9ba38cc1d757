"""Built-in test fetchers: where a test's steps come from.

* ``literal`` (:mod:`.literal`): the steps are written in the descriptor;
* ``URI`` (:mod:`.uri`): the steps are in a JSON file, ``{"steps": [...]}``, read from a local path
  or fetched over HTTP(S).

Fetchers run once, at submission; what they return is stored with the job (its extended
descriptor), so a resumed job never fetches again and a changed file does not change a running job.
"""
