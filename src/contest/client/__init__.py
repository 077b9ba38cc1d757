"""``contestcli``, ConTest's client: :mod:`.cli` (the command), :mod:`.transport` (ConTest's form
API over HTTP), :mod:`.jobdesc` (the descriptor as ConTest's client sends it)."""
