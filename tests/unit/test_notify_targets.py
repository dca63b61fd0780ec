"""parse_targets: the notify_targets setting (spec 4.7 [R]) and the log target."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from openglacier.notify.base import LogTarget
from openglacier.notify.sns import SnsTarget
from openglacier.notify.targets import Targets, make_target, parse_targets
from openglacier.notify.webhook import WebhookTarget

TOPIC = "arn:aws:sns:us-east-1:111122223333:jobs"
OTHER = "arn:aws:sns:eu-west-1:111122223333:other"


@pytest.fixture
def parsed() -> Iterator[list[Targets]]:
    """Targets made by a test; their HTTP clients are closed afterwards."""
    made: list[Targets] = []
    yield made
    for targets in made:
        targets.close()


def parse(spec: str, made: list[Targets], **kwargs: str) -> Targets:
    targets = parse_targets(spec, **kwargs)
    made.append(targets)
    return targets


@pytest.mark.parametrize("spec", ["", "  ", ",", " , ,"])
def test_empty_spec_sends_every_topic_to_the_log(spec: str, parsed: list[Targets]) -> None:
    targets = parse(spec, parsed)
    assert isinstance(targets.for_topic(TOPIC), LogTarget)
    assert isinstance(targets.for_topic("anything at all"), LogTarget)


def test_listed_topic_gets_its_target_and_unlisted_topics_the_log(parsed: list[Targets]) -> None:
    targets = parse(f"{TOPIC}=http://127.0.0.1:9/hook", parsed)
    hook = targets.for_topic(TOPIC)
    assert isinstance(hook, WebhookTarget)
    assert hook.url == "http://127.0.0.1:9/hook"
    assert isinstance(targets.for_topic(OTHER), LogTarget)


@pytest.mark.parametrize(
    "spec",
    [
        f"{TOPIC}=log,*=http://127.0.0.1:9/all",
        f"*=http://127.0.0.1:9/all,{TOPIC}=log",
        f" *  =  http://127.0.0.1:9/all ,  {TOPIC} = LOG ,",
    ],
)
def test_wildcard_is_the_default_whatever_the_order(spec: str, parsed: list[Targets]) -> None:
    targets = parse(spec, parsed)
    assert isinstance(targets.for_topic(TOPIC), LogTarget)
    default = targets.for_topic(OTHER)
    assert isinstance(default, WebhookTarget)
    assert default.url == "http://127.0.0.1:9/all"
    assert targets.default is default


def test_item_splits_on_the_first_equals_so_urls_keep_query_strings(
    parsed: list[Targets],
) -> None:
    targets = parse(f"{TOPIC}=https://hooks.example/x?token=a=b&c=", parsed)
    hook = targets.for_topic(TOPIC)
    assert isinstance(hook, WebhookTarget)
    assert hook.url == "https://hooks.example/x?token=a=b&c="
    assert "token" not in repr(hook)  # tokens stay out of logs


def test_arns_with_more_colons_and_other_partitions(parsed: list[Targets]) -> None:
    odd = "arn:aws-cn:sns:cn-north-1:111122223333:team:jobs"
    targets = parse(f"{odd}=http://127.0.0.1:9/a,{TOPIC}=http://127.0.0.1:9/b", parsed)
    first, second = targets.for_topic(odd), targets.for_topic(TOPIC)
    assert isinstance(first, WebhookTarget)
    assert isinstance(second, WebhookTarget)
    assert (first.url, second.url) == ("http://127.0.0.1:9/a", "http://127.0.0.1:9/b")


def test_one_target_object_per_distinct_target(parsed: list[Targets]) -> None:
    targets = parse(f"{TOPIC}=http://127.0.0.1:9/a,{OTHER}=http://127.0.0.1:9/a", parsed)
    assert targets.for_topic(TOPIC) is targets.for_topic(OTHER)


def test_sns_endpoint_credentials_and_region(parsed: list[Targets]) -> None:
    targets = parse(
        f"{TOPIC}=sns+http://AKID:se%2Fcr%40et@127.0.0.1:4566,*=sns+https://sns.example/prefix/",
        parsed,
        default_region="ap-south-1",
    )
    local, remote = targets.for_topic(TOPIC), targets.for_topic(OTHER)
    assert isinstance(local, SnsTarget)
    assert isinstance(remote, SnsTarget)
    assert local.endpoint_url == "http://127.0.0.1:4566"
    assert local._keys == ("AKID", "se/cr@et")
    assert "se%2F" not in repr(local)
    assert remote.endpoint_url == "https://sns.example/prefix"
    assert remote._keys is None
    assert remote._region(OTHER) == "eu-west-1"
    assert remote._region("arn:aws:sns::111122223333:regionless") == "ap-south-1"


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("log", "TOPIC_ARN=TARGET"),
        (f"{TOPIC}", "TOPIC_ARN=TARGET"),
        ("=log", "TOPIC_ARN=TARGET"),
        (f"{TOPIC}=", "TOPIC_ARN=TARGET"),
        (f"{TOPIC}=log,oops", "'oops'"),
        ("jobs=log", "not a topic ARN"),
        ("us-east-1=log", "not a topic ARN"),
        ("arn:aws:sns:us-east-1:111122223333=log", "not a topic ARN"),
        ("arn:aws:sns:us-east-1:111122223333:=log", "not a topic ARN"),
        ("**=log", "not a topic ARN"),
        (f"{TOPIC}=logs", "use log, http(s)://"),
        (f"{TOPIC}=ftp://127.0.0.1/x", "use log, http(s)://"),
        (f"{TOPIC}=127.0.0.1:8080", "use log, http(s)://"),
        (f"{TOPIC}=http://", "not an http(s) URL"),
        (f"{TOPIC}=http://[::1/x", "not a URL"),
        (f"{TOPIC}=http://127.0.0.1:99999/x", "bad port"),
        (f"{TOPIC}=sns+http://", "sns+http(s)://HOST"),
        (f"{TOPIC}=sns+http://127.0.0.1:port", "bad port"),
        (f"{TOPIC}=sns+http://127.0.0.1:1?Action=Publish", "no query"),
        (f"{TOPIC}=sns+http://AKID@127.0.0.1:1", "KEY:SECRET"),
        (f"{TOPIC}=log,{TOPIC}=log", "given twice"),
        ("*=log,*=log", "given twice"),
    ],
)
def test_malformed_specs_are_rejected_with_a_clear_message(spec: str, says: str) -> None:
    with pytest.raises(ValueError, match="bad notify target") as caught:
        parse_targets(spec)
    assert says in str(caught.value)


def test_errors_never_show_secrets() -> None:
    with pytest.raises(ValueError, match="no query") as caught:
        parse_targets(f"{TOPIC}=sns+http://AKID:hunter2@127.0.0.1:1/?x=1")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="bad port") as caught:
        make_target("http://user:hunter2@127.0.0.1:99999/?token=hunter2")
    assert "hunter2" not in str(caught.value)


def test_log_target_writes_topic_and_message(caplog: pytest.LogCaptureFixture) -> None:
    message = '{"JobId":"abc","StatusCode":"Succeeded"}'
    with caplog.at_level(logging.INFO, logger="openglacier.notify"):
        parse_targets("").for_topic(TOPIC).deliver(TOPIC, message)
    (record,) = [r for r in caplog.records if r.name == "openglacier.notify"]
    assert record.levelno == logging.INFO
    assert TOPIC in record.getMessage()
    assert message in record.getMessage()


def test_close_closes_each_target_once() -> None:
    targets = parse_targets(f"{TOPIC}=http://127.0.0.1:9/a,*=http://127.0.0.1:9/a")
    targets.close()
    hook = targets.for_topic(TOPIC)
    assert isinstance(hook, WebhookTarget)
    assert hook._client.is_closed
