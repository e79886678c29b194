"""scrub_trace: every field scrubbed, secrets under secret keys replaced wholesale, depth bounded, input untouched."""
from __future__ import annotations

from pathlib import Path

import pytest

from schemas.settings import load_settings
from schemas.trace import Trace
from streams.scrub import Pseudonymizer, RegexScrubber, build_scrubber, load_scrub_config, scrub_trace
from streams.scrub.trace import DEPTH_MARKER

PLANTED = {
    "user_message": "alice.user@example.com",
    "context": "+44 20 7946 0958",
    "args_email": "bob.args@example.org",
    "args_nested_card": "4111 1111 1111 1111",
    "args_password": "correct horse battery staple",
    "args_nested_token": "tok-plain-words",
    "result_ip": "10.20.30.40",
    "result_iban": "GB82 WEST 1234 5698 7654 32",
    "error_ssn": "123-45-6789",
    "final_response": "carol.final@example.net",
    "candidate": "(555) 987-6543",
    "metadata": "dave.meta@example.com",
    "metadata_secret": "meta-secret-plain",
    "flag": "eve.flag@example.com",
    "dict_key": "frank.key@example.com",
}


def planted_trace() -> Trace:
    return Trace(
        trace_id="t1", conversation_id="c1",
        user_message=f"hi, I am {PLANTED['user_message']}",
        context=[{"role": "user", "content": f"earlier I gave {PLANTED['context']}"}],
        tool_calls=[{
            "name": "crm.update",
            "args": {"email": PLANTED["args_email"], "payment": {"cards": [{"number": PLANTED["args_nested_card"]}]},
                     "password": PLANTED["args_password"], "settings": {"deep": {"api_key": PLANTED["args_nested_token"]}},
                     PLANTED["dict_key"]: "value"},
            "result": [{"host": f"ip {PLANTED['result_ip']}"}, {"iban": PLANTED["result_iban"]}, 7, None],
            "error": f"rejected ssn {PLANTED['error_ssn']}",
        }],
        final_response=f"done, wrote to {PLANTED['final_response']}",
        candidates=[f"call {PLANTED['candidate']}"],
        flags=[f"contact:{PLANTED['flag']}"],
        metadata={"session": {"owner": PLANTED["metadata"], "client_secret": PLANTED["metadata_secret"]}},
    )


@pytest.fixture()
def scrubber() -> RegexScrubber:
    return RegexScrubber(Pseudonymizer("test-key"))


def test_every_planted_value_is_gone(scrubber: RegexScrubber) -> None:
    trace = planted_trace()
    clean, findings = scrub_trace(trace, scrubber)
    dumped = clean.model_dump_json()
    for name, value in PLANTED.items():
        assert value not in dumped, name
    by = {(f.kind, f.field): f.count for f in findings}
    assert by[("EMAIL", "user_message")] == 1
    assert by[("PHONE", "context")] == 1
    assert by[("PHONE", "candidates")] == 1
    assert by[("EMAIL", "final_response")] == 1
    assert by[("EMAIL", "tool_calls.args")] == 2  # the value and the dict key
    assert by[("CREDIT_CARD", "tool_calls.args")] == 1
    assert by[("SECRET", "tool_calls.args")] == 2  # password and nested api_key, wholesale
    assert by[("IP_ADDRESS", "tool_calls.result")] == 1 and by[("IBAN", "tool_calls.result")] == 1
    assert by[("US_SSN", "tool_calls.error")] == 1
    assert by[("EMAIL", "metadata")] == 1 and by[("SECRET", "metadata")] == 1
    assert by[("EMAIL", "flags")] == 1
    # structure and non-PII kept; the input trace untouched
    args = clean.tool_calls[0].args
    assert args["password"].startswith("<SECRET_") and args["settings"]["deep"]["api_key"].startswith("<SECRET_")
    assert clean.tool_calls[0].result[2:] == [7, None] and clean.tool_calls[0].status == "error"
    assert clean.metadata["pii_key_id"] == scrubber.key_id
    assert PLANTED["args_password"] in trace.model_dump_json()
    assert "pii_key_id" not in trace.metadata


def test_same_value_same_pseudonym_across_fields(scrubber: RegexScrubber) -> None:
    t = Trace(trace_id="t", conversation_id="c", user_message="me: a.b@c.io", final_response="sent to A.B@C.IO",
              tool_calls=[{"name": "mail", "args": {"to": "a.b@c.io"}}])
    clean, _ = scrub_trace(t, scrubber)
    tok = clean.tool_calls[0].args["to"]
    assert tok.startswith("<EMAIL_") and clean.user_message == f"me: {tok}" and clean.final_response.endswith(tok)


def test_deep_nesting_is_cut_with_marker(scrubber: RegexScrubber) -> None:
    deep: dict = {"leaf": "x@y.io"}
    for _ in range(500):
        deep = {"d": deep}
    t = Trace(trace_id="t", conversation_id="c", user_message="u", final_response="f",
              tool_calls=[{"name": "x", "args": deep, "result": [[[[["z@y.io"]]]]]}])
    clean, findings = scrub_trace(t, scrubber, max_depth=64)
    dumped = clean.model_dump_json()
    assert "x@y.io" not in dumped and "z@y.io" not in dumped and DEPTH_MARKER in dumped
    assert ("DEPTH_LIMIT", "tool_calls.args") in {(f.kind, f.field) for f in findings}


def test_finding_across_separator_falls_back_per_string(scrubber: RegexScrubber) -> None:
    # a PEM block split over two strings must still not leak either half
    t = Trace(trace_id="t", conversation_id="c", user_message="-----BEGIN PRIVATE KEY-----\nAAAA",
              final_response="BBBB\n-----END PRIVATE KEY----- done", candidates=["mail q@r.io"])
    clean, _ = scrub_trace(t, scrubber)
    assert "AAAA" not in clean.user_message and clean.candidates[0].startswith("mail <EMAIL_")


def test_build_scrubber_reads_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "scrub.yaml"
    cfg.write_text("tier: structured\nkinds: [EMAIL]\nfields: [user_message]\n")
    monkeypatch.setenv("ALIGNLOOP_SCRUB_CONFIG", str(cfg))
    settings = load_settings(pii_hmac_key="k1")  # the variable is Settings.scrub_config
    s = build_scrubber(settings, load_scrub_config(settings.scrub_config))
    t = Trace(trace_id="t", conversation_id="c", user_message="a@b.io 4111 1111 1111 1111", final_response="c@d.io")
    clean, findings = scrub_trace(t, s)
    assert clean.user_message.startswith("<EMAIL_") and "4111 1111 1111 1111" in clean.user_message
    assert clean.final_response == "c@d.io" and [(f.kind, f.field) for f in findings] == [("EMAIL", "user_message")]


def test_missing_config_gives_defaults_and_bad_config_one_line(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no configs/scrub.yaml here: the unnamed default file is absent
    assert load_scrub_config(None).tier == "full"
    with pytest.raises(ValueError, match=r"scrub config .*nope.yaml not found; fix ALIGNLOOP_SCRUB_CONFIG"):
        load_scrub_config(tmp_path / "nope.yaml")  # a named file that is missing is an error, not the defaults
    bad = tmp_path / "bad.yaml"
    bad.write_text("kinds: [EMAIL, WHATEVER]\n")
    with pytest.raises(ValueError, match=r"bad scrub config .*unknown kinds"):
        load_scrub_config(bad)
