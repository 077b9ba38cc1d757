"""What ``contestcli`` sends: the descriptor re-written as ConTest's Go client writes it, and the
form encoded as Go encodes it, compared with the bytes ConTest's client sends on the wire."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contest.client.jobdesc import DescriptorFormatError, to_request_json
from contest.client.transport import TransportError, encode_form, normalize_addr

RECORDED_START = (Path(__file__).parents[1] / "e2e" / "data" / "start_request.txt").read_bytes()

# the capture's descriptor, written in another key order and layout than Go's output
SOURCE_JSON = """{
  "JobName": "test job", "Runs": 3, "RunInterval": "3s", "Tags": ["test", "csv"],
  "TestDescriptors": [{
    "TargetManagerName": "TargetList",
    "TargetManagerAcquireParameters": {"Targets": [{"ID": "1234", "FQDN": "example.org"}]},
    "TargetManagerReleaseParameters": {},
    "TestFetcherName": "literal",
    "TestFetcherFetchParameters": {
      "TestName": "Literal test",
      "Steps": [{"name": "cmd", "label": "some label", "parameters": {
        "executable": ["echo"],
        "args": ["Title={{ Title .FQDN }}, ToUpper={{ ToUpper .FQDN }}"]}}]}}],
  "Reporting": {
    "RunReporters": [{"Name": "TargetSuccess", "Parameters": {"SuccessExpression": ">80%"}},
                     {"Name": "Noop"}],
    "FinalReporters": [{"Name": "noop"}]}
}
"""

SOURCE_YAML = """\
JobName: test job
Runs: 3
RunInterval: 3s
Tags: [test, csv]
TestDescriptors:
  - TargetManagerName: TargetList
    TargetManagerAcquireParameters:
      Targets: [{ID: "1234", FQDN: example.org}]
    TargetManagerReleaseParameters: {}
    TestFetcherName: literal
    TestFetcherFetchParameters:
      TestName: Literal test
      Steps:
        - name: cmd
          label: some label
          parameters:
            executable: [echo]
            args: ["Title={{ Title .FQDN }}, ToUpper={{ ToUpper .FQDN }}"]
Reporting:
  RunReporters:
    - {Name: TargetSuccess, Parameters: {SuccessExpression: ">80%"}}
    - {Name: Noop}
  FinalReporters: [{Name: noop}]
"""


@pytest.mark.parametrize(("source", "yaml"), [(SOURCE_JSON, False), (SOURCE_YAML, True)])
def test_start_request_is_byte_for_byte_the_go_clients(source: str, yaml: bool) -> None:
    desc = to_request_json(source.encode(), yaml=yaml)
    assert encode_form({"requestor": "contestcli-http", "jobDesc": desc}) == RECORDED_START


def test_go_marshal_indent_rules() -> None:
    out = to_request_json(b'{"b": [1, 2.50, 1e3, {}], "a": "<&>\\u2028", "c": [], "b2": null}')
    assert out == (
        "{\n"
        '    "a": "\\u003c\\u0026\\u003e\\u2028",\n'
        '    "b": [\n        1,\n        2.5,\n        1000,\n        {}\n    ],\n'
        '    "b2": null,\n'
        '    "c": []\n'
        "}"
    )
    # duplicate keys: the last wins, as in a Go map; big integers stay exact
    assert json.loads(to_request_json(b'{"x": 1, "x": 12345678901234567890}')) == {
        "x": 12345678901234567890
    }
    assert to_request_json(b"", yaml=True) == "{}"


@pytest.mark.parametrize(
    ("data", "yaml", "message"),
    [
        (b"[1]", False, "failed to parse JSON job descriptor: the document is not an object"),
        (b"{", False, "failed to parse JSON job descriptor: invalid JSON"),
        (b"- a\n- b\n", True, "failed to parse YAML job descriptor: the document is not an object"),
        (b"a: [", True, "failed to parse YAML job descriptor: invalid YAML"),
        (b"", False, "failed to parse JSON job descriptor"),
    ],
)
def test_bad_descriptor_files(data: bytes, yaml: bool, message: str) -> None:
    with pytest.raises(DescriptorFormatError, match=message.replace("(", r"\(")):
        to_request_json(data, yaml=yaml)


def test_form_encoding_is_gos() -> None:
    assert encode_form({"tags": "a,b", "requestor": "x y", "states": "é~._-"}) == (
        b"requestor=x+y&states=%C3%A9~._-&tags=a%2Cb"
    )


def test_addresses() -> None:
    assert normalize_addr("localhost:8080") == "http://localhost:8080"
    assert normalize_addr("https://h:1/base/") == "https://h:1/base"
    with pytest.raises(TransportError, match="unsupported scheme"):
        normalize_addr("ftp://h:1")
