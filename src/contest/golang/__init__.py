"""Go's behaviour, imitated once: one module per Go package whose behaviour users can see.

ConTest is written in Go, and its users see Go in what it accepts and what it writes: durations
(``1m30s``), quoted text in error messages (``strconv.Atoi: parsing "x": invalid syntax``),
numbers, JSON read into structs (keys matched ignoring case, ``json: cannot unmarshal ...``), the
bytes of its JSON replies. Descriptors, templates, comparison expressions, the form API, target
managers, fetchers, reporters and steps all import these modules instead of writing their own:

* :mod:`contest.golang.strconv` -- ``Quote``, ``FormatFloat``, ``ParseFloat``, ``Atoi``;
* :mod:`contest.golang.time` -- ``ParseDuration``, ``Duration.String``, RFC 3339 times;
* :mod:`contest.golang.json` -- ``encoding/json``'s view of a document (key order, number text)
  and its writers (``Marshal``, ``Encoder``, ``MarshalIndent``), and YAML read as ``yaml.v3`` does;
* :mod:`contest.golang.unmarshal` -- ``json.Unmarshal`` into a struct, with Go's errors;
* :mod:`contest.golang.net` -- ``net.ParseIP``.

This is the bottom layer: it imports nothing from ``contest`` but :mod:`contest.errors`.
"""
